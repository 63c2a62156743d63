// text.onnx: ALBEF's text tower in its 'text' mode. input_ids, attention_mask [B, S] → BERT embeddings
// (word + position 0..S-1 + token type 0, LayerNorm) → layers 0..fusion_layer-1 (post-LN, additive
// mask (1 - mask) * -10000) → token 0 → text_proj → L2 normalise → embeddings [B, embed_dim].

import type { AlbefWeights, Lazy } from './albef-weights.js';
import { Layers, transpose2d, transposed, type LazyTensor, type Precision } from './graph-layers.js';
import { DataType, GraphBuilder } from './onnx-builder.js';

export function buildTextGraph(w: AlbefWeights, precision: Precision): GraphBuilder {
  const { text: t, embed_dim } = w.arch;
  const g = new GraphBuilder('albef_text');
  const L = new Layers(g, precision);
  const key = (s: string): string => w.textKey(s);
  const vec = (k: string, n: number): LazyTensor => ({ dims: [n], load: w.lazy(k) });
  const mat = (k: string, out: number, inp: number): LazyTensor => transposed(out, inp, w.lazy(k));

  const ids = g.input('input_ids', DataType.INT64, ['batch', 'sequence']);
  const mask = g.input('attention_mask', DataType.INT64, ['batch', 'sequence']);

  // Token type is always 0, so its row is folded into the position table.
  const posPlusType: Lazy = async () => {
    const [pos, tt] = await Promise.all([w.source.read(key('embeddings.position_embeddings.weight')), w.source.read(key('embeddings.token_type_embeddings.weight'))]);
    return pos.map((p, i) => p + tt[i % t.dim]!);
  };
  const words = g.op('Gather', [L.param('word_embeddings', { dims: [t.vocab_size, t.dim], load: w.lazy(key('embeddings.word_embeddings.weight')) }), ids], { axis: 0 });
  const seqLen = g.op('Shape', [ids], { start: 1, end: 2 });
  const positions = g.op('Slice', [L.param('position_embeddings', { dims: [t.max_pos, t.dim], load: posPlusType }), g.int64s([0]), seqLen, g.int64s([0])]);
  let x = L.layerNorm(g.op('Add', [words, positions]), 'embeddings.LayerNorm', vec(key('embeddings.LayerNorm.weight'), t.dim), vec(key('embeddings.LayerNorm.bias'), t.dim), t.ln_eps);

  // Key padding mask for the attention kernel: (1 - mask) * -10000 is added to masked keys' scores.
  const keyMask = g.op('Cast', [mask], { to: DataType.INT32 });

  // Post-LN layers; the last layer runs for token 0 only (only the [CLS] output is read).
  for (let i = 0; i < t.fusion_layer; i++) {
    const b = key(`encoder.layer.${i}.`);
    const n = `text.layer.${i}`;
    const last = i === t.fusion_layer - 1;
    const qkvW: LazyTensor = {
      dims: [t.dim, 3 * t.dim],
      load: async () => {
        const parts = await Promise.all(['query', 'key', 'value'].map((p) => w.source.read(`${b}attention.self.${p}.weight`)));
        return concatColumns(parts.map((p) => transpose2d(p, t.dim, t.dim)), t.dim, t.dim);
      },
    };
    const qkvB: LazyTensor = {
      dims: [3 * t.dim],
      load: async () => {
        const parts = await Promise.all(['query', 'key', 'value'].map((p) => w.source.read(`${b}attention.self.${p}.bias`)));
        const out = new Float32Array(3 * t.dim);
        parts.forEach((p, j) => out.set(p, j * t.dim));
        return out;
      },
    };
    const ctx = L.selfAttention(x, `${n}.attention`, qkvW, qkvB, t.dim, t.heads, { keyPaddingMask: keyMask, clsOnly: last });
    if (last) x = L.tokens(x, 0, 1);
    const attnOut = L.linearParts(ctx, `${n}.attention.output`, mat(`${b}attention.output.dense.weight`, t.dim, t.dim), vec(`${b}attention.output.dense.bias`, t.dim));
    x = L.residualLayerNorm(attnOut, x, `${n}.attention.LayerNorm`, vec(`${b}attention.output.LayerNorm.weight`, t.dim), vec(`${b}attention.output.LayerNorm.bias`, t.dim), t.ln_eps).out;
    const inter = L.gelu(L.linear(x, `${n}.intermediate`, mat(`${b}intermediate.dense.weight`, t.intermediate, t.dim), vec(`${b}intermediate.dense.bias`, t.intermediate)));
    const out = L.linearParts(inter, `${n}.output`, mat(`${b}output.dense.weight`, t.dim, t.intermediate), vec(`${b}output.dense.bias`, t.dim));
    x = L.residualLayerNorm(out, x, `${n}.output.LayerNorm`, vec(`${b}output.LayerNorm.weight`, t.dim), vec(`${b}output.LayerNorm.bias`, t.dim), t.ln_eps).out;
  }
  const proj = L.linear(L.squeezeToken(x), 'text_proj', mat('text_proj.weight', embed_dim, t.dim), vec('text_proj.bias', embed_dim));
  g.rename(L.l2normalize(proj), 'embeddings');
  g.output('embeddings', DataType.FLOAT, ['batch', embed_dim]);
  return g;
}

/** Side-by-side concatenation of row-major [rows, cols] matrices → [rows, cols * n]. */
function concatColumns(parts: Float32Array[], rows: number, cols: number): Float32Array {
  const n = parts.length;
  const out = new Float32Array(rows * cols * n);
  for (let r = 0; r < rows; r++) parts.forEach((p, j) => out.set(p.subarray(r * cols, (r + 1) * cols), r * cols * n + j * cols));
  return out;
}
