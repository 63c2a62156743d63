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
  for (let c = 0; c < 3; c++) {
    // Per-value table in torch's float32 arithmetic: 256 divisions instead of millions.
    const m = Math.fround(mean[c]!);
    const s = Math.fround(std[c]!);
    const table = new Float32Array(256);
    for (let v = 0; v < 256; v++) table[v] = Math.fround(Math.fround(v / 255) - m) / s;
    const off = c * plane;
    for (let i = 0; i < plane; i++) out[off + i] = table[rgb[i * 3 + c]!]!;
  }
  return out;
}
