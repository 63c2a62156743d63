// Reference data from ../shared/reference (copied into test/fixtures), and the tolerance checks of
// its README: token ids identical; text/tensor embeddings cosine ≥ 0.99999 and max |Δ| ≤ 1e-4;
// image-file embeddings cosine ≥ 0.9999; pixel_mean within 0.002.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../src/core/paths.js';

// From the package root, so that the built copy (build/kit, used by bench/gpu.ts) finds them too.
export const FIXTURES = join(PACKAGE_ROOT, 'test', 'fixtures');
export const TINY_DIR = join(FIXTURES, 'albef-tiny-a');
export const IMAGES_DIR = join(FIXTURES, 'images');
export const DECODE_DIR = join(FIXTURES, 'decode');
export const TINY_CHECKPOINT = join(TINY_DIR, 'checkpoint.pth');
export const TINY_FINETUNED = join(TINY_DIR, 'checkpoint-finetuned.pth');
export const TINY_ARCH = join(TINY_DIR, 'arch.json');

export interface GoldenText {
  text: string;
  pre_caption: { input: string; ids: number[]; embedding: number[] };
  raw: { input: string; ids: number[]; embedding: number[] };
}
export interface GoldenImage {
  file: string;
  embedding: number[];
  pixel_mean: number[];
}
export interface Golden {
  config: { architecture: { image_res: number; embed_dim: number } };
  texts: GoldenText[];
  images: GoldenImage[];
  tensor_check: { input_file: string; shape: number[]; embedding: number[] };
}

export const golden = JSON.parse(readFileSync(join(TINY_DIR, 'golden.json'), 'utf8')) as Golden;

export function tensorInput(): Float32Array {
  const buf = readFileSync(join(TINY_DIR, golden.tensor_check.input_file));
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(na * nb);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export const TOL = { textCos: 0.99999, textMaxAbs: 1e-4, imageCos: 0.9999, pixelMean: 0.002 };

/** itm_golden.json: ITM logits/probabilities, ITC and zero-shot of the official modules (reference README). */
export interface ItmGolden {
  temp: number;
  temp_clamped: number;
  texts: string[];
  ids: number[][];
  /** Golden image files, then tensor_input.f32 (no decoding) last. */
  images: string[];
  pairs: { itc: number; itm_logits: [number, number]; itm_prob: number }[][];
  zero_shot: number[][];
}

export const itmGolden = JSON.parse(readFileSync(join(TINY_DIR, 'itm_golden.json'), 'utf8')) as ItmGolden;

/** fp32 tolerances of the reference README for itm_golden.json. */
export const ITM_TOL = { logitsTensor: 1e-4, logitsFile: 1e-3, prob: 1e-4, itc: 1e-4, zeroShot: 1e-4 };
