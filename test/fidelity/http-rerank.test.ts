// Image–text matching over real HTTP against the official ALBEF outputs (itm_golden.json): /v1/rerank
// in both directions and /classify (labels = the golden texts, template "{}"), for the pretrain and
// the fine-tuned layout; batching and the state cache never change a score; every error case; and the
// Cohere SDK as a real client of the rerank shape.

import { readFile } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CohereClient, CohereError } from 'cohere-ai';
import t, { type Test } from 'tap';
import { convertCheckpoint } from '../../src/convert/convert.js';
import { IMAGES_DIR, ITM_TOL, itmGolden, TINY_ARCH, TINY_FINETUNED } from '../../kit/golden.js';
import { jpegWithComment } from '../../kit/images.js';
import { cleanupTinyModel, postJson, startServer, startStaticServer, tinyModel } from '../../kit/server.js';

const g = itmGolden;
const root = await mkdtemp(join(tmpdir(), 'albef-rerank-'));
const finetuned = join(root, 'tiny-ft');
await convertCheckpoint({ checkpoint: TINY_FINETUNED, out: finetuned, archFile: TINY_ARCH, name: 'tiny-ft' });
// A model directory as the converter before 1.2.0 wrote it: no fusion part.
const old = join(root, 'old');
{
  const { dir } = await tinyModel();
  const { cp, readFile: read, writeFile } = await import('node:fs/promises');
  await cp(dir, old, { recursive: true });
  const m = JSON.parse(await read(join(old, 'model.json'), 'utf8'));
  delete m.fusion;
  m.name = 'old';
  m.converter_version = '1.1.0';
  await writeFile(join(old, 'model.json'), JSON.stringify(m));
}
const { dir: pretrain } = await tinyModel();
const server = await startServer({ models: [pretrain, finetuned, old], allowPrivateUrls: true, maxItems: 64 });
const files = await startStaticServer(IMAGES_DIR);
t.teardown(async () => {
  await server.close();
  await files.close();
  await cleanupTinyModel();
  await rm(root, { recursive: true, force: true });
});

// Golden image files (tensor_input.f32, the last column, is not an image file: checked in itm-graphs).
const imageFiles = g.images.filter((f) => !f.endsWith('.f32'));
const dataUri = new Map<string, string>();
for (const f of imageFiles)
  dataUri.set(
    f,
    `data:image/${f.endsWith('.png') ? 'png' : 'jpeg'};base64,${(await readFile(join(IMAGES_DIR, f))).toString('base64')}`,
  );

interface Result {
  index: number;
  relevance_score: number;
  itm_logits: [number, number];
  itc: number;
  document?: unknown;
}

function checkPair(
  r: Result,
  want: { itc: number; itm_logits: [number, number]; itm_prob: number },
  worst: { prob: number; logits: number; itc: number },
) {
  worst.prob = Math.max(worst.prob, Math.abs(r.relevance_score - want.itm_prob));
  worst.logits = Math.max(
    worst.logits,
    Math.abs(r.itm_logits[0] - want.itm_logits[0]),
    Math.abs(r.itm_logits[1] - want.itm_logits[1]),
  );
  worst.itc = Math.max(worst.itc, Math.abs(r.itc - want.itc));
}

function sortedByScore(t: Test, results: Result[]) {
  const ok = results.every(
    (r, i) =>
      i === 0 ||
      results[i - 1]!.relevance_score > r.relevance_score ||
      (results[i - 1]!.relevance_score === r.relevance_score && results[i - 1]!.index < r.index),
  );
  t.ok(ok, 'results sorted by relevance_score, ties by index');
}

for (const model of ['tiny', 'tiny-ft']) {
  t.test(`${model}: text query × image documents, every golden pair`, async (t) => {
    const worst = { prob: 0, logits: 0, itc: 0 };
    for (let ti = 0; ti < g.texts.length; ti++) {
      const res = await postJson(`${server.url}/v1/rerank`, {
        model,
        query: g.texts[ti],
        documents: imageFiles.map((f) => ({ image: dataUri.get(f) })),
      });
      t.equal(res.status, 200);
      t.equal(res.json.results.length, imageFiles.length);
      if (ti === 0) sortedByScore(t, res.json.results);
      for (const r of res.json.results as Result[]) checkPair(r, g.pairs[ti]![r.index]!, worst);
      t.same(res.json.usage, { texts: 1, images: imageFiles.length });
    }
    t.ok(
      worst.prob <= ITM_TOL.prob && worst.logits <= ITM_TOL.logitsFile && worst.itc <= ITM_TOL.itc,
      `max|Δ| prob ${worst.prob.toExponential(2)}, logits ${worst.logits.toExponential(2)}, itc ${worst.itc.toExponential(2)}`,
    );
  });

  t.test(`${model}: image query × text documents, every golden pair`, async (t) => {
    const worst = { prob: 0, logits: 0, itc: 0 };
    for (let ii = 0; ii < imageFiles.length; ii++) {
      const res = await postJson(`${server.url}/v1/rerank`, {
        model,
        query: { image: dataUri.get(imageFiles[ii]!) },
        documents: g.texts.map((text) => ({ text })),
      });
      t.equal(res.status, 200);
      if (ii === 0) sortedByScore(t, res.json.results);
      for (const r of res.json.results as Result[]) checkPair(r, g.pairs[r.index]![ii]!, worst);
      t.same(res.json.usage, { texts: g.texts.length, images: 1 });
    }
    t.ok(
      worst.prob <= ITM_TOL.prob && worst.logits <= ITM_TOL.logitsFile && worst.itc <= ITM_TOL.itc,
      `max|Δ| prob ${worst.prob.toExponential(2)}, logits ${worst.logits.toExponential(2)}, itc ${worst.itc.toExponential(2)}`,
    );
  });

  t.test(
    `${model}: /classify with the golden texts as labels gives the zero-shot scores, and ITM probabilities`,
    async (t) => {
      const res = await postJson(`${server.url}/classify`, {
        model,
        images: imageFiles.map((f) => dataUri.get(f)),
        labels: g.texts,
        template: '{}',
        itm: true,
      });
      t.equal(res.status, 200);
      t.equal(res.json.results.length, imageFiles.length);
      let zs = 0;
      let itm = 0;
      res.json.results.forEach((perImage: { label: string; score: number; itm_prob: number }[], ii: number) => {
        t.equal(perImage.length, g.texts.length);
        for (let k = 1; k < perImage.length; k++)
          if (perImage[k - 1]!.score < perImage[k]!.score) t.fail('labels sorted by score');
        for (const s of perImage) {
          const j = g.texts.indexOf(s.label);
          zs = Math.max(zs, Math.abs(s.score - g.zero_shot[ii]![j]!));
          itm = Math.max(itm, Math.abs(s.itm_prob - g.pairs[j]![ii]!.itm_prob));
        }
      });
      t.ok(zs <= ITM_TOL.zeroShot, `zero-shot max|Δ| ${zs.toExponential(2)}`);
      t.ok(itm <= ITM_TOL.prob, `itm_prob max|Δ| ${itm.toExponential(2)}`);

      // Without itm the embedding towers answer, with the same scores; top_k keeps the best.
      const plain = await postJson(`${server.url}/classify`, {
        model,
        images: imageFiles.map((f) => dataUri.get(f)),
        labels: g.texts,
        top_k: 3,
      });
      t.equal(plain.status, 200);
      plain.json.results.forEach((perImage: { label: string; score: number; itm_prob?: number }[], ii: number) => {
        t.equal(perImage.length, 3, 'top_k 3');
        const best = [...g.zero_shot[ii]!].sort((a, b) => b - a).slice(0, 3);
        perImage.forEach((s, k) => {
          if (Math.abs(s.score - best[k]!) > ITM_TOL.zeroShot || s.itm_prob !== undefined)
            t.fail(`image ${ii} rank ${k}: ${s.score} vs ${best[k]}`);
        });
      });
    },
  );
}

t.test('multipart /classify with repeated labels fields, and images by URL', async (t) => {
  const form = new FormData();
  form.append('file', new Blob([await readFile(join(IMAGES_DIR, 'photo.jpg'))], { type: 'image/jpeg' }), 'photo.jpg');
  form.append('file', new Blob([await readFile(join(IMAGES_DIR, 'gray.png'))], { type: 'image/png' }), 'gray.png');
  for (const l of g.texts) form.append('labels', l);
  form.append('itm', 'true');
  const res = await fetch(`${server.url}/classify`, { method: 'POST', body: form });
  t.equal(res.status, 200);
  const body = (await res.json()) as { results: { label: string; score: number; itm_prob: number }[][] };
  const cols = [g.images.indexOf('photo.jpg'), g.images.indexOf('gray.png')];
  // FormData sends a field's "\n" as "\r\n" (the HTML form encoding), which pre_caption folds away.
  const textIndex = (label: string) => g.texts.findIndex((x) => x.replace(/\r?\n/g, '\r\n') === label);
  let worst = 0;
  body.results.forEach((perImage, k) => {
    t.equal(perImage.length, g.texts.length, `image ${k}: every label`);
    for (const s of perImage)
      worst = Math.max(
        worst,
        Math.abs(s.score - g.zero_shot[cols[k]!]![textIndex(s.label)]!),
        Math.abs(s.itm_prob - g.pairs[textIndex(s.label)]![cols[k]!]!.itm_prob),
      );
  });
  t.ok(worst <= ITM_TOL.zeroShot, `multipart: max|Δ| ${worst.toExponential(2)}`);

  const byUrl = await postJson(`${server.url}/v1/rerank`, {
    query: g.texts[0],
    documents: [{ image: `${files.url}/photo.jpg` }, { image: `${files.url}/gray.png` }],
    return_documents: true,
  });
  t.equal(byUrl.status, 200);
  for (const r of byUrl.json.results as Result[]) {
    t.ok(
      Math.abs(r.relevance_score - g.pairs[0]![cols[r.index]!]!.itm_prob) <= ITM_TOL.prob,
      `URL document ${r.index}`,
    );
    t.same(
      r.document,
      { image: `${files.url}/${r.index === 0 ? 'photo.jpg' : 'gray.png'}` },
      'return_documents echoes the item as given',
    );
  }
});

t.test(
  'batching never changes a score: a pair alone = the same pair among 64, and across concurrent requests',
  async (t) => {
    const alone = await postJson(`${server.url}/v1/rerank`, {
      query: g.texts[2],
      documents: [{ image: dataUri.get('photo.jpg') }],
    });
    const many = await postJson(`${server.url}/v1/rerank`, {
      query: g.texts[2],
      documents: Array.from({ length: 64 }, (_, i) => ({ image: dataUri.get(imageFiles[i % imageFiles.length]!) })),
    });
    t.equal(many.json.results.length, 64);
    const photoIdx = imageFiles.indexOf('photo.jpg');
    const same = (many.json.results as Result[]).filter((r) => r.index % imageFiles.length === photoIdx);
    const d = Math.max(
      ...same.map((r) => Math.abs(r.relevance_score - alone.json.results[0].relevance_score)),
      ...same.map((r) => Math.abs(r.itm_logits[1] - alone.json.results[0].itm_logits[1])),
    );
    t.ok(same.length === 8 && d <= 1e-5, `text × 64 images: |Δ| ${d.toExponential(2)} over ${same.length} copies`);

    const texts = Array.from({ length: 64 }, (_, i) => g.texts[i % g.texts.length]!);
    const one = await postJson(`${server.url}/v1/rerank`, {
      query: { image: dataUri.get('shapes.png') },
      documents: [texts[5]],
    });
    const batch = await postJson(`${server.url}/v1/rerank`, {
      query: { image: dataUri.get('shapes.png') },
      documents: texts,
    });
    const copies = (batch.json.results as Result[]).filter((r) => r.index % g.texts.length === 5);
    const d2 = Math.max(...copies.map((r) => Math.abs(r.relevance_score - one.json.results[0].relevance_score)));
    t.ok(copies.length > 1 && d2 <= 1e-5, `image × 64 texts: |Δ| ${d2.toExponential(2)}`);

    // 16 concurrent single-pair requests share fusion batches.
    const concurrent = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        postJson(`${server.url}/v1/rerank`, {
          query: g.texts[i % g.texts.length],
          documents: [{ image: dataUri.get(imageFiles[i % imageFiles.length]!) }],
        }),
      ),
    );
    let worst = 0;
    concurrent.forEach(
      (r, i) =>
        (worst = Math.max(
          worst,
          Math.abs(
            r.json.results[0].relevance_score -
              g.pairs[i % g.texts.length]![g.images.indexOf(imageFiles[i % imageFiles.length]!)]!.itm_prob,
          ),
        )),
    );
    t.ok(worst <= ITM_TOL.prob, `16 concurrent requests: max|Δ| to the goldens ${worst.toExponential(2)}`);
  },
);

async function towerItems(): Promise<Record<string, number>> {
  const m = await (await fetch(`${server.url}/metrics`)).text();
  const n = (tower: string) =>
    Number(m.match(new RegExp(`albef_batch_size_sum\\{model="tiny",tower="${tower}"\\} (\\d+)`))?.[1] ?? 0);
  return { image_states: n('image_states'), text_states: n('text_states'), fusion: n('fusion') };
}

/** A JPEG never sent before (a comment segment added): its cache key is new. */
async function freshJpeg(note: string): Promise<string> {
  return `data:image/jpeg;base64,${jpegWithComment(await readFile(join(IMAGES_DIR, 'wide.jpg')), note).toString('base64')}`;
}

t.test(
  'work is done once per distinct image and text: 1 image × 64 texts (16 distinct) runs the image tower once, fusion 16 times',
  async (t) => {
    // 64 documents, 16 distinct texts: each repeated 4 times.
    const texts = Array.from({ length: 64 }, (_, i) => `${g.texts[i % 4]} (${i % 16})`);
    const distinct = new Set(texts).size;
    const before = await towerItems();
    const res = await postJson(`${server.url}/v1/rerank`, {
      query: { image: await freshJpeg('once') },
      documents: texts,
      caption_cleanup: false,
    });
    t.equal(res.status, 200);
    const after = await towerItems();
    t.same(
      {
        image: after.image_states! - before.image_states!,
        text: after.text_states! - before.text_states!,
        pairs: after.fusion! - before.fusion!,
      },
      { image: 1, text: distinct, pairs: distinct },
      `image tower once, text tower and fusion once per distinct text (${distinct})`,
    );
    const twice = await towerItems();
    const image = await freshJpeg('three times');
    await postJson(`${server.url}/v1/rerank`, { query: g.texts[3], documents: [{ image }, { image }, { image }] });
    const thrice = await towerItems();
    t.equal(
      thrice.image_states! - twice.image_states!,
      1,
      'the same image three times in one request: one image tower run',
    );
  },
);

async function cacheCounts(): Promise<{ hit: number; miss: number }> {
  const m = await (await fetch(`${server.url}/metrics`)).text();
  const n = (result: string) =>
    Number(m.match(new RegExp(`albef_image_state_cache_total\\{model="tiny",result="${result}"\\} (\\d+)`))?.[1] ?? 0);
  return { hit: n('hit'), miss: n('miss') };
}

t.test('the state cache: a repeated gallery skips the image tower and scores the same', async (t) => {
  const docs = imageFiles.slice(0, 4).map((f) => ({ image: dataUri.get(f) }));
  const before = await cacheCounts();
  const first = await postJson(`${server.url}/v1/rerank`, { query: 'a brand new query about cats', documents: docs });
  const mid = await cacheCounts();
  const second = await postJson(`${server.url}/v1/rerank`, { query: 'another query, same gallery', documents: docs });
  const third = await postJson(`${server.url}/v1/rerank`, { query: 'a brand new query about cats', documents: docs });
  const after = await cacheCounts();
  t.equal(after.hit - mid.hit, 8, 'second and third requests: 4 hits each');
  t.equal(after.miss, mid.miss, 'no misses after the first');
  t.ok(mid.miss - before.miss + mid.hit - before.hit === 4, 'first request: 4 lookups');
  t.equal(second.status, 200);
  t.same(third.json.results, first.json.results, 'same scores from cached states');

  const off = await startServer({ stateCacheImages: 0 });
  try {
    const a = await postJson(`${off.url}/v1/rerank`, { query: g.texts[0], documents: docs });
    const b = await postJson(`${off.url}/v1/rerank`, { query: g.texts[0], documents: docs });
    const m = await (await fetch(`${off.url}/metrics`)).text();
    t.notMatch(m, /albef_image_state_cache_total\{model="tiny",result="hit"\} [1-9]/, 'cache off: no hits');
    t.same(a.json.results, b.json.results, 'and the same scores');
  } finally {
    await off.close();
  }
});

t.test('errors: status, JSON shape, index; the server unharmed', async (t) => {
  const photo = dataUri.get('photo.jpg')!;
  const truncated = `data:image/jpeg;base64,${(await readFile(join(IMAGES_DIR, 'photo.jpg'))).subarray(0, 3000).toString('base64')}`;
  const cases: [string, unknown, number, string, number?][] = [
    [
      'text document for a text query',
      { query: 'a dog', documents: [{ image: photo }, 'a cat'] },
      400,
      'modality_mismatch',
      1,
    ],
    [
      'image document for an image query',
      { query: { image: photo }, documents: ['a cat', { image: photo }] },
      400,
      'modality_mismatch',
      1,
    ],
    [
      'too many documents',
      { query: 'a dog', documents: Array.from({ length: 65 }, () => ({ image: photo })) },
      413,
      'too_many_items',
    ],
    [
      'an undecodable image among the documents',
      {
        query: 'a dog',
        documents: [{ image: photo }, { image: Buffer.from('not an image at all').toString('base64') }],
      },
      415,
      'unsupported_media_type',
      1,
    ],
    [
      'a truncated JPEG among the documents',
      { query: 'a dog', documents: [{ image: photo }, { image: truncated }] },
      422,
      'undecodable_image',
      1,
    ],
    [
      'bad base64 as the query',
      { query: { image: 'data:image/png;base64,@@@' }, documents: ['a cat'] },
      400,
      'invalid_image_data',
    ],
    [
      'an old model directory without the fusion part',
      { model: 'old', query: 'a dog', documents: [{ image: photo }] },
      400,
      'fusion_unavailable',
    ],
    ['unknown model', { model: 'nope', query: 'a dog', documents: [{ image: photo }] }, 404, 'model_not_found'],
    ['no documents', { query: 'a dog', documents: [] }, 400, 'invalid_request'],
  ];
  for (const [what, body, status, code, index] of cases) {
    const res = await postJson(`${server.url}/v1/rerank`, body);
    t.equal(res.status, status, `${what}: ${status} (${JSON.stringify(res.json).slice(0, 200)})`);
    t.equal(res.json.error?.code, code, `${what}: ${code}`);
    if (index !== undefined) t.equal(res.json.error.index, index, `${what}: index ${index}`);
  }
  const oldModel = await postJson(`${server.url}/v1/rerank`, {
    model: 'old',
    query: 'a dog',
    documents: [{ image: photo }],
  });
  t.match(
    oldModel.json.error.message,
    /albef-embed convert --checkpoint checkpoint\.pth .*--force/,
    'names the command that reconverts it',
  );
  const query = await postJson(`${server.url}/v1/rerank`, {
    query: { image: 'data:image/png;base64,@@@' },
    documents: ['a cat'],
  });
  t.match(query.json.error.message, /^query: /, 'a bad query says so');
  const doc = await postJson(`${server.url}/v1/rerank`, {
    query: 'a dog',
    documents: [{ image: photo }, { image: truncated }],
  });
  t.match(doc.json.error.message, /^documents\[1\]: /, 'a bad document says which');

  const classifyCases: [string, unknown, number, string][] = [
    ['one label', { image: photo, labels: ['a dog'] }, 400, 'invalid_request'],
    ['no image field', { labels: ['a', 'b'] }, 400, 'bad_request'],
    ['old model directory', { model: 'old', image: photo, labels: ['a', 'b'] }, 400, 'fusion_unavailable'],
  ];
  for (const [what, body, status, code] of classifyCases) {
    const res = await postJson(`${server.url}/classify`, body);
    t.equal(res.status, status, `classify, ${what}: ${status}`);
    t.equal(res.json.error?.code, code, `classify, ${what}: ${code}`);
  }

  const models = (await (await fetch(`${server.url}/models`)).json()) as {
    models: { name: string; capabilities: string[]; temp?: number }[];
  };
  t.same(
    models.models.map((m) => [m.name, m.capabilities]),
    [
      ['tiny', ['embed', 'rerank', 'classify']],
      ['tiny-ft', ['embed', 'rerank', 'classify']],
      ['old', ['embed']],
    ],
    '/models says what each model can do',
  );
  t.ok(Math.abs(models.models[0]!.temp! - g.temp) < 1e-7, '/models gives temp');

  t.equal((await fetch(`${server.url}/readyz`)).status, 200, 'still ready');
  const after = await postJson(`${server.url}/v1/rerank`, { query: g.texts[0], documents: [{ image: photo }] });
  t.ok(
    Math.abs(after.json.results[0].relevance_score - g.pairs[0]![0]!.itm_prob) <= ITM_TOL.prob,
    'and a good request right after is right',
  );
});

t.test('the Cohere SDK reranks image documents against a text query', async (t) => {
  const cohere = new CohereClient({ token: 'unused', environment: server.url });
  const res = await cohere.rerank({
    model: 'tiny',
    query: g.texts[1]!,
    documents: imageFiles.map((f) => ({ image: dataUri.get(f)! })),
    topN: 3,
    returnDocuments: true,
  });
  t.equal(res.results.length, 3, 'topN 3');
  const best = imageFiles.map((_, i) => g.pairs[1]![i]!.itm_prob).sort((a, b) => b - a);
  res.results.forEach((r, k) =>
    t.ok(
      Math.abs(r.relevanceScore - best[k]!) <= ITM_TOL.prob,
      `rank ${k}: document ${r.index}, score ${r.relevanceScore.toFixed(5)}`,
    ),
  );
  t.equal(res.id, res.id && typeof res.id === 'string' ? res.id : 'missing', 'the response id is the request id');
  const err = await cohere.rerank({ model: 'nope', query: 'a dog', documents: ['a cat'] }).catch((e: unknown) => e);
  t.ok(
    err instanceof CohereError && err.statusCode === 404,
    `unknown model: the SDK raises its error with status 404 (${String(err)})`,
  );
});
