// The first stage of ALBEF's retrieval evaluation (Retrieval.py `evaluation()`): the ITC cosines of
// every image with every text, each image's k best texts and each text's k best images (`sims.topk`),
// which the ITM head then re-ranks, and the score matrices it writes (−100 outside the candidates).
// At COCO's size (5 000 images × 25 000 texts) the cosine matrix is 500 MB of float32; `itcStage`
// computes it a block of images at a time and keeps only per-query top-k heaps and the ranks the
// ITC-only recall needs. Hand-written: a blocked dot-product kernel with streaming top-k and rank
// counting in one pass is not something a JS library offers, and the tie order must be ours.

import { ahead, assertScore, recallFromRanks, type Candidates, type Recall, ITM_FILL } from './recall.js';

/** `count` vectors of `dim` floats, row-major (the towers' L2-normalised embeddings). */
export interface Vectors {
  readonly data: Float32Array;
  readonly count: number;
  readonly dim: number;
}

/** Each query's k best entries, best first: `index[q * k + j]` with its score `score[q * k + j]`. */
export interface TopK extends Candidates {
  readonly index: Int32Array;
  readonly score: Float32Array;
}

/**
 * Per-query top-k under `ahead` (score descending, index ascending), as `torch.topk(k)` selects and
 * orders them (torch leaves the choice among ties at the k-th place unspecified; this keeps the
 * lower indices). Each query is a heap with its worst kept entry at the root.
 */
class TopKHeaps {
  readonly score: Float32Array;
  readonly index: Int32Array;
  /** Each heap's root score, −∞ until full: `s >= worst[q]` is the cheap test before an offer. */
  readonly worst: Float32Array;
  private readonly size: Int32Array;

  constructor(
    readonly count: number,
    readonly k: number,
  ) {
    this.score = new Float32Array(count * k);
    this.index = new Int32Array(count * k);
    this.size = new Int32Array(count);
    this.worst = new Float32Array(count).fill(-Infinity);
  }

  /** Offers entry `idx` with score `s` (a float32 value) to query `q`. */
  offer(q: number, s: number, idx: number): void {
    const k = this.k;
    const base = q * k;
    const hs = this.score;
    const hi = this.index;
    const n = this.size[q]!;
    if (n < k) {
      // Sift up: a parent must not come before its child.
      let c = n;
      while (c > 0) {
        const p = (c - 1) >> 1;
        if (!ahead(hs[base + p]!, hi[base + p]!, s, idx)) break;
        hs[base + c] = hs[base + p]!;
        hi[base + c] = hi[base + p]!;
        c = p;
      }
      hs[base + c] = s;
      hi[base + c] = idx;
      this.size[q] = n + 1;
      if (n + 1 === k) this.worst[q] = hs[base]!;
      return;
    }
    if (!ahead(s, idx, hs[base]!, hi[base]!)) return;
    this.siftDown(base, k, s, idx);
    this.worst[q] = hs[base]!;
  }

  /** Puts (s, idx) at the root of the heap at `base` of `n` entries and moves it down to its place. */
  private siftDown(base: number, n: number, s: number, idx: number): void {
    const hs = this.score;
    const hi = this.index;
    let p = 0;
    for (;;) {
      let c = 2 * p + 1;
      if (c >= n) break;
      // The worse child (the one the other comes before).
      if (c + 1 < n && ahead(hs[base + c]!, hi[base + c]!, hs[base + c + 1]!, hi[base + c + 1]!)) c++;
      if (!ahead(s, idx, hs[base + c]!, hi[base + c]!)) break;
      hs[base + p] = hs[base + c]!;
      hi[base + p] = hi[base + c]!;
      p = c;
    }
    hs[base + p] = s;
    hi[base + p] = idx;
  }

  /** Sorts every heap best first (heapsort: the worst goes to the end) and returns them. */
  finish(): TopK {
    const { k, count } = this;
    for (let q = 0; q < count; q++) {
      if (this.size[q] !== k) throw new Error(`top-k: query ${q} was offered ${this.size[q]} entries, fewer than k`);
      const base = q * k;
      for (let n = k - 1; n > 0; n--) {
        const ws = this.score[base]!;
        const wi = this.index[base]!;
        this.siftDown(base, n, this.score[base + n]!, this.index[base + n]!);
        this.score[base + n] = ws;
        this.index[base + n] = wi;
      }
    }
    return { count, k, index: this.index, score: this.score };
  }
}

function checkK(k: number, n: number): number {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be a positive integer, not ${k}`);
  // torch.topk refuses k > n; a collection smaller than k_test simply has every entry as a candidate.
  return Math.min(k, n);
}

/** Each row's top k (`sims.topk(k)` on each row of a row-major `rows × cols` matrix). k is capped at `cols`. */
export function topKRows(sim: ArrayLike<number>, rows: number, cols: number, k: number): TopK {
  if (sim.length !== rows * cols) throw new RangeError(`${sim.length} scores for a ${rows}×${cols} matrix`);
  const heaps = new TopKHeaps(rows, checkK(k, cols));
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const s = Math.fround(sim[r * cols + c]!);
      assertScore(s, 'similarity');
      if (s >= heaps.worst[r]!) heaps.offer(r, s, c);
    }
  }
  return heaps.finish();
}

/** Each column's top k (`sims_matrix.t()` row by row), read row by row. k is capped at `rows`. */
export function topKColumns(sim: ArrayLike<number>, rows: number, cols: number, k: number): TopK {
  if (sim.length !== rows * cols) throw new RangeError(`${sim.length} scores for a ${rows}×${cols} matrix`);
  const heaps = new TopKHeaps(cols, checkK(k, rows));
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const s = Math.fround(sim[r * cols + c]!);
      assertScore(s, 'similarity');
      if (s >= heaps.worst[c]!) heaps.offer(c, s, r);
    }
  }
  return heaps.finish();
}

/**
 * `evaluation()`'s score matrix for one direction: `count × n`, −100 everywhere except each query's
 * candidates, which get the caller's ITM match logits (`itm[q * k + j]` for `candidates.index[q * k + j]`).
 * Dense (count × n float32): for small sets; `itmEvalCandidates` needs no matrix.
 */
export function scoreMatrix(candidates: Candidates, itm: ArrayLike<number>, n: number): Float32Array {
  const { count, k, index } = candidates;
  if (index.length !== count * k || itm.length !== count * k) {
    throw new RangeError(`${index.length} candidates and ${itm.length} scores, expected ${count * k}`);
  }
  const m = new Float32Array(count * n).fill(ITM_FILL);
  for (let q = 0; q < count; q++) {
    for (let j = 0; j < k; j++) {
      const c = index[q * k + j]!;
      if (!Number.isInteger(c) || c < 0 || c >= n) throw new RangeError(`query ${q}: candidate ${c} out of range`);
      m[q * n + c] = itm[q * k + j]!;
    }
  }
  return m;
}

function checkVectors(v: Vectors, what: string): void {
  if (!Number.isInteger(v.dim) || v.dim < 1 || v.data.length !== v.count * v.dim) {
    throw new RangeError(`${what}: ${v.data.length} floats for ${v.count} vectors of ${v.dim}`);
  }
}

/**
 * One cosine (dot product of unit vectors), summed in float64 from d = 0 up and rounded to float32:
 * exactly the value `simBlock` computes for the pair, which the rank counting relies on.
 */
export function dot(a: Float32Array, ai: number, b: Float32Array, bi: number, dim: number): number {
  let s = 0;
  for (let d = 0; d < dim; d++) s += a[ai + d]! * b[bi + d]!;
  return Math.fround(s);
}

/** Text tile of the kernel: 64 vectors of dim 256 are 64 KB, reused by every 4 images of the block. */
const TEXT_TILE = 64;

/**
 * Cosines of images [i0, i1) with every text into `out` (row-major, (i1 − i0) × texts.count): 4 × 4
 * register tiles over text tiles that stay in cache. Each sum runs over d in order, as in `dot`.
 */
function simBlock(images: Vectors, i0: number, i1: number, texts: Vectors, out: Float32Array): void {
  const A = images.data;
  const B = texts.data;
  const dim = images.dim;
  const nT = texts.count;
  for (let t0 = 0; t0 < nT; t0 += TEXT_TILE) {
    const t1 = Math.min(nT, t0 + TEXT_TILE);
    let i = i0;
    for (; i + 4 <= i1; i += 4) {
      const a0 = i * dim;
      const a1 = a0 + dim;
      const a2 = a1 + dim;
      const a3 = a2 + dim;
      const o0 = (i - i0) * nT;
      const o1 = o0 + nT;
      const o2 = o1 + nT;
      const o3 = o2 + nT;
      let t = t0;
      for (; t + 4 <= t1; t += 4) {
        const b0 = t * dim;
        const b1 = b0 + dim;
        const b2 = b1 + dim;
        const b3 = b2 + dim;
        // prettier-ignore
        let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0,
          c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
        for (let d = 0; d < dim; d++) {
          const x0 = A[a0 + d]!;
          const x1 = A[a1 + d]!;
          const x2 = A[a2 + d]!;
          const x3 = A[a3 + d]!;
          const y0 = B[b0 + d]!;
          const y1 = B[b1 + d]!;
          const y2 = B[b2 + d]!;
          const y3 = B[b3 + d]!;
          c00 += x0 * y0;
          c01 += x0 * y1;
          c02 += x0 * y2;
          c03 += x0 * y3;
          c10 += x1 * y0;
          c11 += x1 * y1;
          c12 += x1 * y2;
          c13 += x1 * y3;
          c20 += x2 * y0;
          c21 += x2 * y1;
          c22 += x2 * y2;
          c23 += x2 * y3;
          c30 += x3 * y0;
          c31 += x3 * y1;
          c32 += x3 * y2;
          c33 += x3 * y3;
        }
        out[o0 + t] = c00;
        out[o0 + t + 1] = c01;
        out[o0 + t + 2] = c02;
        out[o0 + t + 3] = c03;
        out[o1 + t] = c10;
        out[o1 + t + 1] = c11;
        out[o1 + t + 2] = c12;
        out[o1 + t + 3] = c13;
        out[o2 + t] = c20;
        out[o2 + t + 1] = c21;
        out[o2 + t + 2] = c22;
        out[o2 + t + 3] = c23;
        out[o3 + t] = c30;
        out[o3 + t + 1] = c31;
        out[o3 + t + 2] = c32;
        out[o3 + t + 3] = c33;
      }
      for (; t < t1; t++) {
        const b = t * dim;
        out[o0 + t] = dot(A, a0, B, b, dim);
        out[o1 + t] = dot(A, a1, B, b, dim);
        out[o2 + t] = dot(A, a2, B, b, dim);
        out[o3 + t] = dot(A, a3, B, b, dim);
      }
    }
    for (; i < i1; i++) {
      const o = (i - i0) * nT;
      for (let t = t0; t < t1; t++) out[o + t] = dot(A, i * dim, B, t * dim, dim);
    }
  }
}

/** The full images × texts cosine matrix (`sims_matrix`), row-major float32: for small sets. */
export function similarityMatrix(images: Vectors, texts: Vectors): Float32Array {
  checkVectors(images, 'images');
  checkVectors(texts, 'texts');
  if (images.dim !== texts.dim) throw new RangeError(`image dim ${images.dim} ≠ text dim ${texts.dim}`);
  const out = new Float32Array(images.count * texts.count);
  simBlock(images, 0, images.count, texts, out);
  return out;
}

export interface ItcStageOptions {
  /** Candidates per query (`k_test`), capped at the other side's count. */
  k: number;
  /** Ground truth, for the ITC-only ranks and recall (omit to get the candidates alone). */
  txt2img?: readonly number[];
  img2txt?: readonly (readonly number[])[];
  /** Images per block (default 64): the block's cosines, blockImages × texts float32, are all that is held. */
  blockImages?: number;
  /** Called after each block with the images done so far. */
  onProgress?: (imagesDone: number, images: number) => void;
}

export interface ItcStage {
  /** Each image's k best texts, best first. */
  i2t: TopK;
  /** Each text's k best images, best first. */
  t2i: TopK;
  /**
   * With the ground truth: each query's ITC rank (0 = first, as `itm_eval` on the cosines; 2³¹ − 1 for
   * an image without captions) and `itm_eval`'s recall on the cosines.
   */
  ranksI2T?: Int32Array;
  ranksT2I?: Int32Array;
  recall?: Recall;
}

/**
 * `evaluation()`'s first stage in one pass over blocks of images, never holding the cosine matrix:
 * per block, the cosines of its images with every text; each row's top k and the rank of the image's
 * best caption; and, per text, its running top-k heap of images and the count of images that come
 * before its own. Same results as `topKRows` / `topKColumns` / `itmEval` on `similarityMatrix`.
 */
export function itcStage(images: Vectors, texts: Vectors, options: ItcStageOptions): ItcStage {
  checkVectors(images, 'images');
  checkVectors(texts, 'texts');
  if (images.dim !== texts.dim) throw new RangeError(`image dim ${images.dim} ≠ text dim ${texts.dim}`);
  const nI = images.count;
  const nT = texts.count;
  if (nI === 0 || nT === 0) throw new RangeError('no images or no texts');
  const { txt2img, img2txt } = options;
  const withTruth = txt2img !== undefined && img2txt !== undefined;
  if ((txt2img === undefined) !== (img2txt === undefined)) throw new RangeError('give both txt2img and img2txt');
  if (withTruth && (txt2img.length !== nT || img2txt.length !== nI)) {
    throw new RangeError(`ground truth for ${img2txt.length} images and ${txt2img.length} texts`);
  }
  const block = options.blockImages ?? 64;
  if (!Number.isInteger(block) || block < 1) throw new RangeError(`blockImages must be a positive integer`);
  const dim = images.dim;

  const rowHeaps = new TopKHeaps(nI, checkK(options.k, nT));
  const colHeaps = new TopKHeaps(nT, checkK(options.k, nI));
  const ranksI2T = new Int32Array(nI);
  const ranksT2I = new Int32Array(nT);
  // Each text's cosine with its own image, computed as the block kernel computes it (bit for bit).
  const own = new Float32Array(withTruth ? nT : 0);
  if (withTruth) {
    for (let t = 0; t < nT; t++) {
      const i = txt2img[t]!;
      if (!Number.isInteger(i) || i < 0 || i >= nI) throw new RangeError(`txt2img[${t}] = ${i} is not an image index`);
      own[t] = dot(images.data, i * dim, texts.data, t * dim, dim);
      assertScore(own[t]!, 'similarity');
    }
  }

  const buf = new Float32Array(Math.min(block, nI) * nT);
  const rowWorst = rowHeaps.worst;
  const colWorst = colHeaps.worst;
  const ownImage = Int32Array.from(txt2img ?? []);
  for (let i0 = 0; i0 < nI; i0 += block) {
    const i1 = Math.min(nI, i0 + block);
    simBlock(images, i0, i1, texts, buf);
    for (let i = i0; i < i1; i++) {
      const o = (i - i0) * nT;
      // The image's best-placed caption: its rank is the image's. An image without captions keeps
      // b = +∞ (nothing counts) and gets a rank that is never a hit.
      let best = -1;
      let b = Infinity;
      for (const g of withTruth ? img2txt[i]! : []) {
        if (!Number.isInteger(g) || g < 0 || g >= nT) throw new RangeError(`img2txt[${i}] holds ${g}`);
        if (best < 0 || ahead(buf[o + g]!, g, b, best)) {
          best = g;
          b = buf[o + g]!;
        }
      }
      let rank = 0;
      for (let t = 0; t < nT; t++) {
        const s = buf[o + t]!;
        if (s !== s) assertScore(s, 'similarity');
        if (s >= rowWorst[i]!) rowHeaps.offer(i, s, t);
        if (s >= colWorst[t]!) colHeaps.offer(t, s, i);
        if (withTruth) {
          if (s > b || (s === b && t < best)) rank++;
          const g = own[t]!;
          if (s > g || (s === g && i < ownImage[t]!)) ranksT2I[t] = ranksT2I[t]! + 1;
        }
      }
      ranksI2T[i] = best < 0 ? 0x7fffffff : rank; // no caption: itm_eval's 1e20, never a hit
    }
    options.onProgress?.(i1, nI);
  }

  const out: ItcStage = { i2t: rowHeaps.finish(), t2i: colHeaps.finish() };
  if (withTruth) {
    out.ranksI2T = ranksI2T;
    out.ranksT2I = ranksT2I;
    out.recall = recallFromRanks(ranksI2T, ranksT2I);
  }
  return out;
}
