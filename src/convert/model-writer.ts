// Writes a model directory (model.json, image.onnx, text.onnx, vocab.txt, and for image–text matching
// image_states.onnx, text_states.onnx, fusion.onnx) atomically: everything goes
// into a hidden sibling directory that is renamed into place only when complete, so a failed or
// interrupted conversion never leaves a half-written model where the service would load it.

import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { SAFE_INT8_WEIGHT_MAX } from '../core/cpu-features.js';
import { AppError } from '../core/errors.js';
import { pathExists } from '../core/fs-utils.js';
import { FUSION_GRAPHS, IMAGE_MEAN, IMAGE_STD, MANIFEST_FORMAT, type ModelManifest } from '../core/model-manifest.js';
import type { AlbefWeights } from './albef-weights.js';
import type { Arch } from './arch.js';
import type { Precision } from './graph-layers.js';
import { buildFusionGraph } from './fusion-graph.js';
import type { GraphBuilder } from './onnx-builder.js';
import { writeOnnx, type StoredTensors } from './onnx-writer.js';
import { buildTextGraph } from './text-graph.js';
import { readBundledVocab } from './vocab.js';
import { buildVisionGraph } from './vision-graph.js';

export const CONVERTER_VERSION = '1.2.0';

export interface WriteModelOptions {
  out: string;
  name: string;
  precision: Precision;
  source: ModelManifest['source'];
  force?: boolean;
  log?: (message: string) => void;
}

/** Refuses a model directory that is there without `force` (before any long work); true when it is there. */
export async function refuseExisting(out: string, force: boolean | undefined): Promise<boolean> {
  const exists = await pathExists(out);
  if (exists && !force)
    throw new AppError('already_exists', `${resolve(out)} already exists (use --force to replace it)`);
  return exists;
}

export async function writeModelDir(weights: AlbefWeights, options: WriteModelOptions): Promise<ModelManifest> {
  if (endianness() !== 'LE')
    throw new Error('albef-embed convert needs a little-endian host (ONNX raw tensors are little-endian)');
  const out = resolve(options.out);
  const log = options.log ?? (() => undefined);
  const exists = await refuseExisting(out, options.force);
  await mkdir(dirname(out), { recursive: true });
  const tmp = join(dirname(out), `.${basename(out)}.tmp-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp);
  try {
    const files: ModelManifest['files'] = {};
    const write = async (
      file: string,
      graph: GraphBuilder,
      what: string,
      shareFrom?: StoredTensors,
    ): Promise<StoredTensors> => {
      const started = Date.now();
      const r = await writeOnnx(join(tmp, file), graph, `ALBEF ${what} (${options.name})`, { shareFrom });
      files[file] = r.model;
      if (r.dataFile) files[r.dataFile] = r.data!;
      log(
        `${file}: ${((r.model.bytes + (r.data?.bytes ?? 0)) / 1e6).toFixed(1)} MB in ${((Date.now() - started) / 1000).toFixed(1)} s${shareFrom ? ' (weights shared)' : ''}`,
      );
      return r.tensors;
    };
    const image = await write('image.onnx', buildVisionGraph(weights, options.precision), 'image tower');
    const text = await write('text.onnx', buildTextGraph(weights, options.precision), 'text tower');
    let fusion: ModelManifest['fusion'];
    if (weights.hasFusion) {
      // The per-token graphs point into the towers' data files: no second copy of those weights on disk.
      await write(
        FUSION_GRAPHS.image_states,
        buildVisionGraph(weights, options.precision, { states: true }),
        'image tower, every token',
        image,
      );
      await write(
        FUSION_GRAPHS.text_states,
        buildTextGraph(weights, options.precision, { states: true }),
        'text tower, every token',
        text,
      );
      await write(FUSION_GRAPHS.fusion, buildFusionGraph(weights, options.precision), 'fusion layers and ITM head');
      const temp = await weights.temp();
      fusion = { ...(temp === undefined ? {} : { temp }), graphs: { ...FUSION_GRAPHS } };
    } else {
      log('no fusion layers in this checkpoint: embeddings only (no /v1/rerank, /classify)');
    }
    const vocab = await readBundledVocab();
    await writeFile(join(tmp, 'vocab.txt'), vocab);
    files['vocab.txt'] = { bytes: vocab.length, sha256: createHash('sha256').update(vocab).digest('hex') };

    const manifest = buildManifest(weights.arch, weights, options, files, fusion);
    await writeFile(join(tmp, 'model.json'), JSON.stringify(manifest, null, 2) + '\n');
    if (exists) {
      const old = `${tmp}.old`;
      await rename(out, old);
      await rename(tmp, out);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(tmp, out);
    }
    return manifest;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

function buildManifest(
  arch: Arch,
  weights: AlbefWeights,
  options: WriteModelOptions,
  files: ModelManifest['files'],
  fusion: ModelManifest['fusion'],
): ModelManifest {
  return {
    format: MANIFEST_FORMAT,
    name: options.name,
    converter_version: CONVERTER_VERSION,
    created: new Date().toISOString(),
    precision: options.precision,
    embed_dim: arch.embed_dim,
    image_res: arch.image_res,
    architecture: {
      ...arch,
      layout: weights.layout,
      vision: { ...arch.vision, mlp: weights.visionMlp },
      checkpoint_image_res: weights.checkpointImageRes,
    },
    preprocessing: {
      image: { size: arch.image_res, resample: 'pil-bicubic', mean: [...IMAGE_MEAN], std: [...IMAGE_STD] },
      text: {
        caption_cleanup_default: true,
        max_words: arch.max_words,
        max_length: arch.max_length,
        cls_token_id: 101,
        pad_token_id: 0,
        add_sep: false,
        lowercase: true,
      },
    },
    ...(options.precision === 'int8'
      ? { quantization: { scheme: 'symmetric-per-output-channel' as const, weight_max: SAFE_INT8_WEIGHT_MAX } }
      : {}),
    ...(fusion ? { fusion } : {}),
    source: options.source,
    files,
  };
}
