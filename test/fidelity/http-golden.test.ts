// End to end over real HTTP: every fixture image through every input form and every fixture text
// in both caption modes give the golden ALBEF vectors.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { cosine, golden, IMAGES_DIR, maxAbsDiff, TOL } from '../../kit/golden.js';
import { cleanupTinyModel, fromBase64, postJson, startServer, startStaticServer } from '../../kit/server.js';

const server = await startServer({ allowPrivateUrls: true });
const files = await startStaticServer(IMAGES_DIR);
t.teardown(async () => {
  await server.close();
  await files.close();
  await cleanupTinyModel();
});

const imageBytes = new Map<string, Buffer>();
for (const g of golden.images) imageBytes.set(g.file, await readFile(join(IMAGES_DIR, g.file)));
const mime = (f: string) => (f.endsWith('.png') ? 'image/png' : 'image/jpeg');

function checkImages(t: Test, embeddings: (number[] | string)[], label: string) {
  t.equal(embeddings.length, golden.images.length, `${label}: one vector per image`);
  golden.images.forEach((g, i) => {
    const e = embeddings[i]!;
    const v = typeof e === 'string' ? fromBase64(e) : e;
    const cos = cosine(v, g.embedding);
    t.ok(cos >= TOL.imageCos, `${label} ${g.file}: cosine ${cos.toFixed(7)}`);
  });
}

t.test('multipart: all fixture images in one request, in order', async (t) => {
  const form = new FormData();
  for (const g of golden.images)
    form.append('file', new Blob([imageBytes.get(g.file)!], { type: mime(g.file) }), g.file);
  const res = await fetch(`${server.url}/embed/image`, { method: 'POST', body: form });
  t.equal(res.status, 200);
  const body = (await res.json()) as { model: string; modality: string; dim: number; embeddings: number[][] };
  t.match(body, { model: 'tiny', modality: 'image', dim: 32 });
  checkImages(t, body.embeddings, 'multipart');
});

t.test('JSON base64, data URIs and base64 output', async (t) => {
  const images = golden.images.map((g) => imageBytes.get(g.file)!.toString('base64'));
  const a = await postJson(`${server.url}/embed/image`, { images });
  t.equal(a.status, 200);
  checkImages(t, a.json.embeddings, 'base64');
  const uris = golden.images.map((g) => `data:${mime(g.file)};base64,${imageBytes.get(g.file)!.toString('base64')}`);
  const b = await postJson(`${server.url}/embed/image`, { images: uris, encoding_format: 'base64' });
  t.equal(b.status, 200);
  t.type(b.json.embeddings[0], 'string');
  checkImages(t, b.json.embeddings, 'data URI');
  const one = await postJson(`${server.url}/embed/image`, { image: images[0] });
  checkImages(t, [...one.json.embeddings, ...a.json.embeddings.slice(1)], 'single image');
});

t.test('URLs from a local static server', async (t) => {
  const res = await postJson(`${server.url}/embed/image`, { urls: golden.images.map((g) => `${files.url}/${g.file}`) });
  t.equal(res.status, 200, JSON.stringify(res.json).slice(0, 200));
  checkImages(t, res.json.embeddings, 'url');
  const one = await postJson(`${server.url}/embed/image`, { url: `${files.url}/${golden.images[0]!.file}` });
  t.ok(cosine(one.json.embeddings[0], golden.images[0]!.embedding) >= TOL.imageCos, 'single url');
  // One rule for an image value on every route: `image`/`images` take a URL as rerank and /v1/embeddings do.
  const asValue = await postJson(`${server.url}/embed/image`, { images: [`${files.url}/${golden.images[0]!.file}`] });
  t.ok(cosine(asValue.json.embeddings[0], golden.images[0]!.embedding) >= TOL.imageCos, 'a URL as an image value');
});

t.test('raw image/* body', async (t) => {
  const g = golden.images[0]!;
  const res = await fetch(`${server.url}/embed/image`, {
    method: 'POST',
    headers: { 'content-type': mime(g.file) },
    body: imageBytes.get(g.file)!,
  });
  t.equal(res.status, 200);
  const body = (await res.json()) as { embeddings: number[][] };
  t.ok(cosine(body.embeddings[0]!, g.embedding) >= TOL.imageCos);
});

for (const mode of ['pre_caption', 'raw'] as const) {
  t.test(`texts with caption clean-up ${mode === 'raw' ? 'off' : 'on'}`, async (t) => {
    const res = await postJson(`${server.url}/embed/text`, {
      texts: golden.texts.map((g) => g.text),
      caption_cleanup: mode === 'pre_caption',
    });
    t.equal(res.status, 200);
    t.match(res.json, { model: 'tiny', modality: 'text', dim: 32 });
    golden.texts.forEach((g, i) => {
      const v = res.json.embeddings[i];
      const cos = cosine(v, g[mode].embedding);
      const diff = maxAbsDiff(v, g[mode].embedding);
      t.ok(
        cos >= TOL.textCos && diff <= TOL.textMaxAbs,
        `${JSON.stringify(g.text).slice(0, 40)}: cos ${cos.toFixed(7)} max|Δ| ${diff.toExponential(2)}`,
      );
    });
    const single = await postJson(`${server.url}/embed/text`, {
      text: golden.texts[2]!.text,
      caption_cleanup: mode === 'pre_caption',
      encoding_format: 'base64',
    });
    t.ok(
      cosine(fromBase64(single.json.embeddings[0]), golden.texts[2]![mode].embedding) >= TOL.textCos,
      'single text, base64',
    );
  });
}

t.test('OpenAI-compatible /v1/embeddings: texts and images mixed', async (t) => {
  const g = golden.images[1]!;
  const res = await postJson(`${server.url}/v1/embeddings`, {
    input: [
      golden.texts[0]!.text,
      { text: golden.texts[1]!.text },
      { image: `data:image/png;base64,${imageBytes.get(g.file)!.toString('base64')}` },
      { image: `${files.url}/${golden.images[0]!.file}` },
      { image: imageBytes.get(golden.images[2]!.file)!.toString('base64') },
    ],
  });
  t.equal(res.status, 200, JSON.stringify(res.json).slice(0, 300));
  t.match(res.json, { object: 'list', model: 'tiny' });
  t.same(
    res.json.data.map((d: { index: number }) => d.index),
    [0, 1, 2, 3, 4],
  );
  t.ok(
    cosine(res.json.data[0].embedding, golden.texts[0]!.pre_caption.embedding) >= TOL.textCos,
    'text string (clean-up on)',
  );
  t.ok(cosine(res.json.data[1].embedding, golden.texts[1]!.pre_caption.embedding) >= TOL.textCos, 'text item');
  t.ok(cosine(res.json.data[2].embedding, g.embedding) >= TOL.imageCos, 'image data URI');
  t.ok(cosine(res.json.data[3].embedding, golden.images[0]!.embedding) >= TOL.imageCos, 'image URL');
  t.ok(cosine(res.json.data[4].embedding, golden.images[2]!.embedding) >= TOL.imageCos, 'image as plain base64');
  const tokens = golden.texts[0]!.pre_caption.ids.length + golden.texts[1]!.pre_caption.ids.length;
  t.same(res.json.usage, { prompt_tokens: tokens, total_tokens: tokens });
  const s = await postJson(`${server.url}/v1/embeddings`, { input: 'a dog', encoding_format: 'base64' });
  t.ok(
    cosine(fromBase64(s.json.data[0].embedding), golden.texts[1]!.pre_caption.embedding) >= TOL.textCos,
    'plain string input, base64',
  );
});

t.test('models, health, readiness, metrics, OpenAPI', async (t) => {
  const models = await (await fetch(`${server.url}/models`)).json();
  t.match(models, {
    default: 'tiny',
    models: [{ name: 'tiny', dim: 32, image_res: 96, precision: 'fp32', provider: { image: 'cpu', text: 'cpu' } }],
  });
  t.equal((await fetch(`${server.url}/healthz`)).status, 200);
  t.equal((await fetch(`${server.url}/readyz`)).status, 200);
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  t.match(metrics, /albef_embedded_items_total\{model="tiny",modality="image"\} \d+/);
  t.match(metrics, /albef_stage_duration_seconds_count\{stage="decode",model="tiny"\}/);
  const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as {
    openapi: string;
    paths: Record<string, unknown>;
  };
  t.match(doc.openapi, /^3\./);
  for (const p of ['/embed/text', '/embed/image', '/v1/embeddings', '/models', '/healthz', '/readyz', '/metrics'])
    t.ok(doc.paths[p], `documents ${p}`);
  t.equal((await fetch(`${server.url}/docs/`)).status, 200, 'Swagger UI');
});
