// image.onnx: ALBEF's image tower. pixel_values [B, 3, R, R] → ViT (pre-LN blocks, final LayerNorm)
// → token 0 → vision_proj → L2 normalise → embeddings [B, embed_dim].
//
// With `states` (image_states.onnx, for image–text matching) the last block runs for every token and
// the graph also outputs every token after the final LayerNorm [B, N+1, D]: what the fusion layers'
// cross-attention reads. A separate graph over the same weights: ORT runs every node whatever outputs
// are asked for, and the embedding graph's token-0-only last block saves time (docs/performance.md).

import type { AlbefWeights, Lazy } from './albef-weights.js';
import { Layers, transposed, type LazyTensor, type Precision } from './graph-layers.js';
import { DataType, GraphBuilder } from './onnx-builder.js';
import { interpolatePosEmbed } from './pos-embed.js';

export function buildVisionGraph(
  w: AlbefWeights,
  precision: Precision,
  options: { states?: boolean } = {},
): GraphBuilder {
  const { vision: v, image_res: res, embed_dim } = w.arch;
  const g = new GraphBuilder(options.states ? 'albef_image_states' : 'albef_image');
  const L = new Layers(g, precision);
  const grid = res / v.patch;
  const ve = 'visual_encoder.';
  const vec = (key: string, n: number): LazyTensor => ({ dims: [n], load: w.lazy(key) });
  const mat = (key: string, out: number, inp: number): LazyTensor => transposed(out, inp, w.lazy(key));

  // Position embeddings at the serving grid; cls + pos[0] is folded into one constant and
  // pos[1:] is added to the patches (the same sums PyTorch does after its concat).
  let pos: Promise<Float32Array> | undefined;
  const posAt = (): Promise<Float32Array> =>
    (pos ??= w.source.read(ve + 'pos_embed').then((p) => interpolatePosEmbed(p, v.dim, w.checkpointGrid, grid)));
  const clsPos: Lazy = async () => {
    const [cls, p] = await Promise.all([w.source.read(ve + 'cls_token'), posAt()]);
    return cls.map((c, i) => c + p[i]!);
  };
  const patchPos: Lazy = async () => (await posAt()).slice(v.dim);

  const pixels = g.input('pixel_values', DataType.FLOAT, ['batch', 3, res, res]);
  const x0 = L.fromFloat32(pixels);
  const conv = g.op(
    'Conv',
    [
      x0,
      L.param(ve + 'patch_embed.proj.weight', {
        dims: [v.dim, 3, v.patch, v.patch],
        load: w.lazy(ve + 'patch_embed.proj.weight'),
      }),
      L.param(ve + 'patch_embed.proj.bias', vec(ve + 'patch_embed.proj.bias', v.dim)),
    ],
    {
      kernel_shape: [v.patch, v.patch],
      strides: [v.patch, v.patch],
    },
  ); // [B, D, g, g]
  const patches = g.op('Transpose', [g.op('Reshape', [conv, g.int64s([0, v.dim, -1])])], { perm: [0, 2, 1] }); // [B, N, D]
  const patchesPos = g.op('Add', [
    patches,
    L.param(ve + 'pos_embed.patches', { dims: [grid * grid, v.dim], load: patchPos }),
  ]);
  const batch = g.op('Shape', [pixels], { start: 0, end: 1 });
  const clsShape = g.op('Concat', [batch, g.int64s([1, v.dim])], { axis: 0 });
  const cls = g.op('Expand', [L.param(ve + 'cls_token.pos', { dims: [1, 1, v.dim], load: clsPos }), clsShape]);
  let x = g.op('Concat', [cls, patchesPos], { axis: 1 }); // [B, N+1, D]

  // Pre-LN blocks, the residual stream carried from one LayerNorm to the next (the next block's
  // norm1, or the final norm), and the last block runs for token 0 only.
  const norm = (b: string, n: string) => [vec(`${b}${n}.weight`, v.dim), vec(`${b}${n}.bias`, v.dim)] as const;
  let h = L.layerNorm(x, `${ve}blocks.0.norm1`, ...norm(`${ve}blocks.0.`, 'norm1'), v.ln_eps);
  let cls0 = '';
  for (let i = 0; i < v.depth; i++) {
    const b = `${ve}blocks.${i}.`;
    const final = i === v.depth - 1;
    const clsOnly = final && !options.states;
    const qkvW = mat(`${b}attn.qkv.weight`, 3 * v.dim, v.dim);
    const qkvB = vec(`${b}attn.qkv.bias`, 3 * v.dim);
    const ctx = L.selfAttention(h, `${b}attn`, qkvW, qkvB, v.dim, v.heads, { clsOnly });
    if (clsOnly) x = L.tokens(x, 0, 1);
    const proj = L.linearParts(
      ctx,
      `${b}attn.proj`,
      mat(`${b}attn.proj.weight`, v.dim, v.dim),
      vec(`${b}attn.proj.bias`, v.dim),
    );
    const r1 = L.residualLayerNorm(proj, x, `${b}norm2`, ...norm(b, 'norm2'), v.ln_eps);
    const fc1 = L.linear(
      r1.out,
      `${b}mlp.fc1`,
      mat(`${b}mlp.fc1.weight`, w.visionMlp, v.dim),
      vec(`${b}mlp.fc1.bias`, w.visionMlp),
    );
    const fc2 = L.linearParts(
      L.gelu(fc1),
      `${b}mlp.fc2`,
      mat(`${b}mlp.fc2.weight`, v.dim, w.visionMlp),
      vec(`${b}mlp.fc2.bias`, v.dim),
    );
    const nextNorm = final ? `${ve}norm` : `${ve}blocks.${i + 1}.norm1`;
    const r2 = L.residualLayerNorm(
      fc2,
      r1.sum,
      nextNorm,
      vec(`${nextNorm}.weight`, v.dim),
      vec(`${nextNorm}.bias`, v.dim),
      v.ln_eps,
    );
    h = r2.out;
    x = r2.sum;
    if (clsOnly) cls0 = L.squeezeToken(r2.out); // final LayerNorm of token 0
  }
  if (options.states) {
    cls0 = L.squeezeToken(L.tokens(h, 0, 1));
    g.rename(L.toFloat32(h), 'states');
    g.output('states', DataType.FLOAT, ['batch', grid * grid + 1, v.dim]);
  }
  const proj = L.linear(
    cls0,
    'vision_proj',
    mat('vision_proj.weight', embed_dim, v.dim),
    vec('vision_proj.bias', embed_dim),
  );
  g.rename(L.l2normalize(proj), 'embeddings');
  g.output('embeddings', DataType.FLOAT, ['batch', embed_dim]);
  return g;
}
