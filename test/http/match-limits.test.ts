// /v1/rerank and /classify against the limits and errors of the API (docs/errors.md): a request larger than a
// queue is 413 (a cached gallery larger than the queue is not), a full queue 503 with Retry-After,
// fetch failures 502, oversized images 413, deadlines 504, each with the item's index; equal
// documents tie exactly; temp clamped to [0.001, 0.5]; templates; --no-fusion. Expected scores come
// from itm_golden.json.

import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { IMAGES_DIR, ITM_TOL, itmGolden as g } from '../../kit/golden.js';
import { jpegWithComment } from '../../kit/images.js';
import {
  cleanupTinyModel,
  holdImagePlaces,
  postJson,
  startServer,
  startStaticServer,
  tinyModel,
} from '../../kit/server.js';

const root = await mkdtemp(join(tmpdir(), 'albef-match-limits-'));
const { dir: tiny } = await tinyModel();
/** A copy of the tiny model whose model.json says `temp` (the checkpoint's own is 0.175). */
async function withTemp(name: string, temp: number): Promise<string> {
  const dir = join(root, name);
  await cp(tiny, dir, { recursive: true });
  const m = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
  m.name = name;
  m.fusion.temp = temp;
  await writeFile(join(dir, 'model.json'), JSON.stringify(m));
  return dir;
}

const photo = `data:image/jpeg;base64,${(await readFile(join(IMAGES_DIR, 'photo.jpg'))).toString('base64')}`; // 230 kB: over the limit below
const wideBytes = await readFile(join(IMAGES_DIR, 'wide.jpg')); // 99 kB, 900 × 120
const wide = `data:image/jpeg;base64,${wideBytes.toString('base64')}`;
const tinyPng = await readFile(join(IMAGES_DIR, 'tiny.png'));
/** Distinct bytes (and cache keys), the same pixels. */
const variants = Array.from(
  { length: 5 },
  (_, i) => `data:image/jpeg;base64,${jpegWithComment(wideBytes, `variant ${i}`).toString('base64')}`,
);

const limited = await startServer({
  models: [tiny],
  maxItems: 8,
  maxQueueImages: 4,
  maxQueuePairs: 12,
  maxImageBytes: 100_000,
  maxImagePixels: 110_000,
  allowPrivateUrls: true,
});
const files = await startStaticServer(IMAGES_DIR);
t.teardown(async () => {
  await limited.close();
  await files.close();
  await cleanupTinyModel();
  await rm(root, { recursive: true, force: true });
});

const smallUri = `data:image/png;base64,${tinyPng.toString('base64')}`;

function isError(
  t: Test,
  res: { status: number; json: any; headers: Headers },
  status: number,
  code: string,
  index?: number,
) {
  t.equal(res.status, status, `${status} (${JSON.stringify(res.json).slice(0, 240)})`);
  t.equal(res.json.error?.code, code, code);
  if (index !== undefined) t.equal(res.json.error.index, index, `index ${index}`);
}

t.test(
  'rerank: more new images than the image queue holds is 413; the same gallery once cached is served',
  async (t) => {
    const tooMany = await postJson(`${limited.url}/v1/rerank`, {
      query: 'a dog',
      documents: variants.map((image) => ({ image })),
    });
    isError(t, tooMany, 413, 'too_many_items');
    t.match(tooMany.json.error.message, /more than the tiny image states queue holds \(4\)/);
    // Four, then the fifth: all five cached.
    t.equal(
      (
        await postJson(`${limited.url}/v1/rerank`, {
          query: 'a dog',
          documents: variants.slice(0, 4).map((image) => ({ image })),
        })
      ).status,
      200,
    );
    t.equal(
      (await postJson(`${limited.url}/v1/rerank`, { query: 'a dog', documents: [{ image: variants[4] }] })).status,
      200,
    );
    const cached = await postJson(`${limited.url}/v1/rerank`, {
      query: g.texts[0],
      documents: variants.map((image) => ({ image })),
    });
    t.equal(cached.status, 200, 'five cached images in a queue of four: no queue place needed');
    const want = g.pairs[0]![g.images.indexOf('wide.jpg')]!.itm_prob;
    for (const r of cached.json.results)
      t.ok(Math.abs(r.relevance_score - want) <= ITM_TOL.prob, `document ${r.index}: the golden probability`);
  },
);

t.test('rerank: equal documents tie exactly and keep their order', async (t) => {
  const docs = [smallUri, wide, smallUri, wide, wide, smallUri].map((image) => ({ image }));
  const res = await postJson(`${limited.url}/v1/rerank`, { query: g.texts[2], documents: docs });
  t.equal(res.status, 200);
  const byDoc = new Map<string, number[]>();
  for (const r of res.json.results) {
    const key = docs[r.index]!.image;
    byDoc.set(key, [...(byDoc.get(key) ?? []), r.relevance_score]);
  }
  for (const scores of byDoc.values()) t.equal(new Set(scores).size, 1, 'one score for every copy of a document');
  const order = res.json.results.map((r: { index: number }) => r.index);
  const wideFirst =
    g.pairs[2]![g.images.indexOf('wide.jpg')]!.itm_prob > g.pairs[2]![g.images.indexOf('tiny.png')]!.itm_prob;
  t.same(
    order,
    wideFirst ? [1, 3, 4, 0, 2, 5] : [0, 2, 5, 1, 3, 4],
    'best first (as the goldens rank them), ties by index',
  );
});

t.test('rerank and classify: image errors with their index, as for embeddings', async (t) => {
  const rerank = (documents: unknown[]) => postJson(`${limited.url}/v1/rerank`, { query: 'a dog', documents });
  isError(t, await rerank([{ image: smallUri }, { image: 'http://127.0.0.1:1/x.png' }]), 502, 'url_fetch_failed', 1);
  isError(t, await rerank([{ image: `${files.url}/missing.png` }]), 502, 'url_fetch_failed', 0);
  isError(t, await rerank([{ image: smallUri }, { image: photo }]), 413, 'image_too_large', 1); // bytes
  isError(
    t,
    await rerank([
      { image: `data:image/png;base64,${(await readFile(join(IMAGES_DIR, 'shapes.png'))).toString('base64')}` },
    ]),
    413,
    'image_too_large',
    0,
  ); // pixels
  const classify = (body: object) => postJson(`${limited.url}/classify`, { labels: ['a dog', 'a cat'], ...body });
  isError(
    t,
    await classify({ urls: [`${files.url}/tiny.png`, 'http://127.0.0.1:1/x.png'] }),
    502,
    'url_fetch_failed',
    1,
  );
  isError(t, await classify({ images: [smallUri, photo], itm: true }), 413, 'image_too_large', 1);
  isError(
    t,
    await classify({ image: smallUri, labels: Array.from({ length: 9 }, (_, i) => `label ${i}`) }),
    413,
    'too_many_items',
  );
  const pairs = await classify({ images: variants.slice(0, 3), labels: ['a', 'b', 'c', 'd', 'e'], itm: true });
  isError(t, pairs, 413, 'too_many_items');
  t.match(pairs.json.error.message, /image–text pairs queue holds \(12\)/, '3 × 5 pairs in a pair queue of 12');
  t.equal((await classify({ image: smallUri, itm: true })).status, 200, 'and a good request right after is served');
  const fresh = Array.from({ length: 4 }, (_, i) => ({
    image: `data:image/jpeg;base64,${jpegWithComment(wideBytes, `fresh ${i}`).toString('base64')}`,
  }));
  t.equal(
    (await postJson(`${limited.url}/v1/rerank`, { query: 'a dog', documents: fresh })).status,
    200,
    'every place given back: four new images fit the queue of four',
  );
});

t.test('classify: a full image queue is 503 with Retry-After, and the request holding it completes', async (t) => {
  const held = await holdImagePlaces(limited.url, 3, tinyPng);
  const res = await postJson(`${limited.url}/classify`, { images: [smallUri, smallUri], labels: ['a dog', 'a cat'] });
  held.release();
  isError(t, res, 503, 'overloaded');
  t.match(res.headers.get('retry-after'), /^\d+$/, 'Retry-After');
  t.equal((await held.done).status, 200);
});

t.test('rerank and classify past their deadline: 504', async (t) => {
  const slow = await startServer({ models: [tiny], requestTimeoutMs: 1, decodeThreads: 1, warmup: false });
  t.teardown(() => slow.close());
  isError(
    t,
    await postJson(`${slow.url}/v1/rerank`, { query: 'a dog', documents: [{ image: photo }] }),
    504,
    'deadline_exceeded',
  );
  isError(
    t,
    await postJson(`${slow.url}/classify`, { image: photo, labels: ['a dog', 'a cat'] }),
    504,
    'deadline_exceeded',
  );
});

t.test(
  'classify: temp clamped to [0.001, 0.5] as ALBEF does; template and caption clean-up; --no-fusion',
  async (t) => {
    const dirs = await Promise.all([
      withTemp('t-high', 5),
      withTemp('t-half', 0.5),
      withTemp('t-low', 0.0001),
      withTemp('t-milli', 0.001),
    ]);
    const server = await startServer({ models: dirs, fusion: false, warmup: false });
    t.teardown(() => server.close());
    const images = ['photo.jpg', 'wide.jpg'];
    const uris = await Promise.all(
      images.map(async (f) => `data:image/jpeg;base64,${(await readFile(join(IMAGES_DIR, f))).toString('base64')}`),
    );
    const labels = g.texts.slice(0, 4);
    const scores = async (model: string, body: object = {}) => {
      const res = await postJson(`${server.url}/classify`, { model, images: uris, labels, ...body });
      t.equal(res.status, 200, `${model}: 200 (${JSON.stringify(res.json).slice(0, 200)})`);
      return res.json.results.map((perImage: { label: string; score: number }[]) =>
        labels.map((l) => perImage.find((s) => s.label === l)!.score),
      ) as number[][];
    };
    const high = await scores('t-high');
    t.same(high, await scores('t-half'), 'temp 5 scores as 0.5');
    t.same(await scores('t-low'), await scores('t-milli'), 'temp 0.0001 scores as 0.001');
    // softmax over the labels of itc / 0.5, from the official ITC cosines.
    let worst = 0;
    images.forEach((f, i) => {
      const ii = g.images.indexOf(f);
      const logit = labels.map((_, j) => g.pairs[j]![ii]!.itc / 0.5);
      const exp = logit.map((l) => Math.exp(l - Math.max(...logit)));
      const sum = exp.reduce((a, b) => a + b, 0);
      exp.forEach((e, j) => (worst = Math.max(worst, Math.abs(high[i]![j]! - e / sum))));
    });
    t.ok(worst <= ITM_TOL.zeroShot, `t = 0.5 scores from the golden cosines (worst ${worst.toExponential(2)})`);

    const words = ['dog', 'cat', 'horse'];
    const templated = await postJson(`${server.url}/classify`, {
      model: 't-half',
      image: uris[0],
      labels: words,
      template: 'a photo of a {}, a {}',
    });
    const spelled = await postJson(`${server.url}/classify`, {
      model: 't-half',
      image: uris[0],
      labels: words.map((w) => `a photo of a ${w}, a ${w}`),
    });
    t.same(
      templated.json.results[0].map((s: { score: number }) => s.score),
      spelled.json.results[0].map((s: { score: number }) => s.score),
      'every {} of the template is the label',
    );
    t.same(
      templated.json.results[0].map((s: { label: string }) => s.label).sort(),
      [...words].sort(),
      'results name the labels as given',
    );
    const raw = await postJson(`${server.url}/classify`, {
      model: 't-half',
      image: uris[0],
      labels: ['A DOG!!!', 'a dog'],
      caption_cleanup: false,
    });
    const [a, b] = ['A DOG!!!', 'a dog'].map(
      (l) => raw.json.results[0].find((s: { label: string }) => s.label === l).score,
    );
    t.not(a, b, 'caption_cleanup false: the label is tokenized as given (clean-up would make the two equal)');
    const cleaned = await postJson(`${server.url}/classify`, {
      model: 't-half',
      image: uris[0],
      labels: ['A DOG!!!', 'a dog'],
    });
    t.equal(cleaned.json.results[0][0].score, cleaned.json.results[0][1].score, 'with clean-up they are one caption');

    isError(
      t,
      await postJson(`${server.url}/classify`, { model: 't-half', image: uris[0], labels, itm: true }),
      400,
      'fusion_unavailable',
    );
    const rerank = await postJson(`${server.url}/v1/rerank`, {
      model: 't-half',
      query: 'a dog',
      documents: [{ image: uris[0] }],
    });
    isError(t, rerank, 400, 'fusion_unavailable');
    t.match(rerank.json.error.message, /--no-fusion/, 'names the flag that left the graphs unloaded');
  },
);

t.test('rerank: return_documents gives each document as it was sent, texts and images alike', async (t) => {
  const docs = ['a dog', { text: 'a cat' }];
  const res = await postJson(`${limited.url}/v1/rerank`, {
    query: { image: smallUri },
    documents: docs,
    return_documents: true,
  });
  t.equal(res.status, 200);
  for (const r of res.json.results) t.same(r.document, docs[r.index], `document ${r.index}`);
  const images = await postJson(`${limited.url}/v1/rerank`, {
    query: 'a dog',
    documents: [{ image: smallUri }],
    return_documents: true,
    top_n: 1,
  });
  t.same(images.json.results[0].document, { image: smallUri });
});
