// `albef-embed convert`: an official (or arch.json-described) ALBEF checkpoint → a model directory.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { ModelManifest } from '../core/model-manifest.js';
import { AlbefWeights, type TensorSource } from './albef-weights.js';
import { isPreset, parseArchJson, PRESETS, resolveArch, type Arch, type PresetName } from './arch.js';
import { Checkpoint } from './checkpoint.js';
import type { Precision } from './graph-layers.js';
import { refuseExisting, writeModelDir } from './model-writer.js';

export interface ConvertOptions {
  checkpoint: string;
  out: string;
  preset?: PresetName;
  archFile?: string;
  imageRes?: number;
  precision?: Precision;
  name?: string;
  force?: boolean;
  log?: (message: string) => void;
}

export async function loadArch(options: { preset?: string; archFile?: string; imageRes?: number }): Promise<Arch> {
  if (options.preset && options.archFile) throw new Error('give either --preset or --arch, not both');
  if (options.archFile) {
    const text = await readFile(options.archFile, 'utf8');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new Error(`${options.archFile}: not valid JSON (${(e as Error).message})`);
    }
    return resolveArch(parseArchJson(json, options.archFile), options);
  }
  const preset = options.preset ?? 'albef_4m';
  if (!isPreset(preset))
    throw new Error(`unknown preset ${JSON.stringify(preset)} (known: ${Object.keys(PRESETS).join(', ')})`);
  return resolveArch(PRESETS[preset], options);
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export function checkpointSource(ckpt: Checkpoint): TensorSource {
  return { label: basename(ckpt.path), shape: (k) => ckpt.tensors.get(k)?.shape, read: (k) => ckpt.read(k) };
}

export async function convertCheckpoint(options: ConvertOptions): Promise<ModelManifest> {
  // Said before the checkpoint (gigabytes, hashed whole) is read, not after.
  await refuseExisting(options.out, options.force);
  const arch = await loadArch(options);
  const ckpt = await Checkpoint.open(options.checkpoint);
  try {
    const weights = new AlbefWeights(checkpointSource(ckpt), arch);
    options.log?.(
      `${basename(options.checkpoint)}: ${ckpt.format} checkpoint, ${weights.layout} layout, ${ckpt.tensors.size} tensors, ` +
        `pos_embed at ${weights.checkpointImageRes}px → serving at ${arch.image_res}px`,
    );
    const [sha256, { size }] = await Promise.all([sha256File(options.checkpoint), stat(options.checkpoint)]);
    return await writeModelDir(weights, {
      out: options.out,
      name: options.name ?? options.preset ?? basename(options.checkpoint).replace(/\.(pth|pt|bin|ckpt)$/i, ''),
      precision: options.precision ?? 'fp32',
      source: { file: basename(options.checkpoint), bytes: size, sha256 },
      force: options.force,
      log: options.log,
    });
  } finally {
    await ckpt.close();
  }
}
