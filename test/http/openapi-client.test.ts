// The OpenAPI document as a contract: it validates as OpenAPI 3, documents every status the routes
// return, the committed generated types (test/generated/albef-api.ts, `npm run openapi:types`) are
// what openapi-typescript makes of the served document today, and a typed openapi-fetch client
// built on them calls every endpoint.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import createClient from 'openapi-fetch';
import t from 'tap';
import { PACKAGE_ROOT } from '../../src/core/paths.js';
import { generateApiTypes } from '../../scripts/openapi-types.js';
import type { paths } from '../generated/albef-api.js';
import { cosine, golden, IMAGES_DIR, ITM_TOL, itmGolden, TOL } from '../../kit/golden.js';
import { cleanupTinyModel, startServer } from '../../kit/server.js';

const server = await startServer();
t.teardown(async () => {
  await server.close();
  await cleanupTinyModel();
});
const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as {
  openapi: string;
  paths: Record<string, Record<string, { responses: Record<string, { headers?: Record<string, unknown> }> }>>;
};

t.test('the document validates as OpenAPI 3 and documents every status', async (t) => {
  const result = await new Validator().validate(doc);
  t.ok(result.valid, JSON.stringify(result.errors ?? []).slice(0, 500));
  const expected: Record<string, number[]> = {
    'post /embed/text': [200, 400, 401, 404, 413, 415, 500, 503, 504],
    'post /embed/image': [200, 400, 401, 404, 413, 415, 422, 500, 502, 503, 504],
    'post /v1/embeddings': [200, 400, 401, 404, 413, 415, 422, 500, 502, 503, 504],
    'get /models': [200, 401, 503],
    'get /v1/models': [200, 401, 503],
    'get /v1/models/{model}': [200, 401, 404, 503],
    'get /readyz': [200, 503],
    'get /healthz': [200],
    'post /v1/search': [200, 400, 401, 404, 409, 413, 415, 422, 500, 502, 503, 504],
    'get /v1/collections': [200, 401, 503],
    'get /v1/collections/{name}': [200, 401, 404, 503],
  };
  for (const [key, codes] of Object.entries(expected)) {
    const [method, path] = key.split(' ') as [string, string];
    const documented = Object.keys(doc.paths[path]?.[method]?.responses ?? {}).map(Number);
    t.same(
      documented.sort((a, b) => a - b),
      codes,
      `${key} documents ${codes.join(', ')}`,
    );
  }
  const timing = (path: string) => Object.keys(doc.paths[path]!.post!.responses['200']!.headers ?? {}).sort();
  t.same(timing('/embed/text'), ['x-inference-time', 'x-queue-time', 'x-total-time'], 'text timing headers documented');
  t.same(
    timing('/embed/image'),
    ['x-decode-time', 'x-inference-time', 'x-queue-time', 'x-total-time'],
    'image timing headers documented',
  );
  t.same(timing('/v1/embeddings'), ['x-decode-time', 'x-inference-time', 'x-queue-time', 'x-total-time']);
});

t.test('the committed client types match the served document', async (t) => {
  const committed = readFileSync(join(PACKAGE_ROOT, 'test', 'generated', 'albef-api.ts'), 'utf8');
  t.equal(await generateApiTypes(doc), committed, 'run `npm run openapi:types` after changing a route schema');
});

t.test('a typed client calls every endpoint', async (t) => {
  const client = createClient<paths>({ baseUrl: server.url });
  const text = await client.POST('/embed/text', { body: { texts: [golden.texts[1]!.text] } });
  t.equal(text.response.status, 200);
  t.ok(cosine(text.data!.embeddings[0] as number[], golden.texts[1]!.pre_caption.embedding) >= TOL.textCos);

  const png = readFileSync(join(IMAGES_DIR, 'tiny.png')).toString('base64');
  const image = await client.POST('/embed/image', { body: { image: png } });
  t.equal(image.response.status, 200);
  t.ok(
    cosine(image.data!.embeddings[0] as number[], golden.images.find((g) => g.file === 'tiny.png')!.embedding) >=
      TOL.imageCos,
  );

  const openai = await client.POST('/v1/embeddings', {
    body: { input: ['a dog', { image: `data:image/png;base64,${png}` }] },
  });
  t.equal(openai.data!.data.length, 2);

  // Re-ranking and zero-shot classification against the official modules' outputs (itm_golden.json).
  const g = itmGolden;
  const files = ['photo.jpg', 'shapes.png', 'tiny.png'];
  const cols = files.map((f) => g.images.indexOf(f));
  const b64 = files.map((f) => readFileSync(join(IMAGES_DIR, f)).toString('base64'));
  const rerank = await client.POST('/v1/rerank', {
    body: { query: g.texts[1]!, documents: b64.map((image) => ({ image })) },
  });
  t.equal(rerank.response.status, 200);
  const results = rerank.data!.results;
  t.same(
    results.map((r) => r.index).sort((a, b) => a - b),
    [0, 1, 2],
    'every document once, indices in range',
  );
  t.ok(
    results.every((r, i) => i === 0 || results[i - 1]!.relevance_score >= r.relevance_score),
    'best first',
  );
  for (const r of results) {
    const want = g.pairs[1]![cols[r.index]!]!;
    t.ok(Math.abs(r.relevance_score - want.itm_prob) <= ITM_TOL.prob, `rerank ${files[r.index]}: relevance_score`);
    t.ok(
      Math.abs(r.itm_logits[0]! - want.itm_logits[0]) <= ITM_TOL.logitsFile &&
        Math.abs(r.itm_logits[1]! - want.itm_logits[1]) <= ITM_TOL.logitsFile,
      `rerank ${files[r.index]}: itm_logits`,
    );
    t.ok(Math.abs(r.itc - want.itc) <= ITM_TOL.itc, `rerank ${files[r.index]}: itc`);
  }
  t.same(rerank.data!.usage, { texts: 1, images: files.length });

  const classify = await client.POST('/classify', {
    body: { images: b64, labels: g.texts, template: '{}', itm: true },
  });
  t.equal(classify.response.status, 200);
  t.equal(classify.data!.results.length, files.length, 'one result list per image');
  classify.data!.results.forEach((perImage, k) => {
    t.same(perImage.map((s) => s.label).sort(), [...g.texts].sort(), `${files[k]}: every label given`);
    t.ok(
      perImage.every((s, i) => i === 0 || perImage[i - 1]!.score >= s.score),
      `${files[k]}: best first`,
    );
    for (const s of perImage) {
      const j = g.texts.indexOf(s.label);
      if (Math.abs(s.score - g.zero_shot[cols[k]!]![j]!) > ITM_TOL.zeroShot)
        t.fail(`${files[k]} × ${s.label}: zero-shot ${s.score}`);
      if (Math.abs(s.itm_prob! - g.pairs[j]![cols[k]!]!.itm_prob) > ITM_TOL.prob)
        t.fail(`${files[k]} × ${s.label}: itm_prob ${s.itm_prob}`);
    }
  });

  const models = await client.GET('/models');
  t.equal(models.data!.default, 'tiny');
  const tiny = models.data!.models.find((m) => m.name === 'tiny')!;
  const list = await client.GET('/v1/models');
  t.equal(list.response.status, 200);
  t.equal(list.data!.object, 'list');
  t.same(
    list.data!.data.map((m) => m.id),
    models.data!.models.map((m) => m.name),
    'the same models as GET /models',
  );
  const one = await client.GET('/v1/models/{model}', { params: { path: { model: 'tiny' } } });
  t.equal(one.response.status, 200);
  t.same(
    one.data,
    list.data!.data.find((m) => m.id === 'tiny'),
    'one model as in the list',
  );
  t.equal(one.data!.dimensions, tiny.dim);
  const unknown = await client.GET('/v1/models/{model}', { params: { path: { model: 'nope' } } });
  t.equal(unknown.response.status, 404);
  t.equal((unknown.error as { error: { code: string; type: string } }).error.code, 'model_not_found');
  t.equal((await client.GET('/healthz')).data!.status, 'ok');
  t.equal((await client.GET('/readyz')).data!.status, 'ready');
  const metrics = await client.GET('/metrics', { parseAs: 'text' });
  t.match(metrics.data, /albef_http_requests_total/);

  const bad = await client.POST('/embed/text', { body: { text: 'a', model: 'nope' } });
  t.equal(bad.response.status, 404);
  t.equal((bad.error as { error: { code: string } }).error.code, 'model_not_found', 'errors are typed too');
});
