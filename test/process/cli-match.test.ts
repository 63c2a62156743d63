// `albef-embed rerank` and `albef-embed classify` in a child process: the golden ITM and zero-shot
// scores as JSON on stdout, usage errors with exit code 2, a model without the fusion part exit 1.

import { join } from 'node:path';
import t from 'tap';
import { runCli } from '../../kit/cli.js';
import { IMAGES_DIR, ITM_TOL, itmGolden as g } from '../../kit/golden.js';
import { cleanupTinyModel, tinyModel } from '../../kit/server.js';

const { dir } = await tinyModel();
t.teardown(cleanupTinyModel);
const files = ['photo.jpg', 'shapes.png', 'gray.png'];

t.test('rerank: a text query against image files, and an image query against texts', async (t) => {
  const a = await runCli([
    'rerank',
    '--model',
    dir,
    '--query',
    g.texts[0]!,
    ...files.flatMap((f) => ['--image', join(IMAGES_DIR, f)]),
    '--top-n',
    '2',
  ]);
  t.equal(a.code, 0, a.stderr);
  const out = JSON.parse(a.stdout) as {
    model: string;
    results: { index: number; relevance_score: number; itc: number }[];
  };
  t.equal(out.results.length, 2, '--top-n 2');
  const want = files.map((f) => g.pairs[0]![g.images.indexOf(f)]!.itm_prob);
  t.ok(out.results[0]!.relevance_score >= out.results[1]!.relevance_score, 'best first');
  for (const r of out.results)
    t.ok(
      Math.abs(r.relevance_score - want[r.index]!) <= ITM_TOL.prob,
      `document ${r.index}: ${r.relevance_score.toFixed(6)}`,
    );

  const b = await runCli([
    'rerank',
    '--model',
    dir,
    '--query-image',
    join(IMAGES_DIR, 'photo.jpg'),
    '--text',
    g.texts[1]!,
    '--text',
    g.texts[4]!,
  ]);
  t.equal(b.code, 0, b.stderr);
  for (const r of (JSON.parse(b.stdout) as { results: { index: number; relevance_score: number }[] }).results) {
    t.ok(Math.abs(r.relevance_score - g.pairs[[1, 4][r.index]!]![0]!.itm_prob) <= ITM_TOL.prob, `text ${r.index}`);
  }
});

t.test('classify: zero-shot scores and ITM probabilities', async (t) => {
  const labels = g.texts.slice(0, 5);
  const r = await runCli([
    'classify',
    '--model',
    dir,
    '--image',
    join(IMAGES_DIR, 'photo.jpg'),
    ...labels.flatMap((l) => ['--label', l]),
    '--itm',
  ]);
  t.equal(r.code, 0, r.stderr);
  const [perImage] = (JSON.parse(r.stdout) as { results: { label: string; score: number; itm_prob: number }[][] })
    .results;
  t.equal(perImage!.length, 5);
  // Zero-shot over 5 of the 14 golden texts: the golden logits renormalised over those 5.
  const logits = labels.map((_, j) => g.pairs[j]![0]!.itc / g.temp_clamped);
  const max = Math.max(...logits);
  const sum = logits.reduce((s, l) => s + Math.exp(l - max), 0);
  for (const s of perImage!) {
    const j = labels.indexOf(s.label);
    t.ok(
      Math.abs(s.score - Math.exp(logits[j]! - max) / sum) <= ITM_TOL.zeroShot &&
        Math.abs(s.itm_prob - g.pairs[j]![0]!.itm_prob) <= ITM_TOL.prob,
      `${JSON.stringify(s.label).slice(0, 30)}: ${s.score.toFixed(5)}`,
    );
  }
});

t.test('usage errors exit 2', async (t) => {
  const both = await runCli(['rerank', '--model', dir, '--query', 'a', '--text', 'b']);
  t.equal(both.code, 2, 'a text query needs image documents');
  t.match(both.stderr, /--query with --image documents/);
  const oneLabel = await runCli([
    'classify',
    '--model',
    dir,
    '--image',
    join(IMAGES_DIR, 'photo.jpg'),
    '--label',
    'a dog',
  ]);
  t.equal(oneLabel.code, 2, 'one label');
});
