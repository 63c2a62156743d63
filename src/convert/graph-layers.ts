// Transformer building blocks shared by the image and text towers, emitted as ONNX nodes.
// Each block computes what the corresponding PyTorch module of ALBEF computes (nn.Linear,
// nn.LayerNorm, exact-erf GELU, scaled dot-product self-attention with an additive -10000 mask,
// F.normalize), in the precision the model is exported with. Attention uses ONNX Runtime's fused
// com.microsoft MultiHeadAttention kernel (CPU and CUDA): ORT does not fuse the plain-op form of
// this graph itself, and the fused kernel measured faster (docs/performance.md).

import { DataType, f, GraphBuilder, type DataTypeValue } from './onnx-builder.js';
import type { Lazy } from './albef-weights.js';
import { SAFE_INT8_WEIGHT_MAX } from '../core/cpu-features.js';
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

/** The same tensor, its loader run at most once (for weights read in parts). */
export function loadOnce(t: LazyTensor): LazyTensor {
  let data: Promise<Float32Array> | undefined;
  return { dims: t.dims, load: () => (data ??= t.load()) };
}

/** Columns [from, to) of a [rows, cols] weight. */
export function columns(t: LazyTensor, from: number, to: number): LazyTensor {
  const [rows, cols] = t.dims as [number, number];
  return {
    dims: [rows, to - from],
    load: async () => {
      const a = await t.load();
      const out = new Float32Array(rows * (to - from));
      for (let r = 0; r < rows; r++) out.set(a.subarray(r * cols + from, r * cols + to), r * (to - from));
      return out;
    },
  };
}

/** Elements [from, to) of a vector. */
export function elements(t: LazyTensor, from: number, to: number): LazyTensor {
  return { dims: [to - from], load: async () => (await t.load()).slice(from, to) };
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

/**
 * Symmetric per-output-channel int8 quantization of a [in, out] matrix with 7-bit weights (|q| ≤ 64,
 * as ORT's own quantizer's `reduce_range`): full ±127 weights saturate the AVX2 and AVX-512 (non-VNNI)
 * integer GEMM, whose results then depend on the CPU (see cpu-features.ts).
 */
export function quantizePerColumn(w: Float32Array, rows: number, cols: number): { q: Int8Array; scale: Float32Array } {
  const scale = new Float32Array(cols);
  for (let c = 0; c < cols; c++) {
    let max = 0;
    for (let r = 0; r < rows; r++) max = Math.max(max, Math.abs(w[r * cols + c]!));
    scale[c] = max > 0 ? max / SAFE_INT8_WEIGHT_MAX : 1;
  }
  const q = new Int8Array(w.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++)
      q[r * cols + c] = Math.max(
        -SAFE_INT8_WEIGHT_MAX,
        Math.min(SAFE_INT8_WEIGHT_MAX, Math.round(w[r * cols + c]! / scale[c]!)),
      );
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
    if (this.precision === 'fp16')
      return this.g.weight(name, t.dims, async () => toHalf(await t.load()), DataType.FLOAT16);
    return this.g.weight(name, t.dims, t.load);
  }

  scalar(v: number): string {
    return this.precision === 'fp16' ? this.g.constant(new Uint16Array([float32ToFloat16(v)]), []) : this.g.scalar(v);
  }

  /**
   * x @ W with W given as [in, out], plus the bias: int8 models quantize W per output channel and
   * fuse the bias into DynamicQuantizeMatMul; float models return the bias separately for the caller
   * to add where it fits best.
   */
  linearParts(x: string, name: string, w: LazyTensor, bias: LazyTensor): { out: string; bias?: string } {
    const [rows, cols] = w.dims as [number, number];
    if (this.precision === 'int8') {
      // One quantization pass shared by both initializers.
      let cached: Promise<{ q: Int8Array; scale: Float32Array }> | undefined;
      const quant = () => (cached ??= w.load().then((d) => quantizePerColumn(d, rows, cols)));
      const wq = this.g.weight(`${name}.weight_q`, [rows, cols], async () => (await quant()).q, DataType.INT8);
      const ws = this.g.weight(`${name}.weight_scale`, [cols], async () => (await quant()).scale);
      const zp = this.g.constant(new Int8Array(cols), [cols]);
      const b = this.param(`${name}.bias`, bias);
      return { out: this.g.op('DynamicQuantizeMatMul', [x, wq, ws, zp, b], {}, { domain: 'com.microsoft' }) };
    }
    const W = this.param(`${name}.weight`, w);
    return { out: this.g.op('MatMul', [x, W]), bias: this.param(`${name}.bias`, bias) };
  }

  /** y = x @ W + b in the graph's float type, whatever the precision (small heads). */
  floatLinear(x: string, name: string, w: LazyTensor, bias: LazyTensor): string {
    return this.g.op('Add', [
      this.g.op('MatMul', [x, this.param(`${name}.weight`, w)]),
      this.param(`${name}.bias`, bias),
    ]);
  }

  /** y = x @ W + b. */
  linear(x: string, name: string, w: LazyTensor, bias: LazyTensor): string {
    const { out, bias: b } = this.linearParts(x, name, w, bias);
    return b ? this.g.op('Add', [out, b]) : out;
  }

  /**
   * LayerNorm(input + bias + skip), also returning the sum (the residual stream of a pre-LN block).
   * Plain Add + LayerNormalization: measured faster here than ORT's SkipLayerNormalization kernel
   * (docs/performance.md).
   */
  residualLayerNorm(
    input: { out: string; bias?: string },
    skip: string,
    name: string,
    gamma: LazyTensor,
    beta: LazyTensor,
    eps: number,
  ): { out: string; sum: string } {
    const withBias = input.bias ? this.g.op('Add', [input.out, input.bias]) : input.out;
    const sum = this.g.op('Add', [withBias, skip]);
    return { out: this.layerNorm(sum, name, gamma, beta, eps), sum };
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
   * Multi-head attention: queries [B, Sq, D] against keys and values [B, S, D], with an optional
   * key padding mask [B, S] (int32 1/0; masked keys get -10000 added, as BERT's extended mask) and
   * an optional q|k|v bias [3D] that the kernel adds while it lays the heads out.
   * Scale 1/sqrt(head_dim), softmax over keys. Returns the context [B, Sq, D].
   */
  attention(q: string, k: string, v: string, heads: number, keyPaddingMask?: string, qkvBias?: string): string {
    const inputs = [q, k, v, qkvBias ?? '', keyPaddingMask ?? ''];
    while (inputs.at(-1) === '') inputs.pop();
    return this.g.op(
      'MultiHeadAttention',
      inputs,
      { num_heads: heads, mask_filter_value: f(-10000) },
      { domain: 'com.microsoft' },
    );
  }

  /**
   * Self-attention from a [D, 3D] q|k|v projection: the context [B, Sq, D] before the output
   * projection. With `clsOnly` (the last block: only token 0's output is read) the query is token 0
   * alone while keys and values still come from every token.
   *
   * Three projections rather than one split afterwards: the kernel copies q, k and v into its head
   * layout anyway, so a Split would only add a pass over [B, S, 3D].
   * int8 projections carry their bias fused; float models hand the q|k|v bias to the kernel.
   */
  selfAttention(
    x: string,
    name: string,
    qkvW: LazyTensor,
    qkvB: LazyTensor,
    dim: number,
    heads: number,
    options: { keyPaddingMask?: string; clsOnly?: boolean } = {},
  ): string {
    const w = loadOnce(qkvW);
    const quantized = this.precision === 'int8';
    const [q, k, v] = ['q', 'k', 'v'].map((label, j) => {
      const input = j === 0 && options.clsOnly ? this.tokens(x, 0, 1) : x;
      const cols = columns(w, j * dim, (j + 1) * dim);
      return quantized
        ? this.linear(input, `${name}.${label}`, cols, elements(qkvB, j * dim, (j + 1) * dim))
        : this.g.op('MatMul', [input, this.param(`${name}.${label}.weight`, cols)]);
    }) as [string, string, string];
    return this.attention(
      q,
      k,
      v,
      heads,
      options.keyPaddingMask,
      quantized ? undefined : this.param(`${name}.qkv.bias`, qkvB),
    );
  }

  /** Tokens [from, to) of [B, S, D] → [B, to - from, D]. */
  tokens(x: string, from: number, to: number): string {
    return this.g.op('Slice', [x, this.g.int64s([from]), this.g.int64s([to]), this.g.int64s([1])]);
  }

  /** [B, 1, D] → [B, D]. */
  squeezeToken(x: string): string {
    return this.g.op('Squeeze', [x, this.g.int64s([1])]);
  }

  /** F.normalize(x, dim=-1): x / max(‖x‖₂, 1e-12), computed in float32 whatever the model precision. */
  l2normalize(x: string): string {
    const x32 = this.precision === 'fp16' ? this.g.op('Cast', [x], { to: DataType.FLOAT }) : x;
    const norm = this.g.op('ReduceL2', [x32], { axes: [-1], keepdims: 1 });
    return this.g.op('Div', [x32, this.g.op('Max', [norm, this.g.scalar(1e-12)])]);
  }

  /** Graph outputs leave as float32; fp16 models cast them once. */
  toFloat32(x: string): string {
    return this.precision === 'fp16' ? this.g.op('Cast', [x], { to: DataType.FLOAT }) : x;
  }

  /** Graph inputs arrive as float32; fp16 models cast them once. */
  fromFloat32(x: string): string {
    return this.precision === 'fp16' ? this.g.op('Cast', [x], { to: DataType.FLOAT16 }) : x;
  }
}
