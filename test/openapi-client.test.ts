// The OpenAPI document as a contract: it validates as OpenAPI 3, documents every status the routes
// return, the committed generated types (test/generated/albef-api.ts, `npm run openapi:types`) are
// what openapi-typescript makes of the served document today, and a typed openapi-fetch client
// built on them calls every endpoint.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import createClient from 'openapi-fetch';
import t from 'tap';
import { PACKAGE_ROOT } from '../src/paths.js';
import { generateApiTypes } from '../scripts/openapi-types.js';
import type { paths } from './generated/albef-api.js';
import { cosine, golden, IMAGES_DIR, TOL } from './helpers/golden.js';
import { cleanupTinyModel, startServer } from './helpers/server.js';

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
  const result = await new Validator().validate(doc as never);
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
  };
  for (const [key, codes] of Object.entries(expected)) {
    const [method, path] = key.split(' ') as [string, string];
    const documented = Object.keys(doc.paths[path]?.[method]?.responses ?? {}).map(Number);
    t.same(documented.sort((a, b) => a - b), codes, `${key} documents ${codes.join(', ')}`);
  }
  const timing = (path: string) => Object.keys(doc.paths[path]!.post!.responses['200']!.headers ?? {}).sort();
  t.same(timing('/embed/text'), ['x-inference-time', 'x-queue-time', 'x-total-time'], 'text timing headers documented');
  t.same(timing('/embed/image'), ['x-decode-time', 'x-inference-time', 'x-queue-time', 'x-total-time'], 'image timing headers documented');
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
  t.ok(cosine(image.data!.embeddings[0] as number[], golden.images.find((g) => g.file === 'tiny.png')!.embedding) >= TOL.imageCos);

  const openai = await client.POST('/v1/embeddings', { body: { input: ['a dog', { image: `data:image/png;base64,${png}` }] } });
  t.equal(openai.data!.data.length, 2);

  const models = await client.GET('/models');
  t.equal(models.data!.default, 'tiny');
  t.equal((await client.GET('/healthz')).data!.status, 'ok');
  t.equal((await client.GET('/readyz')).data!.status, 'ready');
  const metrics = await client.GET('/metrics', { parseAs: 'text' });
  t.match(metrics.data, /albef_http_requests_total/);

  const bad = await client.POST('/embed/text', { body: { text: 'a', model: 'nope' } });
  t.equal(bad.response.status, 404);
  t.equal((bad.error as { error: { code: string } }).error.code, 'model_not_found', 'errors are typed too');
});
