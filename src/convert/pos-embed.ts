// Resizes ViT position embeddings the way ALBEF's `interpolate_pos_embed` does, i.e. with
// torch.nn.functional.interpolate(mode='bicubic', align_corners=False) on the patch grid while the
// cls entry is kept. Reproduced here because no JS library offers PyTorch's exact bicubic variant:
// cubic convolution with A = -0.75, source coordinate scale*(dst+0.5)-0.5 left unclamped, and the
// four taps clamped to the border.

const A = -0.75;

function cubicWeights(t: number): [number, number, number, number] {
  const near = (x: number): number => ((A + 2) * x - (A + 3)) * x * x + 1; // |x| <= 1
  const far = (x: number): number => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; // 1 < |x| < 2
  return [far(t + 1), near(t), near(1 - t), far(2 - t)];
}

/** For each output index: the four clamped source indices and their weights. */
function taps(inSize: number, outSize: number): { idx: number[]; w: number[] }[] {
  const scale = inSize / outSize;
  return Array.from({ length: outSize }, (_, o) => {
    const real = scale * (o + 0.5) - 0.5;
    const base = Math.floor(real);
    const w = cubicWeights(real - base);
    const idx = [-1, 0, 1, 2].map((k) => Math.min(Math.max(base + k, 0), inSize - 1));
    return { idx, w };
  });
}

/**
 * pos: [1 + inGrid², dim] (cls first, then the grid row-major) → [1 + outGrid², dim].
 */
export function interpolatePosEmbed(pos: Float32Array, dim: number, inGrid: number, outGrid: number): Float32Array {
  if (pos.length !== (1 + inGrid * inGrid) * dim) throw new Error('pos_embed size does not match its grid');
  if (inGrid === outGrid) return pos;
  const out = new Float32Array((1 + outGrid * outGrid) * dim);
  out.set(pos.subarray(0, dim), 0);
  const t = taps(inGrid, outGrid);
  const at = (y: number, x: number, c: number): number => pos[dim * (1 + y * inGrid + x) + c]!;
  for (let oy = 0; oy < outGrid; oy++) {
    const ty = t[oy]!;
    for (let ox = 0; ox < outGrid; ox++) {
      const tx = t[ox]!;
      const dst = dim * (1 + oy * outGrid + ox);
      for (let c = 0; c < dim; c++) {
        let acc = 0;
        for (let j = 0; j < 4; j++) {
          let row = 0;
          for (let i = 0; i < 4; i++) row += tx.w[i]! * at(ty.idx[j]!, tx.idx[i]!, c);
          acc += ty.w[j]! * row;
        }
        out[dst + c] = acc;
      }
    }
  }
  return out;
}
