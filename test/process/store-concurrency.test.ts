// Scale-out: three indexing processes create the same collection at once and add overlapping and
// disjoint id sets to it, on each store; afterwards every id is there exactly once.

import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';

import { startPostgres } from '../../kit/postgres.js';
import { openStore } from '../../src/retrieval/open-store.js';

const run = promisify(execFile);
const writer = path.resolve(import.meta.dirname, '../../kit/store-writer.ts');

// Writer A: 0..299, B: 150..449 (overlaps A), C: every third id of 0..449 (overlaps both) plus nothing
// else, so 450 distinct ids, many offered two or three times at once.
const shares = [
  [0, 299, 1],
  [150, 449, 1],
  [0, 449, 3],
];

async function writeConcurrently(t: Test, storeSpec: string): Promise<void> {
  const startAt = Date.now() + 2500; // after the three have loaded their modules
  const outputs = await Promise.all(
    shares.map(([first, last, step]) =>
      run(
        process.execPath,
        [
          '--import=./kit/ts-loader.mjs',
          writer,
          storeSpec,
          'shared',
          String(startAt),
          String(first),
          String(last),
          String(step),
        ],
        { cwd: path.resolve(import.meta.dirname, '../..'), timeout: 120_000 },
      ),
    ),
  );
  const results = outputs.map((o) => JSON.parse(o.stdout) as { added: number; skipped: number });
  t.equal(
    results.reduce((n, r) => n + r.added, 0),
    450,
    'the writers report 450 additions between them',
  );
  const store = await openStore(storeSpec);
  t.teardown(() => store.close());
  const seen = new Map<string, number>();
  for await (const batch of store.scan('shared', 100))
    for (const item of batch) seen.set(item.id, (seen.get(item.id) ?? 0) + 1);
  t.equal(seen.size, 450, 'every id is there');
  t.same(
    [...seen.values()].filter((n) => n !== 1),
    [],
    'none twice',
  );
  t.equal((await store.info('shared')).count, 450);
  t.same(
    (await store.list()).map((c) => c.name),
    ['shared'],
    'one collection, created by three processes',
  );
}

t.test('LanceDB directory', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'albef-lance-conc-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeConcurrently(t, dir);
});

t.test('PostgreSQL', async (t) => {
  const pg = await startPostgres();
  t.teardown(() => pg.close());
  await writeConcurrently(t, pg.url);
});
