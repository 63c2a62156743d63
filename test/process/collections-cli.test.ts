// Collections through the real command line: `index` from ALBEF's annotation format, a folder, a list of
// URLs and a text file (metadata joined by id; a rerun resumes; a bad file reported, the rest indexed),
// three shards written at once into one store (every item exactly once, on LanceDB and on PostgreSQL),
// `collections list|info|optimize|drop`, `export` to Parquet and JSON lines (read back), and `search`
// answering as the golden re-rank orders; clear errors for metadata that is no object, a filter on a
// missing field and a collection of another model.

import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as arrow from 'apache-arrow';
import t from 'tap';
import { runCli } from '../../kit/cli.js';
import { FIXTURES } from '../../kit/golden.js';
import { startPostgres } from '../../kit/postgres.js';
import { cleanupTinyModel, startStaticServer, tinyModel } from '../../kit/server.js';
import { openStore } from '../../src/retrieval/open-store.js';

const R = join(FIXTURES, 'retrieval');
const g = JSON.parse(await readFile(join(R, 'retrieval_golden_albef-tiny-a.json'), 'utf8')) as {
  images: string[];
  t2i_topk: number[][];
  t2i_itm: number[][];
};
const scratch = await mkdtemp(join(tmpdir(), 'albef-collections-cli-'));
const { dir: model } = await tinyModel();
const pg = await startPostgres();
const files = await startStaticServer(R);
t.teardown(async () => {
  await files.close();
  await pg.close();
  await rm(scratch, { recursive: true, force: true });
  await cleanupTinyModel();
});
const json = (s: string): unknown => JSON.parse(s);
const lines = (s: string): { collection: string; added: number; skipped: number; failed: { id: string }[] }[] =>
  s
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as never);

t.test('--ann: two collections; search re-ranks as Retrieval.py does; a rerun adds nothing', async (t) => {
  const store = join(scratch, 'ann');
  const args = [
    'index',
    '--model',
    model,
    '--collection',
    'flickr',
    '--store',
    store,
    '--ann',
    join(R, 'ann.json'),
    '--image-root',
    R,
  ];
  const first = await runCli(args);
  t.equal(first.code, 0, first.stderr);
  t.match(lines(first.stdout), [
    { collection: 'flickr', added: 24, skipped: 0, failed: [] },
    { collection: 'flickr-texts', added: 60, skipped: 0, failed: [] },
  ]);
  const again = await runCli(args);
  t.match(lines(again.stdout), [
    { collection: 'flickr', added: 0, skipped: 24 },
    { collection: 'flickr-texts', added: 0, skipped: 60 },
  ]);
  const q = 5;
  const search = await runCli([
    'search',
    '--model',
    model,
    '--collection',
    'flickr',
    '--store',
    store,
    '--text',
    JSON.parse(await readFile(join(R, 'ann.json'), 'utf8'))[2].caption[1],
    '--top-k',
    '12',
    '--rerank',
    '12',
  ]);
  t.equal(search.code, 0, search.stderr);
  const golden = g.t2i_topk[q]!.map((i, j) => ({ id: g.images[i]!, logit: g.t2i_itm[q]![j]! })).sort(
    (a, b) => b.logit - a.logit,
  );
  t.same(
    (json(search.stdout) as { results: { id: string }[] }).results.map((r) => r.id).sort(),
    golden.map((x) => x.id).sort(),
    'the golden candidates of caption 5',
  );
  const info = await runCli(['collections', '--store', store, 'info', 'flickr-texts']);
  t.match(json(info.stdout), { name: 'flickr-texts', modality: 'text', count: 60, metadata_fields: ['image'] });
});

t.test('a folder with --metadata, a URL list, a text file; failures reported, the rest indexed', async (t) => {
  const photos = join(scratch, 'photos');
  await mkdir(join(photos, 'sub'), { recursive: true });
  for (const f of ['img00.png', 'img01.jpg']) await copyFile(join(R, f), join(photos, f));
  await copyFile(join(R, 'img02.jpg'), join(photos, 'sub', 'img02.jpg'));
  await writeFile(join(photos, 'broken.jpg'), (await readFile(join(R, 'img01.jpg'))).subarray(0, 200));
  const meta = join(scratch, 'meta.jsonl');
  await writeFile(
    meta,
    [
      '{"id": "img00.png", "album": "a"}',
      '{"id": "sub/img02.jpg", "album": "b", "year": 2020}',
      '{"id": "nope.jpg", "album": "c"}',
    ].join('\n'),
  );
  const store = join(scratch, 'mixed');
  const indexPhotos = ['index', '--model', model, '--collection', 'photos', '--store', store, '--images', photos];
  const folder = await runCli([...indexPhotos, '--metadata', meta]);
  t.equal(folder.code, 1, 'exit 1: one file failed');
  t.match(lines(folder.stdout)[0], { added: 3, failed: [{ id: 'broken.jpg' }] });
  t.match(folder.stderr, /photos: broken\.jpg: undecodable_image/);
  t.match(folder.stderr, /--metadata names 1 ids that are not items \(e\.g\. "nope\.jpg"\)/);
  const searchPhotos = ['search', '--model', model, '--collection', 'photos', '--store', store, '--text', 'a dog'];
  const byAlbum = await runCli([...searchPhotos, '--filter', '{"album": "b"}']);
  t.same(
    (json(byAlbum.stdout) as { results: { id: string; metadata: unknown }[] }).results.map((r) => [r.id, r.metadata]),
    [['sub/img02.jpg', { album: 'b', year: 2020 }]],
  );
  const missing = await runCli([...searchPhotos, '--filter', '{"colour": "red"}']);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /invalid_filter/);
  // Usage errors before a model loads, with the bounds of POST /v1/search.
  const tooMany = await runCli([...searchPhotos, '--rerank', '257']);
  t.equal(tooMany.code, 2);
  t.match(tooMany.stderr, '--rerank must be at most 256 (got 257)');
  const notObject = await runCli([...searchPhotos, '--filter', '["beach"]']);
  t.equal(notObject.code, 2);
  t.match(notObject.stderr, `--filter must be a JSON object, e.g. '{"album": "beach"}' (got ["beach"])`);

  const urls = join(scratch, 'urls.txt');
  await writeFile(urls, `# two images by URL\n${files.url}/img03.png\n${files.url}/img04.jpg\n`);
  const byUrl = await runCli(['index', '--model', model, '--collection', 'web', '--store', store, '--images', urls], {
    ALBEF_ALLOW_PRIVATE_URLS: 'true',
  });
  t.equal(byUrl.code, 0, byUrl.stderr);
  t.match(lines(byUrl.stdout)[0], { added: 2 });
  const texts = join(scratch, 'captions.txt');
  await writeFile(texts, 'a red car\ntwo dogs on a beach\n');
  const byText = await runCli(['index', '--model', model, '--collection', 'caps', '--store', store, '--texts', texts]);
  t.match(lines(byText.stdout)[0], { added: 2 });

  await writeFile(join(scratch, 'bad.jsonl'), '{"id": "img00.png", "album": "a"}\n[1, 2]\n');
  const bad = await runCli([...indexPhotos, '--metadata', join(scratch, 'bad.jsonl')]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /invalid_metadata.*bad\.jsonl line 2: not a JSON object/);
});

t.test('collections list, optimize, export to Parquet and JSON lines, drop', async (t) => {
  const store = join(scratch, 'ann');
  const list = json((await runCli(['collections', '--store', store, 'list'])).stdout) as {
    name: string;
    count: number;
  }[];
  t.same(
    list.map((c) => [c.name, c.count]),
    [
      ['flickr', 24],
      ['flickr-texts', 60],
    ],
  );
  const optimized = await runCli(['collections', '--store', store, 'optimize', 'flickr']);
  t.equal(optimized.code, 0, optimized.stderr);
  const parquet = join(scratch, 'out', 'flickr.parquet');
  const exported = await runCli([
    'export',
    '--collection',
    'flickr',
    '--store',
    store,
    '--format',
    'parquet',
    '--out',
    parquet,
  ]);
  t.equal(exported.code, 0, exported.stderr);
  const pq = createRequire(import.meta.url)('parquet-wasm/node') as typeof import('parquet-wasm/node');
  const table = arrow.tableFromIPC(pq.readParquet(await readFile(parquet)).intoIPCStream());
  t.equal(table.numRows, 24);
  t.equal(String(table.schema.fields.find((f) => f.name === 'vector')!.type), 'FixedSizeList[32]<Float32>');
  t.equal(table.schema.metadata.get('albef.modality'), 'image');
  const jsonl = join(scratch, 'out', 'texts.jsonl');
  await runCli(['export', '--collection', 'flickr-texts', '--store', store, '--format', 'jsonl', '--out', jsonl]);
  const rows = (await readFile(jsonl, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { id: string; vector: number[]; metadata: { image: string } });
  t.equal(rows.length, 60);
  t.ok(rows.every((r) => r.vector.length === 32 && typeof r.metadata.image === 'string'));
  const dropped = await runCli(['collections', '--store', store, 'drop', 'flickr-texts']);
  t.equal(dropped.code, 0);
  const gone = await runCli(['collections', '--store', store, 'info', 'flickr-texts']);
  t.equal(gone.code, 1);
  t.match(gone.stderr, /collection_not_found/);
});

for (const [name, spec] of [
  ['LanceDB', () => join(scratch, 'shards')],
  ['PostgreSQL', () => pg.url],
] as const) {
  t.test(`${name}: three shards written at once: every item exactly once`, async (t) => {
    const args = (extra: string[]) => [
      'index',
      '--model',
      model,
      '--collection',
      'sharded',
      '--store',
      spec(),
      '--images',
      R,
      '--batch',
      '4',
      ...extra,
    ];
    const runs = await Promise.all([
      runCli(args(['--shard', '0/3'])),
      runCli(args(['--shard', '1/3'])),
      runCli([...args([]), '--shards', '3'], { JOB_COMPLETION_INDEX: '2' }),
    ]);
    for (const r of runs) t.equal(r.code, 0, r.stderr);
    const store = await openStore(spec());
    t.teardown(() => store.close());
    t.equal((await store.info('sharded')).count, 24, 'each of the 24 images once');
    const ids: string[] = [];
    for await (const batch of store.scan('sharded', 10)) ids.push(...batch.map((i) => i.id));
    t.same(ids.sort(), [...g.images].sort());
  });
}

t.test('a collection of another model is refused', async (t) => {
  const other = join(scratch, 'other-model');
  const store = join(scratch, 'ann');
  await rm(other, { recursive: true, force: true });
  const conv = await runCli([
    'convert',
    '--checkpoint',
    join(FIXTURES, 'albef-tiny-a', 'checkpoint.pth'),
    '--arch',
    join(FIXTURES, 'albef-tiny-a', 'arch.json'),
    '--name',
    'tiny',
    '--precision',
    'int8',
    '--out',
    other,
  ]);
  t.equal(conv.code, 0, conv.stderr);
  const res = await runCli(['search', '--model', other, '--collection', 'flickr', '--store', store, '--text', 'a dog']);
  t.equal(res.code, 1);
  t.match(res.stderr, /model_mismatch.*another conversion of "tiny"/);
  const index = await runCli(['index', '--model', other, '--collection', 'flickr', '--store', store, '--images', R]);
  t.equal(index.code, 1);
  t.match(index.stderr, /collection_conflict/);
});
