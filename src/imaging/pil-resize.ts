// Pillow's `Image.resize(size, Image.BICUBIC)` for 8-bit RGB, reproduced bit for bit.
//
// ALBEF's transforms resize with PIL, and the vectors depend on its exact arithmetic: a separable
// resampler (horizontal pass, then vertical) using the cubic kernel with A = -0.5, a support widened
// by the scale factor when shrinking, coefficients normalised and then rounded to fixed point with
// 22 fractional bits, and a round-and-clip to 8 bits between the passes. sharp/libvips use another
// cubic kernel and no intermediate rounding (cosine 0.9986–0.9996 against the ALBEF goldens), so this
// is written by hand, following the algorithm of Pillow's src/libImaging/Resample.c.
//
// The coefficients are computed here; the passes run in WebAssembly SIMD (resample.wat): measured
// several times faster than the same integer arithmetic in JavaScript over typed arrays (kept below
// as the fallback for an engine without SIMD), and faster than Pillow's C (docs/performance.md).
// Source rows are copied into the module's memory a band at a time (the copy stays in cache and the
// memory stays small); the intermediate and output images live there too.

import { RESAMPLE_WASM_BASE64 } from './resample-wasm.js';

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
  const k = kernels();
  return (
    (k && resizeWasm(k, src, width, height, outWidth, outHeight)) ??
    resizeBicubicRGBScalar(src, width, height, outWidth, outHeight)
  );
}

/** The same in plain JavaScript: for an engine without WebAssembly SIMD. */
export function resizeBicubicRGBScalar(
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

// Node has WebAssembly; the compiler's libraries here (ES2023, no DOM) do not describe it.
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
}
const wasm = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

type HorizontalPass = (
  src: number,
  srcStride: number,
  rows: number,
  dst: number,
  dstStride: number,
  outW: number,
  bounds: number,
  coefs: number,
) => void;

interface Kernels {
  memory: { readonly buffer: ArrayBuffer; grow(pages: number): number };
  hpass: HorizontalPass;
  hpass8: HorizontalPass;
  vpass(src: number, stride: number, dst: number, rowBytes: number, outH: number, bounds: number, coefs: number): void;
}

let wasmModule: object | null | undefined;
let instance: Kernels | undefined;
/** Source bytes copied into the module's memory per horizontal pass call (stays in L2). */
const BAND_BYTES = 96 * 1024;
/** Beyond this the module's memory (grown for a huge image) is dropped after the call. */
const KEEP_MEMORY_BYTES = 64 * 2 ** 20;
/** Bytes past a buffer's end that the kernels may read or write (resample.wat). */
const SLACK = 32;
/**
 * The int16 lanes of the horizontal kernels' coefficient vectors, as indices into the taps of one
 * step (hpass: 2 taps, one vector; hpass8: 8 taps, three vectors); -1 is a zero lane.
 */
const LANES: Record<2 | 8, number[][]> = {
  2: [[0, 1, 0, 1, 0, 1, -1, -1]],
  8: [
    [0, 1, 0, 1, 0, 1, 2, 3],
    [2, 3, 2, 3, 4, 5, 4, 5],
    [4, 5, 6, 7, 6, 7, 6, 7],
  ],
};
/** From this many taps on (shrinking by about 4 and more) eight taps a step are faster, below two. */
const WIDE_TAPS = 17;

/** The WebAssembly kernels, instantiated once per thread; undefined where the engine lacks SIMD. */
function kernels(): Kernels | undefined {
  if (wasmModule === undefined) {
    try {
      wasmModule = wasm ? new wasm.Module(Buffer.from(RESAMPLE_WASM_BASE64, 'base64')) : null;
    } catch {
      wasmModule = null;
    }
  }
  if (!wasmModule) return undefined;
  instance ??= new wasm!.Instance(wasmModule).exports as Kernels;
  return instance;
}

const align = (n: number): number => (n + 15) & ~15;

/** The resize on the WebAssembly kernels; undefined when their memory cannot grow that far. */
function resizeWasm(
  k: Kernels,
  src: Uint8Array,
  width: number,
  height: number,
  outWidth: number,
  outHeight: number,
): Uint8Array | undefined {
  const needH = outWidth !== width;
  const needV = outHeight !== height;
  if (!needH && !needV) return src.slice();
  const vert = needV ? coefficients(height, outHeight) : undefined;
  const hor = needH ? coefficients(width, outWidth) : undefined;
  // Only the source rows the vertical pass reads need a horizontal pass.
  const yFirst = vert ? vert.bounds[0]! : 0;
  const rows = vert ? vert.bounds[outHeight * 2 - 2]! + vert.bounds[outHeight * 2 - 1]! - yFirst : height;
  const rowIn = width * 3;
  const rowTmp = outWidth * 3;
  const bandRows = Math.max(1, Math.min(rows, Math.floor(BAND_BYTES / rowIn)));

  // Horizontal taps per kernel step.
  const step = hor && hor.ksize >= WIDE_TAPS ? 8 : 2;
  const lanes = LANES[step];

  // Memory layout: tables, band, intermediate (one spare row: a pair past the last tap reads it), output.
  const hBounds = 0;
  const hCoefs = align(hBounds + (hor ? outWidth * 8 : 0));
  const hSteps = hor ? stepCount(hor, outWidth, step) : 0;
  const vBounds = align(hCoefs + hSteps * lanes.length * 32);
  const vCoefs = align(vBounds + (vert ? outHeight * 8 : 0));
  const vPairs = vert ? stepCount(vert, outHeight, 2) : 0;
  const band = align(vCoefs + vPairs * 8);
  const tmp = align(band + (hor ? bandRows * rowIn + SLACK : 0));
  const out = align(tmp + (rows + 1) * rowTmp + SLACK);
  const end = out + (vert ? outHeight * rowTmp + SLACK : 0);
  const memory = k.memory;
  try {
    if (memory.buffer.byteLength < end) memory.grow(Math.ceil((end - memory.buffer.byteLength) / 65536));
  } catch {
    return undefined; // past 4 GiB (a very tall or wide image): the JavaScript passes take it
  }
  const buf = memory.buffer;
  // A memory grown for a huge image is not kept for the next.
  if (buf.byteLength > KEEP_MEMORY_BYTES) instance = undefined;
  const i32 = new Int32Array(buf);
  const u8 = new Uint8Array(buf);

  if (hor) {
    const h16 = new Int16Array(buf);
    let c = hCoefs >> 1;
    for (let xx = 0; xx < outWidth; xx++) {
      const xmin = hor.bounds[xx * 2]!;
      const xmax = hor.bounds[xx * 2 + 1]!;
      const steps = Math.ceil(xmax / step);
      i32[(hBounds >> 2) + xx * 2] = xmin * 3;
      i32[(hBounds >> 2) + xx * 2 + 1] = steps;
      for (let first = 0; first < steps * step; first += step) {
        for (const vector of lanes) {
          for (let lane = 0; lane < 8; lane++) {
            const t = vector[lane]! < 0 ? xmax : first + vector[lane]!;
            const kk = t < xmax ? hor.k[xx * hor.ksize + t]! : 0;
            h16[c + lane] = kk >> 11;
            h16[c + 8 + lane] = kk & 2047;
          }
          c += 16;
        }
      }
    }
    const pass = step === 8 ? k.hpass8 : k.hpass;
    for (let y0 = 0; y0 < rows; y0 += bandRows) {
      const n = Math.min(bandRows, rows - y0);
      u8.set(src.subarray((yFirst + y0) * rowIn, (yFirst + y0 + n) * rowIn), band);
      pass(band, rowIn, n, tmp + y0 * rowTmp, rowTmp, outWidth, hBounds, hCoefs);
    }
    if (!vert) return u8.slice(tmp, tmp + outHeight * rowTmp);
  } else {
    u8.set(src.subarray(yFirst * rowIn, (yFirst + rows) * rowIn), tmp);
  }

  const v = vert!;
  let c = vCoefs >> 2;
  for (let yy = 0; yy < outHeight; yy++) {
    const ymin = v.bounds[yy * 2]! - yFirst;
    const ymax = v.bounds[yy * 2 + 1]!;
    const pairs = (ymax + 1) >> 1;
    i32[(vBounds >> 2) + yy * 2] = ymin * rowTmp;
    i32[(vBounds >> 2) + yy * 2 + 1] = pairs;
    for (let j = 0; j < pairs; j++, c += 2) {
      const k0 = v.k[yy * v.ksize + 2 * j]!;
      const k1 = 2 * j + 1 < ymax ? v.k[yy * v.ksize + 2 * j + 1]! : 0;
      i32[c] = ((k0 >> 11) & 0xffff) | ((k1 >> 11) << 16);
      i32[c + 1] = (k0 & 2047) | ((k1 & 2047) << 16);
    }
  }
  k.vpass(tmp, rowTmp, out, rowTmp, outHeight, vBounds, vCoefs);
  return u8.slice(out, out + outHeight * rowTmp);
}

/** Kernel steps of `step` taps over all output pixels (taps past the last have zero coefficients). */
function stepCount(c: Coefficients, outSize: number, step: number): number {
  let n = 0;
  for (let i = 0; i < outSize; i++) n += Math.ceil(c.bounds[i * 2 + 1]! / step);
  return n;
}
