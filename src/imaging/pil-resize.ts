// Pillow's `Image.resize(size, Image.BICUBIC)` for 8-bit RGB, reproduced bit for bit.
//
// ALBEF's transforms resize with PIL, and the vectors depend on its exact arithmetic: a separable
// resampler (horizontal pass, then vertical) using the cubic kernel with A = -0.5, a support widened
// by the scale factor when shrinking, coefficients normalised and then rounded to fixed point with
// 22 fractional bits, and a round-and-clip to 8 bits between the passes. sharp/libvips use another
// cubic kernel and no intermediate rounding (cosine 0.9986–0.9996 against the ALBEF goldens), so this
// is written by hand, following the algorithm of Pillow's src/libImaging/Resample.c.

const PRECISION_BITS = 32 - 8 - 2;
const HALF = 1 << (PRECISION_BITS - 1);
const SUPPORT = 2;
const A = -0.5;

function bicubic(x: number): number {
  if (x < 0) x = -x;
  if (x < 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * A;
  return 0;
}

interface Coefficients {
  /** taps per output pixel (the stride of `k`) */
  ksize: number;
  /** per output pixel: first source index and number of taps */
  bounds: Int32Array;
  /** fixed-point weights, ksize per output pixel */
  k: Int32Array;
}

/** Weights mapping inSize source pixels onto outSize (Pillow's precompute_coeffs + 8-bit normalisation). */
function coefficients(inSize: number, outSize: number): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = SUPPORT * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const k = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  const ss = 1 / filterScale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C's (int) cast truncates toward zero
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let sum = 0;
    for (let x = 0; x < xmax; x++) {
      w[x] = bicubic((x + xmin - center + 0.5) * ss);
      sum += w[x]!;
    }
    for (let x = 0; x < xmax; x++) {
      const v = sum !== 0 ? w[x]! / sum : w[x]!;
      k[xx * ksize + x] =
        v < 0 ? Math.trunc(-0.5 + v * (1 << PRECISION_BITS)) : Math.trunc(0.5 + v * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, k };
}

function clip8(v: number): number {
  const s = v >> PRECISION_BITS;
  return s < 0 ? 0 : s > 255 ? 255 : s;
}

/**
 * Resizes interleaved 8-bit RGB (3 bytes per pixel) from width×height to outWidth×outHeight,
 * ignoring aspect ratio, exactly as Pillow does for an 'RGB' image with BICUBIC.
 */
export function resizeBicubicRGB(
  src: Uint8Array,
  width: number,
  height: number,
  outWidth: number,
  outHeight: number,
): Uint8Array {
  if (src.length !== width * height * 3) throw new Error('resizeBicubicRGB: buffer size does not match the dimensions');
  const needH = outWidth !== width;
  const needV = outHeight !== height;
  if (!needH && !needV) return src.slice();

  const vert = coefficients(height, outHeight);
  // Only the source rows the vertical pass reads need a horizontal pass.
  const yFirst = needV ? vert.bounds[0]! : 0;
  const yLast = needV ? vert.bounds[outHeight * 2 - 2]! + vert.bounds[outHeight * 2 - 1]! : height;

  let img = src;
  let imgW = width;
  if (needH) {
    const hor = coefficients(width, outWidth);
    const rows = yLast - yFirst;
    const tmp = new Uint8Array(outWidth * rows * 3);
    const { ksize, bounds, k } = hor;
    for (let y = 0; y < rows; y++) {
      const rowIn = (y + yFirst) * width * 3;
      const rowOut = y * outWidth * 3;
      for (let xx = 0; xx < outWidth; xx++) {
        const xmin = bounds[xx * 2]!;
        const xmax = bounds[xx * 2 + 1]!;
        const kOff = xx * ksize;
        let r = HALF;
        let g = HALF;
        let b = HALF;
        let p = rowIn + xmin * 3;
        // Products and sums stay below 2^31 (255 · Σ|k| < 1.3e9), so int32 arithmetic is exact.
        for (let x = 0; x < xmax; x++, p += 3) {
          const c = k[kOff + x]!;
          r = (r + Math.imul(src[p]!, c)) | 0;
          g = (g + Math.imul(src[p + 1]!, c)) | 0;
          b = (b + Math.imul(src[p + 2]!, c)) | 0;
        }
        const o = rowOut + xx * 3;
        tmp[o] = clip8(r);
        tmp[o + 1] = clip8(g);
        tmp[o + 2] = clip8(b);
      }
    }
    img = tmp;
    imgW = outWidth;
    if (!needV) return tmp;
  }

  const out = new Uint8Array(imgW * outHeight * 3);
  const { ksize, bounds, k } = vert;
  const stride = imgW * 3;
  const rowShift = needH ? yFirst : 0; // the horizontal pass kept only rows yFirst..yLast
  for (let yy = 0; yy < outHeight; yy++) {
    const ymin = bounds[yy * 2]! - rowShift;
    const ymax = bounds[yy * 2 + 1]!;
    const kOff = yy * ksize;
    const rowOut = yy * stride;
    for (let xx = 0; xx < imgW; xx++) {
      let r = HALF;
      let g = HALF;
      let b = HALF;
      let p = ymin * stride + xx * 3;
      for (let y = 0; y < ymax; y++, p += stride) {
        const c = k[kOff + y]!;
        r = (r + Math.imul(img[p]!, c)) | 0;
        g = (g + Math.imul(img[p + 1]!, c)) | 0;
        b = (b + Math.imul(img[p + 2]!, c)) | 0;
      }
      const o = rowOut + xx * 3;
      out[o] = clip8(r);
      out[o + 1] = clip8(g);
      out[o + 2] = clip8(b);
    }
  }
  return out;
}
