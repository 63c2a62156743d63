// /v1/search and /v1/collections against bad input and faults, over real HTTP: an unknown collection
// 404, a collection of another model (or another conversion of it) 409, rerank of a same-modality query
// 400, an undecodable query image 422, a filter on a field no item has 400, query by id (itself left
// out; an unknown id 404), include, thumbnails held to the collection's root, a candidate whose file
// is gone 502 naming it, and the store going away: 503 naming it and /readyz 503, then 200 once it is
// back, without a restart. --no-store serves no collections.

import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import { FIXTURES } from '../../kit/golden.js';
import { startPostgres } from '../../kit/postgres.js';
import { cleanupTinyModel, postJson, startServer } from '../../kit/server.js';
import { openStore } from '../../src/retrieval/open-store.js';
import { indexItems, type IndexItem } from '../../src/service/indexer.js';

const scratch = await mkdtemp(join(tmpdir(), 'albef-search-errors-'));
const photos = join(scratch, 'photos');
await mkdir(photos);
const files = ['img00.png', 'img01.jpg', 'img02.jpg', 'img03.png', 'img04.jpg', 'img05.jpg'];
for (const f of files) await copyFile(join(FIXTURES, 'retrieval', f), join(photos, f));
const pg = await startPostgres();
const server = await startServer({ store: pg.url });
t.teardown(async () => {
  await server.close();
  await pg.close();
  await rm(scratch, { recursive: true, force: true });
  await cleanupTinyModel();
});
const embedder = server.app.service.requireEmbedder();
const model = embedder.model();
const store = await openStore(pg.url);
t.teardown(() => store.close());
const imageItems: IndexItem[] = files.map((f, i) => ({
  id: f,
  source: f,
  file: join(photos, f),
  metadata: { kind: f.endsWith('.png') ? 'png' : 'jpeg', n: i, even: i % 2 === 0 },
}));
const options = { batch: 8, captionCleanup: true };
await indexItems(embedder, model, store, imageItems, {
  ...options,
  collection: 'pics',
  modality: 'image',
  root: photos,
});
await indexItems(
  embedder,
  model,
  store,
  ['two blue circles', 'three black squares', 'a green triangle'].map((text, i) => ({ id: `c${i}`, source: text })),
  { ...options, collection: 'caps', modality: 'text' },
);
const search = (body: object) => postJson(`${server.url}/v1/search`, body);
const error = (res: { status: number; json: { error: { code: string; message: string } } }) => ({
  status: res.status,
  code: res.json.error?.code,
  message: res.json.error?.message,
});

t.test('the collections, listed and one by one', async (t) => {
  const list = await fetch(`${server.url}/v1/collections`).then((r) => r.json());
  t.match(list, [
    { name: 'caps', model: 'tiny', modality: 'text', count: 3, dim: 32, index: 'none' },
    { name: 'pics', model: 'tiny', modality: 'image', count: 6, metadata_fields: ['even', 'kind', 'n'] },
  ]);
  t.notMatch(JSON.stringify(list), /secret|password/);
  const one = await fetch(`${server.url}/v1/collections/pics`);
  t.match(await one.json(), { name: 'pics', count: 6 });
  const none = await fetch(`${server.url}/v1/collections/nope`);
  t.match(
    { status: none.status, body: await none.json() },
    { status: 404, body: { error: { code: 'collection_not_found' } } },
  );
});

t.test('refused: unknown collection, another model, same-modality rerank, bad image, bad filter', async (t) => {
  t.match(error(await search({ collection: 'nope', query: 'a dog' })), { status: 404, code: 'collection_not_found' });
  await store.create({ name: 'elsewhere', model: 'albef_4m', modelSha256: 'a'.repeat(64), modality: 'image', dim: 32 });
  t.match(error(await search({ collection: 'elsewhere', query: 'a dog' })), {
    status: 409,
    code: 'model_mismatch',
    message: /indexed with model "albef_4m", which this service does not serve/,
  });
  await store.create({ name: 'reconverted', model: 'tiny', modelSha256: 'b'.repeat(64), modality: 'image', dim: 32 });
  t.match(error(await search({ collection: 'reconverted', query: 'a dog' })), {
    status: 409,
    code: 'model_mismatch',
    message: /another conversion of "tiny"/,
  });
  t.match(error(await search({ collection: 'pics', query: 'a dog', model: 'other' })), {
    status: 409,
    code: 'model_mismatch',
  });
  t.match(error(await search({ collection: 'caps', query: 'a dog', rerank: 4 })), {
    status: 400,
    code: 'rerank_unavailable',
    message: /a text query against a collection of texts/,
  });
  const broken = (await sharp(join(photos, 'img01.jpg')).jpeg().toBuffer()).subarray(0, 300).toString('base64');
  t.match(error(await search({ collection: 'pics', query: { image: broken } })), {
    status: 422,
    code: 'undecodable_image',
  });
  // A re-rank that cannot run is refused before the query image is decoded.
  t.match(error(await search({ collection: 'pics', query: { image: broken }, rerank: 4 })), {
    status: 400,
    code: 'rerank_unavailable',
    message: /an image query against a collection of images/,
  });
  t.match(error(await search({ collection: 'pics', query: 'a dog', filter: { colour: 'red' } })), {
    status: 400,
    code: 'invalid_filter',
  });
  t.match(error(await search({ collection: 'pics', query: 'a dog', filter: { kind: ['png'] } })), {
    status: 400,
    code: 'invalid_request',
  });
  t.match(error(await search({ collection: 'pics', query: { id: 'nope.jpg' } })), {
    status: 404,
    code: 'item_not_found',
  });
});

t.test('filter, include, query by id', async (t) => {
  const png = await search({ collection: 'pics', query: 'a dog', top_k: 6, filter: { kind: 'png' } });
  t.same(png.json.results.map((r: { id: string }) => r.id).sort(), ['img00.png', 'img03.png']);
  const both = await search({ collection: 'pics', query: 'a dog', top_k: 6, filter: { kind: 'jpeg', even: true } });
  t.same(both.json.results.map((r: { id: string }) => r.id).sort(), ['img02.jpg', 'img04.jpg']);
  const bare = await search({ collection: 'pics', query: 'a dog', top_k: 2, include: [] });
  t.same(Object.keys(bare.json.results[0]).sort(), ['id', 'itc', 'score']);
  const full = await search({ collection: 'pics', query: 'a dog', top_k: 1 });
  t.match(full.json.results[0], { source: String, metadata: { kind: String } });
  const like = await search({ collection: 'pics', query: { id: 'img01.jpg' }, top_k: 10 });
  t.equal(like.json.results.length, 5, 'every other item');
  t.notOk(
    like.json.results.some((r: { id: string }) => r.id === 'img01.jpg'),
    'not itself',
  );
  const byId = await search({ collection: 'caps', query: { id: 'c0' }, top_k: 5 });
  t.same(byId.json.usage, { texts: 0, images: 0, pairs: 0 }, 'no tower ran for a query by id');
  t.match(error(await search({ collection: 'pics', query: { id: 'img01.jpg' }, rerank: 3 })), {
    status: 400,
    code: 'rerank_unavailable',
  });
});

t.test("thumbnails come from the collection's root only", async (t) => {
  const thumb = await fetch(`${server.url}/v1/collections/pics/items/img01.jpg/image?size=32`);
  t.equal(thumb.status, 200);
  t.equal(thumb.headers.get('content-type'), 'image/jpeg');
  const meta = await sharp(Buffer.from(await thumb.arrayBuffer())).metadata();
  t.ok(meta.width <= 32 && meta.height <= 32, `within 32 px (${meta.width}×${meta.height})`);
  // A source that would leave the root (written straight into the store) is refused, not read.
  await store.add('pics', [{ id: 'escape', source: '../../etc/passwd', vector: new Float32Array(32).fill(0.1) }]);
  const escape = await fetch(`${server.url}/v1/collections/pics/items/escape/image`);
  t.match(
    { status: escape.status, body: await escape.json() },
    { status: 400, body: { error: { code: 'path_outside_root' } } },
  );
  const texts = await fetch(`${server.url}/v1/collections/caps/items/c0/image`);
  t.equal(texts.status, 400);
});

t.test('a re-rank candidate whose file is gone: 502 naming it', async (t) => {
  const gone = join(scratch, 'gone');
  await mkdir(gone);
  await copyFile(join(photos, 'img01.jpg'), join(gone, 'only.jpg'));
  await indexItems(embedder, model, store, [{ id: 'only.jpg', source: 'only.jpg', file: join(gone, 'only.jpg') }], {
    ...options,
    collection: 'gone',
    modality: 'image',
    root: gone,
  });
  await rm(join(gone, 'only.jpg'));
  t.match(error(await search({ collection: 'gone', query: 'a dog', rerank: 1 })), {
    status: 502,
    code: 'source_unavailable',
    message: /collection item "only.jpg": cannot read only.jpg/,
  });
  t.equal((await search({ collection: 'gone', query: 'a dog' })).status, 200, 'ITC alone still answers');
  // A candidate that no longer decodes: the matcher's own error, naming the item by its id.
  await copyFile(join(photos, 'img01.jpg'), join(gone, 'bad.jpg'));
  await indexItems(embedder, model, store, [{ id: 'bad.jpg', source: 'bad.jpg', file: join(gone, 'bad.jpg') }], {
    ...options,
    collection: 'corrupt',
    modality: 'image',
    root: gone,
  });
  await writeFile(join(gone, 'bad.jpg'), (await readFile(join(photos, 'img01.jpg'))).subarray(0, 300)); // cut short
  const corrupt = await search({ collection: 'corrupt', query: 'a dog', rerank: 1 });
  t.match(error(corrupt), { status: 422, code: 'undecodable_image', message: /^collection item "bad\.jpg": / });
  t.notOk('index' in corrupt.json.error, 'no index: the request has no list it could point into');
});

t.test('a store write that fails while the next batch runs is the error of the indexing call', async (t) => {
  // The second item's write is refused while the third is in the text tower: before, that rejection
  // was unhandled and ended the process.
  const items: IndexItem[] = ['one', 'two', 'three'].map((text, i) => ({
    id: `w${i}`,
    source: text,
    ...(i === 1 ? { metadata: 'not an object' as unknown as Record<string, unknown> } : {}),
  }));
  await t.rejects(
    indexItems(embedder, model, store, items, {
      batch: 1,
      captionCleanup: true,
      collection: 'writes',
      modality: 'text',
    }),
    { code: 'invalid_metadata' },
  );
  t.same([...(await store.present('writes', ['w0', 'w1', 'w2']))], ['w0'], 'the batch before it was written');
});

t.test('the store goes away and comes back: 503 naming it, /readyz 503, then 200, no restart', async (t) => {
  t.equal((await fetch(`${server.url}/readyz`)).status, 200);
  await pg.stop();
  const down = await search({ collection: 'pics', query: 'a dog' });
  t.match(error(down), { status: 503, code: 'store_unavailable', message: /store postgres:\/\/.*127\.0\.0\.1/ });
  const list = await fetch(`${server.url}/v1/collections`);
  t.equal(list.status, 503);
  await new Promise((r) => setTimeout(r, 1100)); // /readyz asks the store at most once a second
  const ready = await fetch(`${server.url}/readyz`);
  t.match(
    { status: ready.status, body: await ready.json() },
    {
      status: 503,
      body: { status: 'store_unavailable', reason: /postgres:\/\// },
    },
  );
  t.equal((await postJson(`${server.url}/embed/text`, { text: 'still embeds' })).status, 200, 'embedding unharmed');
  await pg.start();
  await new Promise((r) => setTimeout(r, 1100));
  t.equal((await fetch(`${server.url}/readyz`)).status, 200, 'ready again');
  t.equal((await search({ collection: 'pics', query: 'a dog' })).status, 200, 'searching again');
});

t.test('--no-store: no collections, and search finds none', async (t) => {
  const bare = await startServer({ store: '' });
  t.teardown(() => bare.close());
  t.same(await fetch(`${bare.url}/v1/collections`).then((r) => r.json()), []);
  t.match(error(await postJson(`${bare.url}/v1/search`, { collection: 'pics', query: 'a dog' })), {
    status: 404,
    code: 'collection_not_found',
  });
  t.equal((await fetch(`${bare.url}/readyz`)).status, 200);
});
