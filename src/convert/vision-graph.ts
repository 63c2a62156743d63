// image.onnx: ALBEF's image tower. pixel_values [B, 3, R, R] → ViT (pre-LN blocks, final LayerNorm)
// → token 0 → vision_proj → L2 normalise → embeddings [B, embed_dim].

import type { AlbefWeights, Lazy } from './albef-weights.js';
import { Layers, transposed, type LazyTensor, type Precision } from './graph-layers.js';
import { DataType, GraphBuilder } from './onnx-builder.js';
import { interpolatePosEmbed } from './pos-embed.js';

export function buildVisionGraph(w: AlbefWeights, precision: Precision): GraphBuilder {
  const { vision: v, image_res: res, embed_dim } = w.arch;
  const g = new GraphBuilder('albef_image');
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
  const conv = g.op('Conv', [x0, L.param(ve + 'patch_embed.proj.weight', { dims: [v.dim, 3, v.patch, v.patch], load: w.lazy(ve + 'patch_embed.proj.weight') }), L.param(ve + 'patch_embed.proj.bias', vec(ve + 'patch_embed.proj.bias', v.dim))], {
    kernel_shape: [v.patch, v.patch],
    strides: [v.patch, v.patch],
  }); // [B, D, g, g]
  const patches = g.op('Transpose', [g.op('Reshape', [conv, g.int64s([0, v.dim, -1])])], { perm: [0, 2, 1] }); // [B, N, D]
  const patchesPos = g.op('Add', [patches, L.param(ve + 'pos_embed.patches', { dims: [grid * grid, v.dim], load: patchPos })]);
  const batch = g.op('Shape', [pixels], { start: 0, end: 1 });
  const clsShape = g.op('Concat', [batch, g.int64s([1, v.dim])], { axis: 0 });
  const cls = g.op('Expand', [L.param(ve + 'cls_token.pos', { dims: [1, 1, v.dim], load: clsPos }), clsShape]);
  let x = g.op('Concat', [cls, patchesPos], { axis: 1 }); // [B, N+1, D]

  for (let i = 0; i < v.depth; i++) {
    const b = `${ve}blocks.${i}.`;
    const h = L.layerNorm(x, `${b}norm1`, vec(`${b}norm1.weight`, v.dim), vec(`${b}norm1.bias`, v.dim), v.ln_eps);
    const ctx = L.selfAttention(h, `${b}attn`, mat(`${b}attn.qkv.weight`, 3 * v.dim, v.dim), vec(`${b}attn.qkv.bias`, 3 * v.dim), v.dim, v.heads);
    x = g.op('Add', [x, L.linear(ctx, `${b}attn.proj`, mat(`${b}attn.proj.weight`, v.dim, v.dim), vec(`${b}attn.proj.bias`, v.dim))]);
    const h2 = L.layerNorm(x, `${b}norm2`, vec(`${b}norm2.weight`, v.dim), vec(`${b}norm2.bias`, v.dim), v.ln_eps);
    const mlp = L.linear(
      L.gelu(L.linear(h2, `${b}mlp.fc1`, mat(`${b}mlp.fc1.weight`, w.visionMlp, v.dim), vec(`${b}mlp.fc1.bias`, w.visionMlp))),
      `${b}mlp.fc2`,
      mat(`${b}mlp.fc2.weight`, v.dim, w.visionMlp),
      vec(`${b}mlp.fc2.bias`, v.dim),
    );
    x = g.op('Add', [x, mlp]);
  }
  // The final LayerNorm is per token, so taking token 0 first gives the same result for less work.
  const cls0 = L.layerNorm(L.firstToken(x), `${ve}norm`, vec(`${ve}norm.weight`, v.dim), vec(`${ve}norm.bias`, v.dim), v.ln_eps);
  const proj = L.linear(cls0, 'vision_proj', mat('vision_proj.weight', embed_dim, v.dim), vec('vision_proj.bias', embed_dim));
  g.rename(L.l2normalize(proj), 'embeddings');
  g.output('embeddings', DataType.FLOAT, ['batch', embed_dim]);
  return g;
}
