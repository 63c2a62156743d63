// fusion.onnx: ALBEF's image–text matching (ITM) head as Retrieval.py's evaluation() runs it. The text
// tower's last hidden states (text_states.onnx) go through text-encoder layers fusion_layer..L-1 in
// 'fusion' mode, whose cross-attention attends to every image token (image_states.onnx, image mask all
// ones); itm_head (Linear D→2) on token 0 gives the logits (no-match, match).
//
// Inputs: text_states [P, T, Dt] float32, text_mask [P, T] int64 (1 = token), image_states [I, N, Dv]
// float32, where P = I × M pairs are grouped by image: pair p is text p against image ⌊p / M⌋. Output:
// itm_logits [P, 2] float32.
//
// Why grouped: projecting the image tokens to keys and values is most of the fusion's cost (at full
// size 577 × 768 × 768 × 2 per layer and image against ≈ 15 text tokens per pair), so it runs once per
// image, and the M pairs of an image put their text tokens side by side as one query sequence against
// it (cross-attention queries are independent of each other), with no copy of keys or values per pair.

import type { AlbefWeights } from './albef-weights.js';
import { bertLayer, type CrossAttention } from './bert-layer.js';
import { Layers, transposed, type LazyTensor, type Precision } from './graph-layers.js';
import { DataType, GraphBuilder } from './onnx-builder.js';

export function buildFusionGraph(w: AlbefWeights, precision: Precision): GraphBuilder {
  const { text: t, vision: v } = w.arch;
  const g = new GraphBuilder('albef_fusion');
  const L = new Layers(g, precision);
  const vec = (k: string, n: number): LazyTensor => ({ dims: [n], load: w.lazy(k) });
  const mat = (k: string, out: number, inp: number): LazyTensor => transposed(out, inp, w.lazy(k));

  let x = L.fromFloat32(g.input('text_states', DataType.FLOAT, ['pairs', 'sequence', t.dim]));
  const mask = g.input('text_mask', DataType.INT64, ['pairs', 'sequence']);
  const images = g.input('image_states', DataType.FLOAT, ['images', 'image_tokens', v.dim]);
  const imageStates = L.fromFloat32(images);
  const keyPaddingMask = g.op('Cast', [mask], { to: DataType.INT32 });

  // [P, Sq, D] ↔ [I, M·Sq, D]: the reshape that puts each image's pairs side by side.
  const groupShape = g.op('Concat', [g.op('Shape', [images], { start: 0, end: 1 }), g.int64s([-1, t.dim])], {
    axis: 0,
  });
  const group = (q: string): string => g.op('Reshape', [q, groupShape]);
  const ungroup = (ctx: string, like: string): string => g.op('Reshape', [ctx, g.op('Shape', [like])]);

  for (let i = t.fusion_layer; i < t.layers; i++) {
    const c = w.textKey(`encoder.layer.${i}.crossattention.self.`);
    const n = `text.layer.${i}.crossattention`;
    const cross: CrossAttention = {
      keys: L.linear(imageStates, `${n}.key`, mat(`${c}key.weight`, t.dim, v.dim), vec(`${c}key.bias`, t.dim)),
      values: L.linear(imageStates, `${n}.value`, mat(`${c}value.weight`, t.dim, v.dim), vec(`${c}value.bias`, t.dim)),
      group,
      ungroup,
    };
    // Only token 0 feeds the ITM head: the last layer's queries are token 0 alone.
    x = bertLayer(L, w, i, x, { keyPaddingMask, clsOnly: i === t.layers - 1, cross });
  }
  // The head stays in float even in int8 models: two logits, cheap, and what the scores are made of.
  const cls = L.squeezeToken(x);
  const logits = L.floatLinear(cls, 'itm_head', mat('itm_head.weight', 2, t.dim), vec('itm_head.bias', 2));
  g.rename(L.toFloat32(logits), 'itm_logits');
  g.output('itm_logits', DataType.FLOAT, ['pairs', 2]);
  return g;
}
