// `albef-embed eval`'s work against the official Retrieval.py evaluation() + itm_eval() on albef-tiny-a
// (retrieval_golden_albef-tiny-a.json, k_test 12, 96 px): the same candidate sets, cosines within 1e-5,
// ITM match logits within 1e-3, every recall figure identical; and a run interrupted at any stage, or
// left with a torn record, resumes to the same report.

import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { FIXTURES } from '../../kit/golden.js';
import { cleanupTinyModel, tinyModel } from '../../kit/server.js';
import { Metrics } from '../../src/core/metrics.js';
import { readAnnotations } from '../../src/retrieval/annotations.js';
import type { TopK } from '../../src/retrieval/candidates.js';
import { sha256Hex } from '../../src/retrieval/eval-work.js';
import type { Recall } from '../../src/retrieval/recall.js';
import { resolveConfig } from '../../src/service/config.js';
import {
  evaluateRetrieval,
  evaluateRetrievalInDetail,
  type EvalOptions,
  type EvalProgress,
} from '../../src/service/evaluation.js';
import { Service } from '../../src/service/service.js';

const DIR = join(FIXTURES, 'retrieval');
const g = JSON.parse(await readFile(join(DIR, 'retrieval_golden_albef-tiny-a.json'), 'utf8')) as {
  k_test: number;
  itc: number[][];
  i2t_topk: number[][];
  t2i_topk: number[][];
  i2t_itm: number[][];
  t2i_itm: number[][];
  recall_itm: Recall;
  recall_itc: Recall;
};
const annBytes = await readFile(join(DIR, 'ann.json'));
const annotations = await readAnnotations(join(DIR, 'ann.json'));
const scratch = await mkdtemp(join(tmpdir(), 'albef-eval-'));

const { dir } = await tinyModel();
const service = new Service(
  resolveConfig({ models: [dir], warmup: false, intraOpThreads: 1, stateCacheImages: 0 }),
  new Metrics(),
);
await service.start();
t.teardown(async () => {
  await service.close();
  await rm(scratch, { recursive: true, force: true });
  await cleanupTinyModel();
});
const model = service.requireEmbedder().model();
const options = (workDir: string, extra: Partial<EvalOptions> = {}): EvalOptions => ({
  annotations,
  annotationsSha256: sha256Hex(annBytes),
  imageRoot: DIR,
  kTest: g.k_test,
  workDir,
  ...extra,
});

/** The golden value of each query's candidates, in the golden's ascending index order. */
function byIndex(tk: TopK, scores: Float32Array, q: number): { index: number[]; score: number[] } {
  const pairs = Array.from({ length: tk.k }, (_, j) => [tk.index[q * tk.k + j]!, scores[q * tk.k + j]!] as const);
  pairs.sort((a, b) => a[0] - b[0]);
  return { index: pairs.map((p) => p[0]), score: pairs.map((p) => p[1]) };
}

t.test('the official candidates, cosines, ITM logits and recall, identically', async (t) => {
  const { report, details } = await evaluateRetrievalInDetail(
    model,
    service.requireIntake(),
    options(join(scratch, 'a')),
  );
  t.same(report.itm, g.recall_itm, 'recall_itm identical');
  t.same(report.itc, g.recall_itc, 'recall_itc identical');
  t.match(report, { model: 'tiny', k_test: 12, images: 24, texts: 60 });

  let cos = 0;
  let itm = 0;
  for (let i = 0; i < details.i2t.count; i++) {
    const mine = byIndex(details.i2t, details.i2tItm, i);
    t.same(mine.index, g.i2t_topk[i], `image ${i}: the same ${g.k_test} candidate texts`);
    mine.score.forEach((s, j) => (itm = Math.max(itm, Math.abs(s - g.i2t_itm[i]![j]!))));
    const cosines = byIndex(details.i2t, details.i2t.score, i);
    cosines.score.forEach((s, j) => (cos = Math.max(cos, Math.abs(s - g.itc[i]![cosines.index[j]!]!))));
  }
  for (let q = 0; q < details.t2i.count; q++) {
    const mine = byIndex(details.t2i, details.t2iItm, q);
    t.same(mine.index, g.t2i_topk[q], `text ${q}: the same ${g.k_test} candidate images`);
    mine.score.forEach((s, j) => (itm = Math.max(itm, Math.abs(s - g.t2i_itm[q]![j]!))));
  }
  t.ok(cos <= 1e-5, `cosines within 1e-5 (max |Δ| ${cos.toExponential(2)})`);
  t.ok(itm <= 1e-3, `ITM match logits within 1e-3 (max |Δ| ${itm.toExponential(2)})`);
});

t.test('an interrupted run resumes to the same report, whatever stage it stopped in', async (t) => {
  const whole = await evaluateRetrieval(model, service.requireIntake(), options(join(scratch, 'whole')));
  for (const [stage, after] of [
    ['texts', 0],
    ['images', 10],
    ['itm', 7],
  ] as const) {
    const work = join(scratch, `stop-${stage}`);
    const stop = (p: EvalProgress): void => {
      if (p.stage === stage && p.done >= after && (stage === 'texts' || p.done > 0)) throw new Error('stopped');
    };
    await t.rejects(evaluateRetrieval(model, service.requireIntake(), options(work, { onProgress: stop })), /stopped/);
    const seen: EvalProgress[] = [];
    const resumed = await evaluateRetrieval(
      model,
      service.requireIntake(),
      options(work, { onProgress: (p) => seen.push(p) }),
    );
    t.same(resumed, whole, `stopped in ${stage}: the same report`);
    if (stage === 'itm') {
      const first = seen.find((p) => p.stage === 'itm')!;
      t.ok(first.done >= after, `the images already re-ranked were not run again (${first.done} kept)`);
    }
  }
});

t.test('torn records left by a kill are dropped, and the run completes the same', async (t) => {
  const whole = await evaluateRetrieval(model, service.requireIntake(), options(join(scratch, 'whole2')));
  const work = join(scratch, 'torn');
  const stop = (p: EvalProgress): void => {
    if (p.stage === 'itm' && p.done >= 5) throw new Error('stopped');
  };
  await t.rejects(evaluateRetrieval(model, service.requireIntake(), options(work, { onProgress: stop })));
  // As if the process died halfway through writing the next records.
  await appendFile(join(work, 'itm.bin'), Buffer.from([5, 0, 0, 0, 40, 0, 0, 0, 1, 2, 3]));
  t.same(await evaluateRetrieval(model, service.requireIntake(), options(work)), whole);
});

t.test('the work directory of another evaluation is not reused', async (t) => {
  const work = join(scratch, 'other');
  await evaluateRetrieval(model, service.requireIntake(), options(work));
  await t.rejects(evaluateRetrieval(model, service.requireIntake(), options(work, { kTest: 13 })), {
    code: 'usage',
    message: /holds the work of another evaluation \(its kTest differ\)/,
  });
});

t.test('k_test below 10 and missing images are refused before any work', async (t) => {
  await t.rejects(evaluateRetrieval(model, service.requireIntake(), options(join(scratch, 'k'), { kTest: 9 })), {
    code: 'usage',
    message: /--k-test must be an integer ≥ 10 \(got 9\)/,
  });
  const missing = { ...annotations, images: annotations.images.map((p, i) => (i === 3 ? 'gone.jpg' : p)) };
  await t.rejects(
    evaluateRetrieval(model, service.requireIntake(), { ...options(join(scratch, 'm')), annotations: missing }),
    { code: 'usage', message: /1 of 24 images are missing under .*: "gone\.jpg"/ },
  );
});
