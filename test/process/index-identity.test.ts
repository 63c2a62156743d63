// Offline indexing refuses to mix what it should not (issue 22, items 4 and 11): each line says its
// model, modality and tower, so a resumed run into a file of other vectors and a merge of image with
// text parts, or of two models' parts, are refused naming both; merge keeps an existing --out unless
// --force; an empty shard still leaves its file; files of older versions stay readable. And an
// interrupted run: Ctrl-C stops between batches with whole lines and says how to resume; failed files
// are counted apart from embedded ones.

import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runCli, spawnCli } from '../../kit/cli.js';
import { golden, IMAGES_DIR, TINY_ARCH } from '../../kit/golden.js';
import { cleanupTinyModel, tinyModel } from '../../kit/server.js';
import { shardOf } from '../../src/cli/shard.js';

const dir = await mkdtemp(join(tmpdir(), 'albef-identity-'));
t.teardown(async () => {
  await rm(dir, { recursive: true, force: true });
  await cleanupTinyModel();
});
const { dir: model } = await tinyModel();
const manifest = JSON.parse(await readFile(join(model, 'model.json'), 'utf8')) as {
  name: string;
  files: Record<string, { sha256: string }>;
};

type Line = { id: string; model?: string; modality?: string; tower_sha256?: string; embedding: number[] };
const read = async (f: string): Promise<Line[]> =>
  (await readFile(f, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Line);

const photos = join(dir, 'photos');
await mkdir(photos);
for (const g of golden.images.slice(0, 2)) await copyFile(join(IMAGES_DIR, g.file), join(photos, g.file));
const captions = join(dir, 'captions.txt');
await writeFile(captions, 'a dog on a beach\na red car\ntwo people\n');

const images = join(dir, 'images.jsonl');
const texts = join(dir, 'texts.jsonl');

t.test('each line says its model, modality and the sha256 of the tower weights', async (t) => {
  const ri = await runCli(['embed', '--model', model, '--images', photos, '--out', images]);
  t.equal(ri.code, 0, ri.stderr);
  const rt = await runCli(['embed', '--model', model, '--texts', captions, '--out', texts]);
  t.equal(rt.code, 0, rt.stderr);
  for (const l of await read(images))
    t.match(l, { model: manifest.name, modality: 'image', tower_sha256: manifest.files['image.onnx.data']!.sha256 });
  for (const l of await read(texts))
    t.match(l, { model: manifest.name, modality: 'text', tower_sha256: manifest.files['text.onnx.data']!.sha256 });
});

t.test('resuming into a file of other vectors is refused, naming both', async (t) => {
  const before = await readFile(texts, 'utf8');
  const r = await runCli(['embed', '--model', model, '--images', photos, '--out', texts]);
  t.equal(r.code, 1);
  t.match(
    r.stderr,
    /\[mixed_vectors\]: .*texts\.jsonl holds text vectors of tiny .* this run makes image vectors of tiny/,
  );
  t.equal(await readFile(texts, 'utf8'), before, 'no image vector appended');
});

t.test('merge refuses image with text parts, two models, and an existing --out without --force', async (t) => {
  const merged = join(dir, 'merged.jsonl');
  const mixed = await runCli(['merge', '--out', merged, images, texts]);
  t.equal(mixed.code, 1);
  t.match(
    mixed.stderr,
    /\[mixed_vectors\]: .*texts\.jsonl line 1 holds text vectors of tiny .* but .*images\.jsonl line 1 holds image vectors of tiny/,
  );
  t.notOk(existsSync(merged), 'nothing written');

  // The same architecture and name, other weights: only the tower hash tells the vectors apart.
  const other = join(dir, 'other-model');
  const synth = await runCli(['synth', '--arch', TINY_ARCH, '--name', 'tiny', '--seed', '7', '--out', other]);
  t.equal(synth.code, 0, synth.stderr);
  const otherTexts = join(dir, 'other-texts.jsonl');
  await writeFile(join(dir, 'more.txt'), 'a bowl of soup\n');
  const ro = await runCli(['embed', '--model', other, '--texts', join(dir, 'more.txt'), '--out', otherTexts]);
  t.equal(ro.code, 0, ro.stderr);
  const twoModels = await runCli(['merge', '--out', merged, texts, otherTexts]);
  t.equal(twoModels.code, 1);
  t.match(
    twoModels.stderr,
    /other-texts\.jsonl line 1 holds text vectors of tiny \(text tower weights sha256 \w+…\), but/,
  );
  t.notOk(existsSync(merged));

  const ok = await runCli(['merge', '--out', merged, texts]);
  t.equal(ok.code, 0, ok.stderr);
  const again = await runCli(['merge', '--out', merged, texts]);
  t.equal(again.code, 1);
  t.match(again.stderr, /\[already_exists\]: .*merged\.jsonl already exists \(use --force to replace it\)/);
  const forced = await runCli(['merge', '--force', '--out', merged, texts]);
  t.equal(forced.code, 0, forced.stderr);
});

t.test('an empty shard leaves its file, and merge takes it', async (t) => {
  const lines = ['1', '2', '3'];
  const count = 8;
  const empty = [...Array(count).keys()].find((i) => lines.every((id) => shardOf(id, count) !== i))!;
  const full = shardOf('1', count);
  const emptyPart = join(dir, 'parts', `part-${empty}.jsonl`);
  const r = await runCli([
    'embed',
    '--model',
    model,
    '--texts',
    captions,
    '--shard',
    `${empty}/${count}`,
    '--out',
    emptyPart,
  ]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, `shard ${empty}/${count}: 0 of 3 items`);
  t.ok(existsSync(emptyPart), 'the empty shard wrote its file');
  t.equal(await readFile(emptyPart, 'utf8'), '');
  const fullPart = join(dir, 'parts', `part-${full}.jsonl`);
  const rf = await runCli([
    'embed',
    '--model',
    model,
    '--texts',
    captions,
    '--shard',
    `${full}/${count}`,
    '--out',
    fullPart,
  ]);
  t.equal(rf.code, 0, rf.stderr);
  const merged = await runCli(['merge', '--out', join(dir, 'shards.jsonl'), emptyPart, fullPart]);
  t.equal(merged.code, 0, merged.stderr);
});

t.test('files of older versions (lines without model and modality) stay readable', async (t) => {
  const old = join(dir, 'old.jsonl');
  const lines = await read(texts);
  await writeFile(old, lines.map((l) => JSON.stringify({ id: l.id, embedding: l.embedding })).join('\n') + '\n');
  const merged = await runCli(['merge', '--out', join(dir, 'old-merged.jsonl'), old]);
  t.equal(merged.code, 0, merged.stderr);
  t.match(merged.stderr, /3 lines have no model or modality .*: merged, not checked/);
  await writeFile(old, JSON.stringify({ id: '1', embedding: lines[0]!.embedding }) + '\n');
  const resumed = await runCli(['embed', '--model', model, '--texts', captions, '--out', old]);
  t.equal(resumed.code, 0, resumed.stderr);
  t.match(resumed.stderr, /2 written, 1 already there/);
});

t.test('failed files are counted apart from embedded ones', async (t) => {
  const mixed = join(dir, 'mixed');
  await mkdir(mixed);
  await copyFile(join(IMAGES_DIR, golden.images[0]!.file), join(mixed, golden.images[0]!.file));
  await writeFile(join(mixed, 'broken.jpg'), 'not a jpeg');
  const r = await runCli(['embed', '--model', model, '--images', mixed, '--out', join(dir, 'mixed.jsonl')]);
  t.equal(r.code, 1);
  t.match(r.stderr, 'embedded 1/2, 1 failed');
  t.notMatch(r.stderr, /embedded 2\/2/);
});

t.test('Ctrl-C stops between batches, with whole lines, and says that rerunning resumes', async (t) => {
  const many = join(dir, 'many.txt');
  const n = 3000;
  await writeFile(many, Array.from({ length: n }, (_, i) => `caption number ${i} of a dog`).join('\n') + '\n');
  const out = join(dir, 'many.jsonl');
  const child = spawnCli(['embed', '--model', model, '--texts', many, '--out', out, '--batch', '1']);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const closed = once(child, 'close');
  // Interrupt once some lines are there, as a person pressing Ctrl-C would.
  for (;;) {
    const text = existsSync(out) ? await readFile(out, 'utf8') : '';
    if (text.split('\n').length > 5) break;
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill('SIGINT');
  const [code] = (await closed) as [number | null];
  t.equal(code, 130, `exit 130 after SIGINT: ${stderr.slice(-300)}`);
  t.match(stderr, /interrupted \(SIGINT\) with \d+ of \d+ left: rerun the same command to resume/);
  const text = await readFile(out, 'utf8');
  t.ok(text.endsWith('\n'), 'the last line is whole');
  const lines = text.split('\n').filter(Boolean);
  t.ok(
    lines.every((l) => typeof (JSON.parse(l) as Line).id === 'string'),
    'every line is JSON',
  );
  t.ok(lines.length < n, `stopped early (${lines.length} of ${n})`);
  const rerun = await runCli(['embed', '--model', model, '--texts', many, '--out', out, '--batch', '64']);
  t.equal(rerun.code, 0, rerun.stderr);
  t.match(rerun.stderr, `${n - lines.length} written, ${lines.length} already there, 0 failed`);
});
