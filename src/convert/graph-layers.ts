// Transformer building blocks shared by the image and text towers, emitted as ONNX nodes.
// Each block computes what the corresponding PyTorch module of ALBEF computes (nn.Linear,
// nn.LayerNorm, exact-erf GELU, scaled dot-product self-attention with an additive mask,
// F.normalize), in the precision the model is exported with.

import { DataType, f, GraphBuilder, type DataTypeValue } from './onnx-builder.js';
import type { Lazy } from './albef-weights.js';
import { float32ToFloat16 } from './tensor-data.js';

export type Precision = 'fp32' | 'fp16' | 'int8';

/** A weight to be written later: its dims and a loader of float32 data. */
export interface LazyTensor {
  dims: number[];
  load: Lazy;
}

export function transposed(rows: number, cols: number, load: Lazy): LazyTensor {
  return {
    dims: [cols, rows],
    load: async () => transpose2d(await load(), rows, cols),
  };
}

export function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c]!;
  return out;
}

function toHalf(a: Float32Array): Uint16Array {
  const out = new Uint16Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = float32ToFloat16(a[i]!);
  return out;
}

/** Symmetric per-output-channel int8 quantization of a [in, out] matrix. */
export function quantizePerColumn(w: Float32Array, rows: number, cols: number): { q: Int8Array; scale: Float32Array } {
  const scale = new Float32Array(cols);
  for (let c = 0; c < cols; c++) {
    let max = 0;
    for (let r = 0; r < rows; r++) max = Math.max(max, Math.abs(w[r * cols + c]!));
    scale[c] = max > 0 ? max / 127 : 1;
  }
  const q = new Int8Array(w.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) q[r * cols + c] = Math.max(-127, Math.min(127, Math.round(w[r * cols + c]! / scale[c]!)));
  }
  return { q, scale };
}

export class Layers {
  readonly floatType: DataTypeValue;

  constructor(
    readonly g: GraphBuilder,
    readonly precision: Precision,
  ) {
    this.floatType = precision === 'fp16' ? DataType.FLOAT16 : DataType.FLOAT;
  }

  /** A float weight in the graph's float type. */
  param(name: string, t: LazyTensor): string {
    if (this.precision === 'fp16') return this.g.weight(name, t.dims, async () => toHalf(await t.load()), DataType.FLOAT16);
    return this.g.weight(name, t.dims, t.load);
  }

  scalar(v: number): string {
    return this.precision === 'fp16' ? this.g.constant(new Uint16Array([float32ToFloat16(v)]), []) : this.g.scalar(v);
  }

  /** y = x @ W + b with W given as [in, out]. int8 models quantize W per output channel. */
  linear(x: string, name: string, w: LazyTensor, bias: LazyTensor): string {
    const [rows, cols] = w.dims as [number, number];
    if (this.precision === 'int8') {
      // One quantization pass shared by both initializers.
      let cached: Promise<{ q: Int8Array; scale: Float32Array }> | undefined;
      const quant = () => (cached ??= w.load().then((d) => quantizePerColumn(d, rows, cols)));
      const wq = this.g.weight(`${name}.weight_q`, [rows, cols], async () => (await quant()).q, DataType.INT8);
      const ws = this.g.weight(`${name}.weight_scale`, [cols], async () => (await quant()).scale);
      const zp = this.g.constant(new Int8Array(cols), [cols]);
      const b = this.param(`${name}.bias`, bias);
      return this.g.op('DynamicQuantizeMatMul', [x, wq, ws, zp, b], {}, { domain: 'com.microsoft' });
    }
    const W = this.param(`${name}.weight`, w);
    const b = this.param(`${name}.bias`, bias);
    return this.g.op('Add', [this.g.op('MatMul', [x, W]), b]);
  }

  layerNorm(x: string, name: string, gamma: LazyTensor, beta: LazyTensor, eps: number): string {
    const s = this.param(`${name}.weight`, gamma);
    const b = this.param(`${name}.bias`, beta);
    return this.g.op('LayerNormalization', [x, s, b], { axis: -1, epsilon: f(eps) });
  }

  /** Exact GELU, x * 0.5 * (1 + erf(x / sqrt 2)), as torch's default nn.GELU / F.gelu. */
  gelu(x: string): string {
    const erf = this.g.op('Erf', [this.g.op('Div', [x, this.scalar(Math.SQRT2)])]);
    return this.g.op('Mul', [this.g.op('Mul', [x, this.scalar(0.5)]), this.g.op('Add', [erf, this.scalar(1)])]);
  }

  /**
   * Multi-head self-attention on x [B, S, D] from a fused [D, 3D] q|k|v projection, with an optional
   * additive mask [B, 1, 1, S]; returns the context [B, S, D] before the output projection.
   */
  selfAttention(x: string, name: string, qkvW: LazyTensor, qkvB: LazyTensor, dim: number, heads: number, mask?: string): string {
    const g = this.g;
    const dh = dim / heads;
    const qkv = this.linear(x, `${name}.qkv`, qkvW, qkvB); // [B, S, 3D]
    const split = g.op('Transpose', [g.op('Reshape', [qkv, g.int64s([0, 0, 3, heads, dh])])], { perm: [2, 0, 3, 1, 4] }); // [3, B, H, S, dh]
    const part = (i: number) => g.op('Gather', [split, g.constant(BigInt64Array.of(BigInt(i)), [])], { axis: 0 }); // [B, H, S, dh]
    const q = g.op('Mul', [part(0), this.scalar(1 / Math.sqrt(dh))]);
    const kT = g.op('Transpose', [part(1)], { perm: [0, 1, 3, 2] });
    let scores = g.op('MatMul', [q, kT]); // [B, H, S, S]
    if (mask) scores = g.op('Add', [scores, mask]);
    const probs = g.op('Softmax', [scores], { axis: -1 });
    const ctx = g.op('Transpose', [g.op('MatMul', [probs, part(2)])], { perm: [0, 2, 1, 3] }); // [B, S, H, dh]
    return g.op('Reshape', [ctx, g.int64s([0, 0, dim])]);
  }

  /** Token 0 of [B, S, D] → [B, D]. */
  firstToken(x: string): string {
    return this.g.op('Gather', [x, this.g.constant(BigInt64Array.of(0n), [])], { axis: 1 });
  }

  /** F.normalize(x, dim=-1): x / max(‖x‖₂, 1e-12), computed in float32 whatever the model precision. */
  l2normalize(x: string): string {
    const x32 = this.precision === 'fp16' ? this.g.op('Cast', [x], { to: DataType.FLOAT }) : x;
    const norm = this.g.op('ReduceL2', [x32], { axes: [-1], keepdims: 1 });
    return this.g.op('Div', [x32, this.g.op('Max', [norm, this.g.scalar(1e-12)])]);
  }

  /** Graph inputs arrive as float32; fp16 models cast them once. */
  fromFloat32(x: string): string {
    return this.precision === 'fp16' ? this.g.op('Cast', [x], { to: DataType.FLOAT16 }) : x;
  }
}
