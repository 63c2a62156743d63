// `albef-embed synth`: a model of an exact ALBEF shape with seeded random weights, for benchmarks and
// tests where the real weights cannot be had. Weights follow BERT/ViT initialisation scales
// (normal, std 0.02; LayerNorm weight 1 ± noise) so activations look like a trained network's.

import type { ModelManifest } from '../core/model-manifest.js';
import { AlbefWeights, albefTensorShapes, fusionTensorShapes, type TensorSource } from './albef-weights.js';
import type { Arch } from './arch.js';
import type { Precision } from './graph-layers.js';
import { writeModelDir } from './model-writer.js';
import { numel } from './tensor-data.js';

/** mulberry32: a tiny, fast, seedable PRNG (quality is ample for synthetic weights). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hashKey(key: string, seed: number): number {
  let h = seed ^ 0x9e3779b9;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export class SyntheticSource implements TensorSource {
  readonly label = 'synthetic';
  private readonly shapes: Map<string, number[]>;

  constructor(
    arch: Arch,
    readonly seed = 1,
  ) {
    const grid = arch.checkpoint_image_res / arch.vision.patch;
    this.shapes = new Map([
      ...albefTensorShapes(arch, 'pretrain', arch.vision.mlp, grid),
      ...fusionTensorShapes(arch, 'pretrain'),
      ['temp', []],
    ]);
  }

  shape(key: string): number[] | undefined {
    return this.shapes.get(key);
  }

  async read(key: string): Promise<Float32Array> {
    const shape = this.shapes.get(key);
    if (!shape) throw new Error(`synthetic source has no tensor ${key}`);
    if (key === 'temp') return new Float32Array([0.07]); // ALBEF's initial temperature
    const next = mulberry32(hashKey(key, this.seed));
    const out = new Float32Array(numel(shape));
    const isNormWeight = /(norm\d?|LayerNorm)\.weight$/.test(key);
    const isBias = key.endsWith('.bias');
    for (let i = 0; i < out.length; i++) {
      // Box–Muller normal sample
      const n = Math.sqrt(-2 * Math.log(next() || 1e-12)) * Math.cos(2 * Math.PI * next());
      out[i] = isNormWeight ? 1 + 0.02 * n : isBias ? 0.01 * n : 0.02 * n;
    }
    return out;
  }
}

export interface SynthOptions {
  arch: Arch;
  out: string;
  name: string;
  precision?: Precision;
  seed?: number;
  force?: boolean;
  log?: (message: string) => void;
}

export async function synthesizeModel(options: SynthOptions): Promise<ModelManifest> {
  const seed = options.seed ?? 1;
  const weights = new AlbefWeights(new SyntheticSource(options.arch, seed), options.arch);
  return writeModelDir(weights, {
    out: options.out,
    name: options.name,
    precision: options.precision ?? 'fp32',
    source: { synthetic: true, seed },
    force: options.force,
    log: options.log,
  });
}
