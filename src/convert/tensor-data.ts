// Element types of PyTorch storages and their conversion to contiguous float32.

export type DType =
  'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

export const DTYPE_SIZE: Record<DType, number> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

/** torch.<Name>Storage → element type (the names torch.save writes). */
export const STORAGE_DTYPES: Record<string, DType> = {
  FloatStorage: 'float32',
  DoubleStorage: 'float64',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
};

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  return strides;
}

/** Number of storage elements a strided view touches, counted from its first element. */
export function stridedSpan(shape: readonly number[], stride: readonly number[]): number {
  if (shape.some((d) => d === 0)) return 0;
  let last = 0;
  for (let i = 0; i < shape.length; i++) last += (shape[i]! - 1) * stride[i]!;
  return last + 1;
}

export function float16ToFloat32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Round-to-nearest-even float32 → float16 bits (for fp16 model export). */
export function float32ToFloat16(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half; // a carry out of the mantissa bumps the exponent, as it should
}

/**
 * Decodes `span` elements of `dtype` from little-endian (or big-endian) bytes, then gathers the
 * strided view `shape`/`stride` into a contiguous Float32Array.
 */
export function toFloat32(
  bytes: Uint8Array,
  dtype: DType,
  shape: readonly number[],
  stride: readonly number[],
  littleEndian = true,
): Float32Array {
  const span = bytes.byteLength / DTYPE_SIZE[dtype];
  const flat = decodeFlat(bytes, dtype, span, littleEndian);
  const n = numel(shape);
  const dense = contiguousStrides(shape);
  const contiguous = stride.every((s, i) => shape[i] === 1 || s === dense[i]);
  if (contiguous) return flat.length === n ? flat : flat.slice(0, n);
  const out = new Float32Array(n);
  const rank = shape.length;
  const idx = new Array<number>(rank).fill(0);
  let src = 0;
  for (let o = 0; o < n; o++) {
    out[o] = flat[src]!;
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]!++;
      src += stride[d]!;
      if (idx[d]! < shape[d]!) break;
      src -= stride[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

function decodeFlat(bytes: Uint8Array, dtype: DType, count: number, le: boolean): Float32Array {
  if (dtype === 'float32' && le && bytes.byteOffset % 4 === 0) {
    return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + count * 4));
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    switch (dtype) {
      case 'float32':
        out[i] = view.getFloat32(i * 4, le);
        break;
      case 'float64':
        out[i] = view.getFloat64(i * 8, le);
        break;
      case 'float16':
        out[i] = float16ToFloat32(view.getUint16(i * 2, le));
        break;
      case 'bfloat16':
        u32[0] = view.getUint16(i * 2, le) << 16;
        out[i] = f32[0]!;
        break;
      case 'int64':
        out[i] = Number(view.getBigInt64(i * 8, le));
        break;
      case 'int32':
        out[i] = view.getInt32(i * 4, le);
        break;
      case 'int16':
        out[i] = view.getInt16(i * 2, le);
        break;
      case 'int8':
        out[i] = view.getInt8(i);
        break;
      case 'uint8':
      case 'bool':
        out[i] = view.getUint8(i);
        break;
    }
  }
  return out;
}
