// One post-LN BERT layer of ALBEF's text encoder (models/xbert.py BertLayer): self-attention with the
// text's padding mask, in fusion layers (index ≥ fusion_layer) cross-attention to every image token,
// then the feed-forward block; each sub-block is LayerNorm(x + dense(sub-block(x))).
// Shared by the text tower (layers 0..fusion_layer-1) and the fusion graph (the rest).

import type { AlbefWeights } from './albef-weights.js';
import { transpose2d, transposed, type Layers, type LazyTensor } from './graph-layers.js';

/** Cross-attention inputs: keys and values of the image tokens, and how queries meet them. */
export interface CrossAttention {
  /** Projected image tokens [I, N, D] (computed once per image). */
  keys: string;
  values: string;
  /** [P, Sq, D] queries of P pairs → [I, (P / I)·Sq, D]: pair p attends to image ⌊p / (P / I)⌋. */
  group: (q: string) => string;
  /** The inverse of `group` for the context: [I, (P / I)·Sq, D] → [P, Sq, D]. */
  ungroup: (ctx: string, like: string) => string;
}

export interface BertLayerOptions {
  /** int32 [B, S] key padding mask (1 = token, 0 = padding). */
  keyPaddingMask: string;
  /** Only token 0's output is read: the query (and everything after attention) is token 0 alone. */
  clsOnly?: boolean;
  cross?: CrossAttention;
}

/** Builds text-encoder layer `i` on x [B, S, D]; returns [B, S, D] (or [B, 1, D] with clsOnly). */
export function bertLayer(L: Layers, w: AlbefWeights, i: number, x: string, options: BertLayerOptions): string {
  const t = w.arch.text;
  const b = w.textKey(`encoder.layer.${i}.`);
  const n = `text.layer.${i}`;
  const vec = (k: string, len: number): LazyTensor => ({ dims: [len], load: w.lazy(k) });
  const mat = (k: string, out: number, inp: number): LazyTensor => transposed(out, inp, w.lazy(k));
  const qkvW: LazyTensor = {
    dims: [t.dim, 3 * t.dim],
    load: async () => {
      const parts = await Promise.all(
        ['query', 'key', 'value'].map((p) => w.source.read(`${b}attention.self.${p}.weight`)),
      );
      return concatColumns(
        parts.map((p) => transpose2d(p, t.dim, t.dim)),
        t.dim,
        t.dim,
      );
    },
  };
  const qkvB: LazyTensor = {
    dims: [3 * t.dim],
    load: async () => {
      const parts = await Promise.all(
        ['query', 'key', 'value'].map((p) => w.source.read(`${b}attention.self.${p}.bias`)),
      );
      const out = new Float32Array(3 * t.dim);
      parts.forEach((p, j) => out.set(p, j * t.dim));
      return out;
    },
  };
  const ctx = L.selfAttention(x, `${n}.attention`, qkvW, qkvB, t.dim, t.heads, {
    keyPaddingMask: options.keyPaddingMask,
    clsOnly: options.clsOnly,
  });
  if (options.clsOnly) x = L.tokens(x, 0, 1);
  const attnOut = L.linearParts(
    ctx,
    `${n}.attention.output`,
    mat(`${b}attention.output.dense.weight`, t.dim, t.dim),
    vec(`${b}attention.output.dense.bias`, t.dim),
  );
  x = L.residualLayerNorm(
    attnOut,
    x,
    `${n}.attention.LayerNorm`,
    vec(`${b}attention.output.LayerNorm.weight`, t.dim),
    vec(`${b}attention.output.LayerNorm.bias`, t.dim),
    t.ln_eps,
  ).out;

  const cross = options.cross;
  if (cross) {
    const c = `${b}crossattention.`;
    const q = L.linear(
      x,
      `${n}.crossattention.query`,
      mat(`${c}self.query.weight`, t.dim, t.dim),
      vec(`${c}self.query.bias`, t.dim),
    );
    const grouped = L.attention(cross.group(q), cross.keys, cross.values, t.heads);
    const crossOut = L.linearParts(
      cross.ungroup(grouped, x),
      `${n}.crossattention.output`,
      mat(`${c}output.dense.weight`, t.dim, t.dim),
      vec(`${c}output.dense.bias`, t.dim),
    );
    x = L.residualLayerNorm(
      crossOut,
      x,
      `${n}.crossattention.LayerNorm`,
      vec(`${c}output.LayerNorm.weight`, t.dim),
      vec(`${c}output.LayerNorm.bias`, t.dim),
      t.ln_eps,
    ).out;
  }

  const inter = L.gelu(
    L.linear(
      x,
      `${n}.intermediate`,
      mat(`${b}intermediate.dense.weight`, t.intermediate, t.dim),
      vec(`${b}intermediate.dense.bias`, t.intermediate),
    ),
  );
  const out = L.linearParts(
    inter,
    `${n}.output`,
    mat(`${b}output.dense.weight`, t.dim, t.intermediate),
    vec(`${b}output.dense.bias`, t.dim),
  );
  return L.residualLayerNorm(
    out,
    x,
    `${n}.output.LayerNorm`,
    vec(`${b}output.LayerNorm.weight`, t.dim),
    vec(`${b}output.LayerNorm.bias`, t.dim),
    t.ln_eps,
  ).out;
}

/** Side-by-side concatenation of row-major [rows, cols] matrices → [rows, cols * n]. */
function concatColumns(parts: Float32Array[], rows: number, cols: number): Float32Array {
  const n = parts.length;
  const out = new Float32Array(rows * cols * n);
  for (let r = 0; r < rows; r++)
    parts.forEach((p, j) => out.set(p.subarray(r * cols, (r + 1) * cols), r * cols * n + j * cols));
  return out;
}
