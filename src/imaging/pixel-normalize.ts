// The last step of ALBEF's image transform: resized 8-bit RGB → torchvision's ToTensor + Normalize
// (v / 255, then (x - mean) / std, in float32) → planar CHW. Kept apart from decode.ts (which loads
// sharp) because the session worker runs it, straight into the batch tensor it reuses.

/** Interleaved RGB bytes (size × size × 3) → planar CHW float32, written into `out` (3 × size × size). */
export function normalizeToCHW(
  rgb: Uint8Array,
  size: number,
  mean: readonly number[],
  std: readonly number[],
  out = new Float32Array(3 * size * size),
): Float32Array {
  const plane = size * size;
  if (rgb.length !== 3 * plane || out.length !== 3 * plane)
    throw new Error('normalizeToCHW: buffer sizes do not match the image size');
  // Per-value tables in torch's float32 arithmetic: 768 divisions instead of millions.
  const [t0, t1, t2] = [0, 1, 2].map((c) => {
    const m = Math.fround(mean[c]!);
    const s = Math.fround(std[c]!);
    const table = new Float32Array(256);
    for (let v = 0; v < 256; v++) table[v] = Math.fround(Math.fround(v / 255) - m) / s;
    return table;
  }) as [Float32Array, Float32Array, Float32Array];
  // One pass over the interleaved bytes, writing the three planes side by side.
  for (let i = 0, p = 0; i < plane; i++, p += 3) {
    out[i] = t0[rgb[p]!]!;
    out[plane + i] = t1[rgb[p + 1]!]!;
    out[2 * plane + i] = t2[rgb[p + 2]!]!;
  }
  return out;
}
