// Recall@1/5/10 as ALBEF's Retrieval.py `itm_eval()` computes it, from dense score matrices or from
// the top-k candidates alone (the same figures without the two images × texts matrices, which are
// 500 MB each at COCO's size). Hand-written: it is ALBEF's protocol, which no library implements.
//
// Ties. itm_eval ranks with `np.argsort(score)[::-1]`, whose order among equal scores is numpy's
// unstable sort reversed: it changes with the numpy version, the array length and the CPU's SIMD
// (numpy 2.4 on AVX-512 orders one tied set ascending and another in no order at all). So no code can
// reproduce it; every ranking here uses one total order instead: score descending, then index
// ascending (see `ahead`). A query's rank is the number of entries that come before its ground truth
// in that order, for image→text the least over the image's captions. Where it matters: the −100
// fill of the ITM matrices ties over every non-candidate; a ground truth in the fill comes after all
// k candidates (when their logits are above −100) whatever the tie order, so with k ≥ 10 its rank is
// ≥ 10 either way and R@1/5/10 are those numpy gives. Ties among real scores (equal logits or cosines,
// e.g. duplicate captions) are where a numpy run itself is not reproducible.

import { InferenceError } from '../core/errors.js';

/** ALBEF's `itm_eval()` result, in percent, with its key names. */
export interface Recall {
  txt_r1: number;
  txt_r5: number;
  txt_r10: number;
  txt_r_mean: number;
  img_r1: number;
  img_r5: number;
  img_r10: number;
  img_r_mean: number;
  r_mean: number;
}

/** Score rows (`number[][]`, `Float32Array[]`), or a row-major matrix. */
export type ScoreRows = readonly ArrayLike<number>[];
export interface ScoreMatrix {
  readonly data: ArrayLike<number>;
  readonly rows: number;
  readonly cols: number;
}

/** Each query's candidates: `index[q * k + j]`, j < k (ALBEF's `topk_idx` per row). */
export interface Candidates {
  readonly count: number;
  readonly k: number;
  readonly index: ArrayLike<number>;
}

/** The fill of `evaluation()`'s score matrices outside the candidates (`torch.full(..., -100.0)`). */
export const ITM_FILL = -100;

/** Whether score `a` at index `i` comes before score `b` at index `j`: higher score, then lower index. */
export const ahead = (a: number, i: number, b: number, j: number): boolean => a > b || (a === b && i < j);

export function assertScore(s: number, what: string): void {
  // NaN has no place in any order (torch.topk and numpy's argsort both put it first): a model fault.
  if (Number.isNaN(s)) throw new InferenceError(`NaN among the ${what} scores`);
}

type Row = (q: number) => { get: (c: number) => number; n: number };

function rowsOf(m: ScoreRows | ScoreMatrix, what: string, rows: number, cols: number): Row {
  if ('data' in m && !Array.isArray(m)) {
    const { data, rows: r, cols: c } = m;
    if (r !== rows || c !== cols || data.length !== r * c) {
      throw new RangeError(`${what}: a ${r}×${c} matrix of ${data.length} scores, expected ${rows}×${cols}`);
    }
    return (q) => ({ get: (j) => data[q * c + j]!, n: c });
  }
  const list = m as ScoreRows;
  if (list.length !== rows) throw new RangeError(`${what}: ${list.length} rows, expected ${rows}`);
  return (q) => {
    const row = list[q]!;
    if (row.length !== cols) throw new RangeError(`${what}: row ${q} holds ${row.length} scores, expected ${cols}`);
    return { get: (j) => row[j]!, n: cols };
  };
}

/** The rank (0 = first) of the best of `truth` in one row: how many entries come before it. */
export function rankInRow(get: (c: number) => number, n: number, truth: readonly number[], what = 'retrieval'): number {
  if (truth.length === 0) return Infinity; // itm_eval's 1e20: never a hit
  let best = truth[0]!;
  for (const g of truth) if (ahead(get(g), g, get(best), best)) best = g;
  const b = get(best);
  let rank = 0;
  for (let j = 0; j < n; j++) {
    const s = get(j);
    assertScore(s, what);
    if (ahead(s, j, b, best)) rank++;
  }
  return rank;
}

/** ALBEF's figures from the ranks of every image→text and text→image query (rank < k is a hit at k). */
export function recallFromRanks(ranksI2T: ArrayLike<number>, ranksT2I: ArrayLike<number>): Recall {
  if (ranksI2T.length === 0 || ranksT2I.length === 0) throw new RangeError('recall of no queries');
  // 100.0 * hits / n, left to right, as itm_eval (so the figures are the same doubles).
  const pct = (ranks: ArrayLike<number>, k: number): number => {
    let hits = 0;
    for (let q = 0; q < ranks.length; q++) if (ranks[q]! < k) hits++;
    return (100 * hits) / ranks.length;
  };
  const tr1 = pct(ranksI2T, 1);
  const tr5 = pct(ranksI2T, 5);
  const tr10 = pct(ranksI2T, 10);
  const ir1 = pct(ranksT2I, 1);
  const ir5 = pct(ranksT2I, 5);
  const ir10 = pct(ranksT2I, 10);
  const trMean = (tr1 + tr5 + tr10) / 3;
  const irMean = (ir1 + ir5 + ir10) / 3;
  return {
    txt_r1: tr1,
    txt_r5: tr5,
    txt_r10: tr10,
    txt_r_mean: trMean,
    img_r1: ir1,
    img_r5: ir5,
    img_r10: ir10,
    img_r_mean: irMean,
    r_mean: (trMean + irMean) / 2,
  };
}

function checkTruth(txt2img: readonly number[], img2txt: readonly (readonly number[])[]): void {
  txt2img.forEach((i, t) => {
    if (!Number.isInteger(i) || i < 0 || i >= img2txt.length) {
      throw new RangeError(`txt2img[${t}] = ${i} is not an image index`);
    }
  });
  img2txt.forEach((ts, i) => {
    for (const t of ts) {
      if (!Number.isInteger(t) || t < 0 || t >= txt2img.length) {
        throw new RangeError(`img2txt[${i}] holds ${t}, not a text index`);
      }
    }
  });
}

/**
 * `itm_eval(scores_i2t, scores_t2i, txt2img, img2txt)`: `scoresI2T` is images × texts, `scoresT2I`
 * texts × images. Image→text: the rank of the image's best-placed caption; text→image: the rank of
 * its image. Ties: see the file's top comment.
 */
export function itmEval(
  scoresI2T: ScoreRows | ScoreMatrix,
  scoresT2I: ScoreRows | ScoreMatrix,
  txt2img: readonly number[],
  img2txt: readonly (readonly number[])[],
): Recall {
  checkTruth(txt2img, img2txt);
  const nImages = img2txt.length;
  const nTexts = txt2img.length;
  const i2t = rowsOf(scoresI2T, 'scores_i2t', nImages, nTexts);
  const t2i = rowsOf(scoresT2I, 'scores_t2i', nTexts, nImages);
  const ranksI2T = new Float64Array(nImages);
  for (let i = 0; i < nImages; i++) {
    const { get, n } = i2t(i);
    ranksI2T[i] = rankInRow(get, n, img2txt[i]!, 'image→text');
  }
  const ranksT2I = new Float64Array(nTexts);
  for (let t = 0; t < nTexts; t++) {
    const { get, n } = t2i(t);
    ranksT2I[t] = rankInRow(get, n, [txt2img[t]!], 'text→image');
  }
  return recallFromRanks(ranksI2T, ranksT2I);
}

/**
 * The rank of the best of `truth` in a row of `n` entries that hold `fill` everywhere except at the
 * candidates, which hold `scores` (rounded to float32, as ALBEF's float32 matrix holds them): exactly
 * what {@link rankInRow} gives on the dense row, in O(|truth| · k) instead of O(n).
 */
export function rankAmongCandidates(
  index: ArrayLike<number>,
  scores: ArrayLike<number>,
  offset: number,
  k: number,
  n: number,
  truth: readonly number[],
  fill = ITM_FILL,
): number {
  let best = Infinity;
  for (const g of truth) {
    let sg = fill;
    let inC = 0; // 1 when g is a candidate
    let before = 0; // candidates with a lower index than g
    let rank = 0;
    for (let j = 0; j < k; j++) {
      const c = index[offset + j]!;
      const s = Math.fround(scores[offset + j]!);
      if (c === g) {
        sg = s;
        inC = 1;
      } else if (c < g) before++;
    }
    for (let j = 0; j < k; j++) {
      const c = index[offset + j]!;
      if (c !== g && ahead(Math.fround(scores[offset + j]!), c, sg, g)) rank++;
    }
    // The n − k fill entries (less g itself when g is one of them) all score `fill`.
    if (fill > sg) rank += n - k - (1 - inC);
    else if (fill === sg) rank += g - before;
    if (rank < best) best = rank;
  }
  return best;
}

function checkCandidates(c: Candidates, scores: ArrayLike<number>, what: string, count: number, n: number): void {
  if (c.count !== count) throw new RangeError(`${what}: candidates for ${c.count} queries, expected ${count}`);
  if (c.index.length !== c.count * c.k || scores.length !== c.count * c.k) {
    throw new RangeError(
      `${what}: ${c.index.length} candidates and ${scores.length} scores, expected ${c.count * c.k}`,
    );
  }
  const seen = new Set<number>();
  for (let q = 0; q < c.count; q++) {
    seen.clear();
    for (let j = q * c.k; j < (q + 1) * c.k; j++) {
      const idx = c.index[j]!;
      if (!Number.isInteger(idx) || idx < 0 || idx >= n || seen.has(idx)) {
        throw new RangeError(`${what}: query ${q} has candidate ${idx} (out of range or repeated)`);
      }
      seen.add(idx);
      assertScore(scores[j]!, what);
    }
  }
}

/**
 * `itm_eval` on `evaluation()`'s score matrices (−100 except at each query's candidates, which hold
 * the ITM match logits `i2tScores[q * k + j]` for `i2t.index[q * k + j]`), without building them:
 * the same figures as {@link itmEval} on the assembled matrices, for any scores.
 */
export function itmEvalCandidates(
  i2t: Candidates,
  i2tScores: ArrayLike<number>,
  t2i: Candidates,
  t2iScores: ArrayLike<number>,
  txt2img: readonly number[],
  img2txt: readonly (readonly number[])[],
): Recall {
  checkTruth(txt2img, img2txt);
  const nImages = img2txt.length;
  const nTexts = txt2img.length;
  checkCandidates(i2t, i2tScores, 'image→text', nImages, nTexts);
  checkCandidates(t2i, t2iScores, 'text→image', nTexts, nImages);
  const ranksI2T = new Float64Array(nImages);
  for (let i = 0; i < nImages; i++) {
    const truth = img2txt[i]!;
    ranksI2T[i] =
      truth.length === 0 ? Infinity : rankAmongCandidates(i2t.index, i2tScores, i * i2t.k, i2t.k, nTexts, truth);
  }
  const ranksT2I = new Float64Array(nTexts);
  for (let t = 0; t < nTexts; t++) {
    ranksT2I[t] = rankAmongCandidates(t2i.index, t2iScores, t * t2i.k, t2i.k, nImages, [txt2img[t]!]);
  }
  return recallFromRanks(ranksI2T, ranksT2I);
}
