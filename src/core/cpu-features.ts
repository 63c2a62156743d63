// The CPU's instruction-set flags that decide which integer GEMM kernel ONNX Runtime (MLAS) runs, and
// whether that kernel is exact for a model's int8 weights. MLAS picks, for u8 × s8 products: AMX, else
// VNNI (`vpdpbusd`, 32-bit sums: exact), else AVX-512 or AVX2 `vpmaddubsw`, whose adjacent-pair sums
// saturate at int16 once |weight| exceeds 64 (255 × 2 × 64 = 32640 is the most an int16 may take).
// The benchmark records these flags with every result; the model pool warns when an int8 model's
// weights could saturate this CPU's kernel.

import { readFileSync } from 'node:fs';
import { arch } from 'node:process';

/** The x86 flags that pick MLAS kernels, in /proc/cpuinfo spelling. */
export const KERNEL_FLAGS = [
  'avx2',
  'fma',
  'avx512f',
  'avx512bw',
  'avx512_vnni',
  'avx_vnni',
  'amx_tile',
  'amx_int8',
] as const;

export interface CpuFeatures {
  arch: string;
  model: string;
  /** The flags of KERNEL_FLAGS this CPU has (x86 only). */
  flags: string[];
  /** The integer GEMM ONNX Runtime runs for int8 models here. */
  int8Kernel: 'amx' | 'vnni' | 'avx512-vpmaddubsw' | 'avx2-vpmaddubsw' | 'sse' | 'arm64' | 'other';
  /** Whether that kernel sums weight pairs in saturating 16-bit arithmetic (full-range weights drift). */
  int8PairsSaturate: boolean;
}

const readCpuinfo = (): string | undefined => {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return undefined;
  }
};

/** Reads /proc/cpuinfo (or the text given) for the first CPU's model name and kernel-picking flags. */
export function cpuFeatures(cpuinfo: string | undefined = readCpuinfo(), cpuArch: string = arch): CpuFeatures {
  const field = (name: string): string => cpuinfo?.match(new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm'))?.[1]?.trim() ?? '';
  const have = new Set(field('flags').split(/\s+/));
  const flags = KERNEL_FLAGS.filter((f) => have.has(f));
  const has = (f: (typeof KERNEL_FLAGS)[number]): boolean => flags.includes(f);
  let int8Kernel: CpuFeatures['int8Kernel'];
  if (cpuArch === 'arm64') int8Kernel = 'arm64';
  else if (cpuArch !== 'x64' && cpuArch !== 'ia32') int8Kernel = 'other';
  else if (has('amx_int8') && has('amx_tile')) int8Kernel = 'amx';
  else if (has('avx512_vnni') || has('avx_vnni')) int8Kernel = 'vnni';
  else if (has('avx512bw')) int8Kernel = 'avx512-vpmaddubsw';
  else if (has('avx2')) int8Kernel = 'avx2-vpmaddubsw';
  else int8Kernel = 'sse';
  return {
    arch: cpuArch,
    model: field('model name') || field('Model') || field('CPU part'),
    flags,
    int8Kernel,
    // SSE-only and unknown kernels are treated as saturating: nothing exact can be promised there.
    int8PairsSaturate: int8Kernel !== 'amx' && int8Kernel !== 'vnni' && int8Kernel !== 'arm64',
  };
}

/** The largest |int8 weight| that no kernel can saturate on: a pair of them times 255 fits an int16. */
export const SAFE_INT8_WEIGHT_MAX = 64;
