// `albef-embed eval` as users run it: the official recall of albef-tiny-a on ann.json as JSON (stdout
// and --out), Ctrl-C mid-run says how to resume and the rerun gives the same report, and clear errors
// for a malformed annotation file, a missing image, a k_test below 10 and a missing argument.

import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runCli, spawnCli } from '../../kit/cli.js';
import { FIXTURES } from '../../kit/golden.js';
import { cleanupTinyModel, tinyModel } from '../../kit/server.js';

const DIR = join(FIXTURES, 'retrieval');
const g = JSON.parse(await readFile(join(DIR, 'retrieval_golden_albef-tiny-a.json'), 'utf8')) as {
  recall_itm: unknown;
  recall_itc: unknown;
};
const scratch = await mkdtemp(join(tmpdir(), 'albef-eval-cli-'));
const { dir: model } = await tinyModel();
t.teardown(async () => {
  await rm(scratch, { recursive: true, force: true });
  await cleanupTinyModel();
});
const base = ['eval', '--model', model, '--ann', join(DIR, 'ann.json'), '--image-root', DIR, '--k-test', '12'];

t.test('the official recall as JSON, on stdout and in --out; the work dir removed after', async (t) => {
  const out = join(scratch, 'report.json');
  const work = join(scratch, 'work-a');
  const res = await runCli([...base, '--out', out, '--work', work]);
  t.equal(res.code, 0, res.stderr);
  const report = JSON.parse(res.stdout);
  t.same(report.itm, g.recall_itm, 'recall_itm identical');
  t.same(report.itc, g.recall_itc, 'recall_itc identical');
  t.same(JSON.parse(await readFile(out, 'utf8')), report, '--out holds the same report');
  t.match(res.stderr, /eval itm: 24\/24 images, \d+\/\d+ pairs/, 'progress on stderr');
  t.notOk(existsSync(work), 'the work dir is removed after a complete run');
});

t.test('Ctrl-C says how to resume; the rerun finishes with the same report', async (t) => {
  const work = join(scratch, 'work-b');
  // One pair per fusion run makes the ITM stage last long enough to be interrupted in.
  const args = [...base, '--work', work, '--pairs-per-run', '1'];
  const child = spawnCli(args);
  let stderr = '';
  const code = await new Promise<number | null>((resolve) => {
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/eval itm: [1-9]\d*\/24/.test(stderr)) child.kill('SIGINT');
    });
    child.on('close', resolve);
  });
  t.equal(code, 130, stderr.slice(-400));
  t.match(stderr, `interrupted: rerun the same command to resume (the work so far is kept in ${work})`);
  const rerun = await runCli(args);
  t.equal(rerun.code, 0, rerun.stderr);
  const report = JSON.parse(rerun.stdout);
  t.same([report.itm, report.itc], [g.recall_itm, g.recall_itc]);
  t.match(rerun.stderr, /eval images: 24\/24/, 'the images were kept, not run again');
});

t.test('clear errors', async (t) => {
  const bad = join(scratch, 'bad');
  await mkdir(bad, { recursive: true });
  await writeFile(join(bad, 'ann.json'), JSON.stringify([{ image: 'img00.png', caption: ['a'] }, { caption: ['b'] }]));
  const malformed = await runCli(['eval', '--model', model, '--ann', join(bad, 'ann.json'), '--image-root', DIR]);
  t.equal(malformed.code, 1);
  t.match(malformed.stderr, /invalid_annotations.*entry 1/);

  await writeFile(join(bad, 'missing.json'), JSON.stringify([{ image: 'nope.jpg', caption: ['a dog'] }]));
  const missing = await runCli(['eval', '--model', model, '--ann', join(bad, 'missing.json'), '--image-root', DIR]);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /1 of 1 images are missing under .*"nope\.jpg"/);

  const k9 = await runCli([...base.slice(0, -1), '9']);
  t.equal(k9.code, 2);
  t.match(k9.stderr, /--k-test must be a whole number of at least 10 \(got "9"\)/);

  const none = await runCli(['eval', '--model', model]);
  t.equal(none.code, 2);
  t.match(none.stderr, /give --model, --ann and --image-root/);
});
