// ALBEF's itm_eval recall and the evaluation() top-k stage on hand-made cases worked out in comments,
// and the three ways of computing them (dense matrices, candidates alone, one blocked pass over the
// vectors) against a brute-force sort on random data full of ties.

import t from 'tap';
import { AppError } from '../../src/core/errors.js';
import {
  itcStage,
  scoreMatrix,
  similarityMatrix,
  topKColumns,
  topKRows,
  type TopK,
  type Vectors,
} from '../../src/retrieval/candidates.js';
import { itmEval, itmEvalCandidates, type Recall } from '../../src/retrieval/recall.js';

/** A seeded generator (mulberry32), so a failure reproduces. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** The ordering by an explicit sort: indices by score descending, then index ascending. */
function sortedOrder(row: ArrayLike<number>): number[] {
  return Array.from({ length: row.length }, (_, j) => j).sort((a, b) => row[b]! - row[a]! || a - b);
}

/** itm_eval by brute force: sort each row, the position of the (best) ground truth. */
function bruteRecall(i2t: number[][], t2i: number[][], txt2img: number[], img2txt: number[][]): Recall {
  const pct = (ranks: number[], k: number) => (100 * ranks.filter((r) => r < k).length) / ranks.length;
  const ri = i2t.map((row, i) => {
    const order = sortedOrder(row);
    return Math.min(Infinity, ...img2txt[i]!.map((g) => order.indexOf(g)));
  });
  const rt = t2i.map((row, q) => sortedOrder(row).indexOf(txt2img[q]!));
  const [tr1, tr5, tr10, ir1, ir5, ir10] = [pct(ri, 1), pct(ri, 5), pct(ri, 10), pct(rt, 1), pct(rt, 5), pct(rt, 10)];
  const trm = (tr1 + tr5 + tr10) / 3;
  const irm = (ir1 + ir5 + ir10) / 3;
  return {
    txt_r1: tr1,
    txt_r5: tr5,
    txt_r10: tr10,
    txt_r_mean: trm,
    img_r1: ir1,
    img_r5: ir5,
    img_r10: ir10,
    img_r_mean: irm,
    r_mean: (trm + irm) / 2,
  };
}

function bruteTopK(rows: number[][], k: number): number[][] {
  return rows.map((row) => sortedOrder(row).slice(0, Math.min(k, row.length)));
}

const rowsOf = (m: Float32Array, rows: number, cols: number): number[][] =>
  Array.from({ length: rows }, (_, r) => Array.from(m.subarray(r * cols, (r + 1) * cols)));
const transpose = (m: number[][]): number[][] => m[0]!.map((_, c) => m.map((row) => row[c]!));
const topkRows = (tk: TopK): number[][] =>
  Array.from({ length: tk.count }, (_, q) => Array.from(tk.index.subarray(q * tk.k, (q + 1) * tk.k)));

t.test('hand-made: 3 images, 4 texts', async (t) => {
  // img2txt: image 0 has texts 0 and 1, image 1 text 2, image 2 text 3.
  const img2txt = [[0, 1], [2], [3]];
  const txt2img = [0, 0, 1, 2];
  const i2t = [
    [0.1, 0.9, 0.8, 0.2], // order t1 t2 t3 t0: best caption t1 at rank 0
    [0.5, 0.7, 0.6, 0.1], // order t1 t2 t0 t3: t2 at rank 1
    [0.3, 0.3, 0.3, 0.3], // all tied, lower index first: t3 at rank 3
  ];
  const t2i = [
    [0.2, 0.5, 0.1], // i1 i0 i2: image 0 at rank 1
    [0.9, 0.1, 0.0], // rank 0
    [0.4, 0.4, 0.9], // i2 i0 i1 (i0 before i1 on the tie): image 1 at rank 2
    [0.1, 0.2, 0.3], // rank 0
  ];
  // Image→text ranks 0, 1, 3: R@1 1 of 3, R@5 and R@10 3 of 3. Text→image ranks 1, 0, 2, 0: R@1 2 of 4.
  const want: Recall = {
    txt_r1: 100 / 3,
    txt_r5: 100,
    txt_r10: 100,
    txt_r_mean: (100 / 3 + 100 + 100) / 3,
    img_r1: 50,
    img_r5: 100,
    img_r10: 100,
    img_r_mean: (50 + 100 + 100) / 3,
    r_mean: ((100 / 3 + 100 + 100) / 3 + (50 + 100 + 100) / 3) / 2,
  };
  t.same(itmEval(i2t, t2i, txt2img, img2txt), want);
  const flat = (m: number[][]) => ({ data: Float32Array.from(m.flat()), rows: m.length, cols: m[0]!.length });
  t.same(itmEval(flat(i2t), flat(t2i), txt2img, img2txt), want, 'row-major Float32Array matrices');
  t.same(
    itmEval(
      i2t.map((r) => Float32Array.from(r)),
      t2i,
      txt2img,
      img2txt,
    ),
    want,
    'Float32Array rows',
  );
});

t.test('hand-made: the R@1/5/10 boundaries, and images without captions', async (t) => {
  // 6 texts, 12 images; text q's image sits at rank [0, 4, 5, 9, 10, 11][q] of its row (scores fall
  // with the image index, so the rank is the image index). R@1: 1 of 6; R@5: ranks 0, 4 (2 of 6);
  // R@10: 0, 4, 5, 9 (4 of 6).
  const txt2img = [0, 4, 5, 9, 10, 11];
  const img2txt = Array.from({ length: 12 }, (_, i) => (txt2img.includes(i) ? [txt2img.indexOf(i)] : []));
  const t2i = txt2img.map(() => Array.from({ length: 12 }, (_, j) => 1 - j / 100));
  // Image→text: every score 0, so ranks are text indices: images 0, 4, 5, 9, 10, 11 rank 0..5, the six
  // images without captions never hit (ALBEF's 1e20). R@1 1 of 12, R@5 5 of 12, R@10 6 of 12.
  const i2t = img2txt.map(() => new Array<number>(6).fill(0));
  const r = itmEval(i2t, t2i, txt2img, img2txt);
  t.equal(r.img_r1, 100 / 6);
  t.equal(r.img_r5, 200 / 6);
  t.equal(r.img_r10, 400 / 6);
  t.equal(r.txt_r1, 100 / 12);
  t.equal(r.txt_r5, 500 / 12);
  t.equal(r.txt_r10, 600 / 12);
  t.same(r, bruteRecall(i2t, t2i, txt2img, img2txt));
});

t.test('hand-made top-k: ties keep the lower index, best first', async (t) => {
  const sim = Float32Array.from([
    // 2 images × 5 texts
    0.5, 0.9, 0.5, 0.1, 0.5, 0.2, 0.2, 0.7, 0.2, 0.2,
  ]);
  // Image 0: 0.9 (t1), then the 0.5 tie t0 t2 t4: top 3 = t1 t0 t2. Image 1: t2, then t0 t1 (of t0 t1 t3 t4).
  t.same(topkRows(topKRows(sim, 2, 5, 3)), [
    [1, 0, 2],
    [2, 0, 1],
  ]);
  // Columns: t0 (0.5, 0.2) → 0 1; t2 (0.5, 0.7) → 1 0; t4 (0.5, 0.2) → 0 1.
  t.same(topkRows(topKColumns(sim, 2, 5, 2)), [
    [0, 1],
    [0, 1],
    [1, 0],
    [1, 0],
    [0, 1],
  ]);
  t.same(topKColumns(sim, 2, 5, 9).k, 2, 'k above the candidates there are: all of them');
  t.throws(() => topKRows(sim, 2, 5, 0), RangeError);
});

t.test('score matrices: −100 outside the candidates, the logits at them', async (t) => {
  const m = scoreMatrix({ count: 2, k: 2, index: Int32Array.from([3, 0, 1, 2]) }, [1.5, -2, 0.25, 7], 4);
  t.same(Array.from(m), [-2, -100, -100, 1.5, -100, 0.25, 7, -100]);
});

t.test('NaN scores are refused', async (t) => {
  const nan = { code: 'inference_failed', message: /NaN/ };
  t.throws(() => itmEval([[NaN, 1]], [[1], [1]], [0, 0], [[0, 1]]), nan);
  t.throws(() => topKRows(Float32Array.from([1, NaN]), 1, 2, 1), nan);
  t.throws(
    () => itmEvalCandidates({ count: 1, k: 1, index: [0] }, [NaN], { count: 1, k: 1, index: [0] }, [1], [0], [[0]]),
    nan,
  );
  try {
    itcStage(
      { data: Float32Array.from([NaN, 0]), count: 1, dim: 2 },
      { data: Float32Array.from([1, 0]), count: 1, dim: 2 },
      { k: 1 },
    );
    t.fail('NaN vector accepted');
  } catch (err) {
    t.ok(err instanceof AppError, 'an AppError');
  }
});

/** Random unit vectors with exact duplicates (ties in every direction) and ground truth. */
function randomSet(seed: number, nI: number, nT: number, dim: number) {
  const r = rng(seed);
  const unit = (n: number) => {
    const data = new Float32Array(n * dim);
    for (let v = 0; v < n; v++) {
      // A quarter are copies of an earlier vector: exact ties.
      if (v > 0 && r() < 0.25) {
        const src = Math.floor(r() * v);
        data.copyWithin(v * dim, src * dim, (src + 1) * dim);
        continue;
      }
      let norm = 0;
      for (let d = 0; d < dim; d++) {
        const x = r() * 2 - 1;
        data[v * dim + d] = x;
        norm += x * x;
      }
      for (let d = 0; d < dim; d++) data[v * dim + d]! /= Math.sqrt(norm);
    }
    return { data, count: n, dim } satisfies Vectors;
  };
  const images = unit(nI);
  const texts = unit(nT);
  const txt2img = Array.from({ length: nT }, (_, q) => (q < nI ? q : Math.floor(r() * nI)));
  const img2txt = Array.from({ length: nI }, (_, i) => txt2img.flatMap((im, q) => (im === i ? [q] : [])));
  return { images, texts, txt2img, img2txt, r };
}

t.test('random sets with ties: blocked pass = full matrix = brute-force sort', async (t) => {
  for (const [seed, nI, nT, dim, k, block] of [
    [1, 23, 61, 7, 12, 5],
    [2, 37, 90, 16, 10, 64],
    [3, 9, 30, 5, 16, 1], // k above the images: every image is a candidate
    [4, 50, 130, 33, 20, 3],
    [8, 40, 25, 6, 10, 7], // fewer texts than images: 15 images without a caption never hit
  ] as const) {
    const { images, texts, txt2img, img2txt } = randomSet(seed, nI, nT, dim);
    const sim = similarityMatrix(images, texts);
    // The kernel's cosines against a plain sum.
    let maxErr = 0;
    for (let i = 0; i < nI; i++) {
      for (let q = 0; q < nT; q++) {
        let s = 0;
        for (let d = 0; d < dim; d++) s += images.data[i * dim + d]! * texts.data[q * dim + d]!;
        maxErr = Math.max(maxErr, Math.abs(s - sim[i * nT + q]!));
      }
    }
    t.ok(maxErr < 1e-6, `seed ${seed}: cosines within float32 rounding (${maxErr})`);

    const i2tRows = rowsOf(sim, nI, nT);
    const t2iRows = transpose(i2tRows);
    const stage = itcStage(images, texts, { k, txt2img, img2txt, blockImages: block });
    t.same(topkRows(stage.i2t), bruteTopK(i2tRows, k), `seed ${seed}: image→text top-k`);
    t.same(topkRows(stage.t2i), bruteTopK(t2iRows, k), `seed ${seed}: text→image top-k`);
    t.same(topkRows(topKRows(sim, nI, nT, k)), bruteTopK(i2tRows, k), `seed ${seed}: topKRows`);
    t.same(topkRows(topKColumns(sim, nI, nT, k)), bruteTopK(t2iRows, k), `seed ${seed}: topKColumns`);
    const brute = bruteRecall(i2tRows, t2iRows, txt2img, img2txt);
    t.same(stage.recall, brute, `seed ${seed}: ITC recall of the blocked pass`);
    t.same(itmEval(i2tRows, t2iRows, txt2img, img2txt), brute, `seed ${seed}: itmEval on the cosines`);
    t.ok(brute.txt_r10 > 0 && brute.txt_r10 < 100, `seed ${seed}: a case where ranks matter`);
  }
});

t.test('random ITM scores: candidates alone = assembled −100 matrices = brute-force sort', async (t) => {
  for (const [seed, nI, nT, k] of [
    [5, 20, 55, 10],
    [6, 31, 64, 12],
    [7, 8, 25, 9], // k above the images
  ] as const) {
    const { images, texts, txt2img, img2txt, r } = randomSet(seed, nI, nT, 8);
    const stage = itcStage(images, texts, { k, txt2img, img2txt });
    // Logits on a coarse grid (ties among candidates), some exactly −100 or below (ties with the fill).
    const logit = () => {
      const u = r();
      return u < 0.05 ? -100 : u < 0.08 ? -150 : Math.round(r() * 8) / 2 - 2;
    };
    const i2tItm = Array.from({ length: stage.i2t.index.length }, logit);
    const t2iItm = Array.from({ length: stage.t2i.index.length }, logit);
    const dI2T = scoreMatrix(stage.i2t, i2tItm, nT);
    const dT2I = scoreMatrix(stage.t2i, t2iItm, nI);
    const brute = bruteRecall(rowsOf(dI2T, nI, nT), rowsOf(dT2I, nT, nI), txt2img, img2txt);
    t.same(itmEval({ data: dI2T, rows: nI, cols: nT }, { data: dT2I, rows: nT, cols: nI }, txt2img, img2txt), brute);
    t.same(itmEvalCandidates(stage.i2t, i2tItm, stage.t2i, t2iItm, txt2img, img2txt), brute, `seed ${seed}`);
  }
});

t.test('shape and ground-truth mistakes are refused', async (t) => {
  t.throws(() => itmEval([[1, 2]], [[1], [1]], [0, 0], [[0, 1], []]), RangeError, 'rows ≠ images');
  t.throws(() => itmEval([[1, 2, 3]], [[1], [1]], [0, 0], [[0, 1]]), RangeError, 'row length ≠ texts');
  t.throws(() => itmEval([[1, 2]], [[1], [1]], [0, 3], [[0, 1]]), RangeError, 'txt2img out of range');
  const c = { count: 1, k: 2, index: [0, 0] };
  t.throws(() => itmEvalCandidates(c, [1, 2], { count: 2, k: 1, index: [0, 0] }, [1, 1], [0, 0], [[0, 1]]), RangeError);
  const v = { data: new Float32Array(6), count: 2, dim: 3 };
  t.throws(() => itcStage(v, { data: new Float32Array(8), count: 2, dim: 4 }, { k: 1 }), RangeError, 'dims differ');
});
