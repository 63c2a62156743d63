// Offline indexing with `albef-embed embed --images/--texts --out`: JSON lines with the golden
// vectors, resumable after an interruption, bad files reported without stopping the run.

import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { listImages } from '../../src/cli/batch-embed.js';
import { runCli } from '../../kit/cli.js';
import { cosine, golden, IMAGES_DIR, TOL } from '../../kit/golden.js';
import { cleanupTinyModel, tinyModel } from '../../kit/server.js';

const dir = await mkdtemp(join(tmpdir(), 'albef-batch-'));
t.teardown(async () => {
  await rm(dir, { recursive: true, force: true });
  await cleanupTinyModel();
});
const { dir: model } = await tinyModel();
const lines = async (f: string) =>
  (await readFile(f, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { id: string; embedding: number[] });

t.test('a folder of images → JSON lines, resumable', async (t) => {
  const images = join(dir, 'photos');
  await mkdir(join(images, 'more'), { recursive: true });
  for (const g of golden.images)
    await copyFile(join(IMAGES_DIR, g.file), join(images, g.file === 'tiny.png' ? join('more', g.file) : g.file));
  await writeFile(join(images, 'broken.jpg'), Buffer.from('not a jpeg'));
  const out = join(dir, 'vectors.jsonl');
  const first = await runCli(['embed', '--model', model, '--images', images, '--out', out, '--batch', '3']);
  t.equal(first.code, 1, 'exit 1: one file failed');
  t.match(first.stderr, /broken\.jpg: (undecodable_image|unsupported_media_type)/);
  t.match(first.stderr, /embedded \d+\/9/);
  const got = await lines(out);
  t.equal(got.length, golden.images.length, 'one line per good image');
  for (const g of golden.images) {
    const id = g.file === 'tiny.png' ? 'more/tiny.png' : g.file;
    const line = got.find((l) => l.id === id);
    t.ok(line && cosine(line.embedding, g.embedding) >= TOL.imageCos, `${id} matches its golden vector`);
  }

  // Interrupted run: drop the last three lines, leave a torn partial line, then resume.
  const text = (await readFile(out, 'utf8')).trim().split('\n');
  await writeFile(out, text.slice(0, -3).join('\n') + '\n' + '{"id": "torn');
  const again = await runCli(['embed', '--model', model, '--images', images, '--out', out]);
  t.match(again.stderr, /3 written, 5 already there, 1 failed/, again.stderr);
  const resumed = await lines(out);
  t.equal(resumed.length, golden.images.length, 'complete again, no duplicates');
  t.equal(new Set(resumed.map((l) => l.id)).size, resumed.length);
});

t.test('globs', async (t) => {
  const { files } = await listImages(join(IMAGES_DIR, '*.png'));
  t.same(
    files.map((f) => f.slice(IMAGES_DIR.length + 1)),
    ['alpha.png', 'gray.png', 'gray16.png', 'shapes.png', 'tiny.png'],
  );
  const deep = await listImages(join(dir, 'photos', '**', '*.png'));
  t.ok(
    deep.files.some((f) => f.endsWith(join('more', 'tiny.png'))),
    '** reaches subfolders',
  );
});

t.test('a text file → JSON lines', async (t) => {
  const file = join(dir, 'captions.txt');
  await writeFile(file, golden.texts.map((g) => g.text.replace(/\n/g, ' ')).join('\n') + '\n\n');
  const out = join(dir, 'texts.jsonl');
  const res = await runCli(['embed', '--model', model, '--texts', file, '--out', out]);
  t.equal(res.code, 0, res.stderr);
  const got = await lines(out);
  t.equal(got.length, golden.texts.length);
  // Line 7 of the fixture ends in a newline inside the text; all others are embedded as given.
  const worst = Math.min(
    ...got
      .filter((l) => !golden.texts[Number(l.id) - 1]!.text.includes('\n'))
      .map((l) => cosine(l.embedding, golden.texts[Number(l.id) - 1]!.pre_caption.embedding)),
  );
  t.ok(worst >= TOL.textCos, `worst cosine ${worst}`);
});
