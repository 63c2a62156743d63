// text.onnx: ALBEF's text tower in its 'text' mode. input_ids, attention_mask [B, S] → BERT embeddings
// (word + position 0..S-1 + token type 0, LayerNorm) → layers 0..fusion_layer-1 (post-LN, additive
// mask (1 - mask) * -10000) → token 0 → text_proj → L2 normalise → embeddings [B, embed_dim].
//
// With `states` (text_states.onnx, for image–text matching) the last layer runs for every token and
// the graph also outputs those last hidden states [B, S, D]: what Retrieval.py feeds the fusion layers.
// The embedding graph keeps its last layer to token 0 (faster: docs/performance.md), and ORT runs every node of a
// graph whatever outputs are asked for, so the two are separate graphs over the same weights.

import type { AlbefWeights, Lazy } from './albef-weights.js';
import { bertLayer } from './bert-layer.js';
import { Layers, transposed, type LazyTensor, type Precision } from './graph-layers.js';
import { DataType, GraphBuilder } from './onnx-builder.js';

export function buildTextGraph(
  w: AlbefWeights,
  precision: Precision,
  options: { states?: boolean } = {},
): GraphBuilder {
  const { text: t, embed_dim } = w.arch;
  const g = new GraphBuilder(options.states ? 'albef_text_states' : 'albef_text');
  const L = new Layers(g, precision);
  const key = (s: string): string => w.textKey(s);
  const vec = (k: string, n: number): LazyTensor => ({ dims: [n], load: w.lazy(k) });

  const ids = g.input('input_ids', DataType.INT64, ['batch', 'sequence']);
  const mask = g.input('attention_mask', DataType.INT64, ['batch', 'sequence']);

  // Token type is always 0, so its row is folded into the position table.
  const posPlusType: Lazy = async () => {
    const [pos, tt] = await Promise.all([
      w.source.read(key('embeddings.position_embeddings.weight')),
      w.source.read(key('embeddings.token_type_embeddings.weight')),
    ]);
    return pos.map((p, i) => p + tt[i % t.dim]!);
  };
  const words = g.op(
    'Gather',
    [
      L.param('word_embeddings', {
        dims: [t.vocab_size, t.dim],
        load: w.lazy(key('embeddings.word_embeddings.weight')),
      }),
      ids,
    ],
    { axis: 0 },
  );
  const seqLen = g.op('Shape', [ids], { start: 1, end: 2 });
  const positions = g.op('Slice', [
    L.param('position_embeddings', { dims: [t.max_pos, t.dim], load: posPlusType }),
    g.int64s([0]),
    seqLen,
    g.int64s([0]),
  ]);
  let x = L.layerNorm(
    g.op('Add', [words, positions]),
    'embeddings.LayerNorm',
    vec(key('embeddings.LayerNorm.weight'), t.dim),
    vec(key('embeddings.LayerNorm.bias'), t.dim),
    t.ln_eps,
  );

  // Key padding mask for the attention kernel: (1 - mask) * -10000 is added to masked keys' scores.
  const keyPaddingMask = g.op('Cast', [mask], { to: DataType.INT32 });
  for (let i = 0; i < t.fusion_layer; i++) {
    x = bertLayer(L, w, i, x, { keyPaddingMask, clsOnly: !options.states && i === t.fusion_layer - 1 });
  }
  const cls = L.squeezeToken(options.states ? L.tokens(x, 0, 1) : x);
  const proj = L.linear(
    cls,
    'text_proj',
    transposed(embed_dim, t.dim, w.lazy('text_proj.weight')),
    vec('text_proj.bias', embed_dim),
  );
  g.rename(L.l2normalize(proj), 'embeddings');
  g.output('embeddings', DataType.FLOAT, ['batch', embed_dim]);
  if (options.states) {
    g.rename(L.toFloat32(x), 'states');
    g.output('states', DataType.FLOAT, ['batch', 'sequence', t.dim]);
  }
  return g;
}
