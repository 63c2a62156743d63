// Sharded offline indexing through the real command line: three shards of one text file (two by
// --shard I/N, one by --shards N with JOB_COMPLETION_INDEX, as an Indexed Job runs it) hold exactly
// the ids and vectors of one unsharded run, each id once; a shard interrupted mid-file makes merge
// refuse, and rerun it resumes, after which the merge equals the unsharded run. Every run uses
// --batch 1 so that each vector is computed alone in both runs and can be compared exactly.

import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { shardOf } from '../../src/cli/shard.js';
import { runCli } from '../../kit/cli.js';
import { cleanupTinyModel, tinyModel } from '../../kit/server.js';

const dir = await mkdtemp(join(tmpdir(), 'albef-shard-'));
t.teardown(async () => {
  await rm(dir, { recursive: true, force: true });
  await cleanupTinyModel();
});
const { dir: model } = await tinyModel();

const N = 48;
const texts = join(dir, 'captions.txt');
const subjects = ['dog', 'cat', 'red car', 'two people', 'bicycle', 'bowl of soup'];
const places = ['on a beach', 'in the snow', 'next to a tree', 'at night'];
await writeFile(
  texts,
  Array.from({ length: N }, (_, i) => `a ${subjects[i % 6]} ${places[i % 4]} number ${i}`).join('\n') + '\n',
);

type Line = { id: string; embedding: number[] };
const read = async (f: string): Promise<Line[]> =>
  (await readFile(f, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Line);
const embed = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  runCli(['embed', '--model', model, '--texts', texts, '--batch', '1', ...args], env);
const part = (i: number) => join(dir, `part-${i}.jsonl`);

const whole = join(dir, 'whole.jsonl');
const unsharded = await embed(['--out', whole]);
const reference = new Map((await read(whole)).map((l) => [l.id, l.embedding]));

/** Every line's id is the reference's, with the reference's vector, and no id twice. */
function sameAsReference(t: Test, lines: Line[], what: string): void {
  t.equal(new Set(lines.map((l) => l.id)).size, lines.length, `${what}: no id twice`);
  t.ok(
    lines.every((l) => reference.has(l.id) && JSON.stringify(reference.get(l.id)) === JSON.stringify(l.embedding)),
    `${what}: each vector is the unsharded run's, exactly`,
  );
}

t.test('three shards hold exactly the unsharded run, each id once', async (t) => {
  t.equal(unsharded.code, 0, unsharded.stderr);
  t.equal(reference.size, N, `the unsharded run: ${N} vectors`);
  const runs = [
    await embed(['--shard', '0/3', '--out', part(0)]),
    await embed(['--shard', '1/3', '--out', part(1)]),
    await embed(['--shards', '3', '--out', join(dir, 'part-{shard}.jsonl')], { JOB_COMPLETION_INDEX: '2' }),
  ];
  const counts: number[] = [];
  for (const [i, r] of runs.entries()) {
    t.equal(r.code, 0, r.stderr);
    const lines = await read(part(i));
    counts.push(lines.length);
    t.match(r.stderr, new RegExp(`shard ${i}/3: ${lines.length} of ${N} items`));
    t.ok(
      lines.every((l) => shardOf(l.id, 3) === i),
      `part ${i} holds only shard ${i}'s ids`,
    );
    sameAsReference(t, lines, `part ${i}`);
  }
  t.comment(`shard sizes: ${counts.join(' + ')} = ${counts.reduce((a, b) => a + b, 0)}`);
  t.ok(
    counts.every((c) => c > 0),
    'every shard has work',
  );
  const all = [...(await read(part(0))), ...(await read(part(1))), ...(await read(part(2)))];
  t.same(all.map((l) => l.id).sort(), [...reference.keys()].sort(), 'together: exactly the ids of the unsharded run');
  sameAsReference(t, all, 'all parts');
});

t.test(
  'a shard interrupted mid-file: merge refuses; the rerun resumes; then the merge is the unsharded run',
  async (t) => {
    const before = (await readFile(part(1), 'utf8')).trim().split('\n');
    await writeFile(part(1), before.slice(0, -3).join('\n') + '\n' + '{"id": "1', 'utf8'); // lost 3 lines, a torn one left
    const merged = join(dir, 'merged.jsonl');
    const refused = await runCli(['merge', '--out', merged, part(0), part(1), part(2)]);
    t.equal(refused.code, 1);
    t.match(refused.stderr, /part-1\.jsonl line \d+ is not a whole JSON line: that shard was interrupted; rerun it/);
    t.notOk(existsSync(merged), 'nothing written');

    const rerun = await embed(['--shard', '1/3', '--out', part(1)]);
    t.equal(rerun.code, 0, rerun.stderr);
    t.match(rerun.stderr, new RegExp(`3 written, ${before.length - 3} already there, 0 failed`));
    const ok = await runCli(['merge', '--out', merged, part(0), part(1), part(2)]);
    t.equal(ok.code, 0, ok.stderr);
    t.match(ok.stderr, new RegExp(`${N} vectors \\(\\d+ \\+ \\d+ \\+ \\d+ from 3 parts\\), \\d+-d, no duplicate ids`));
    const lines = await read(merged);
    t.same(
      lines.map((l) => l.id).sort(),
      [...reference.keys()].sort(),
      'the merge holds every id of the unsharded run',
    );
    sameAsReference(t, lines, 'the merge');
  },
);

t.test('mistakes are refused before they mix shards', async (t) => {
  const other = await embed(['--shard', '0/3', '--out', part(1)]);
  t.equal(other.code, 1);
  t.match(other.stderr, /part-1\.jsonl already holds \d+ ids of other shards .* give each shard its own --out/);
  const dup = await runCli(['merge', '--out', join(dir, 'dup.jsonl'), part(0), part(0)]);
  t.equal(dup.code, 1);
  t.match(dup.stderr, /ids appear more than once across the parts/);
  t.notOk(existsSync(join(dir, 'dup.jsonl')));
  const past = await embed(['--shard', '3/3', '--out', join(dir, 'x.jsonl')]);
  t.equal(past.code, 2);
  t.match(past.stderr, /shard index 3 is not below the shard count 3 \(indices count from 0/);
  const noIndex = await embed(['--shards', '3', '--out', join(dir, 'x.jsonl')], { JOB_COMPLETION_INDEX: '' });
  t.equal(noIndex.code, 2);
  t.match(noIndex.stderr, /--shards 3 takes the shard index from JOB_COMPLETION_INDEX/);
});

t.test('shardOf: a partition that depends on the id alone', async (t) => {
  const ids = Array.from({ length: 3000 }, (_, i) => `photos/${i % 7}/img-${i}.jpg`);
  const sizes = [0, 0, 0];
  for (const id of ids) sizes[shardOf(id, 3)]!++;
  t.ok(
    sizes.every((s) => s > 900 && s < 1100),
    `balanced: ${sizes.join(', ')}`,
  );
  t.same(
    [...ids].reverse().map((id) => shardOf(id, 3)),
    ids.map((id) => shardOf(id, 3)).reverse(),
    'the same shard whatever order the ids come in',
  );
});
