// Reads and checks a model directory written by `albef-embed convert` / `synth`.

import { access, readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ModelDirError, NoModelsError } from '../core/errors.js';
import { pathExists } from '../core/fs-utils.js';
import { checkManifest, type ModelManifest } from '../core/model-manifest.js';

export interface ModelFiles {
  dir: string;
  manifest: ModelManifest;
  imagePath: string;
  textPath: string;
  vocabText: string;
  /** The image–text matching graphs, for model directories that have them. */
  fusion?: { imageStates: string; textStates: string; fusion: string };
}

export async function readModelDir(dirArg: string): Promise<ModelFiles> {
  const dir = resolve(dirArg);
  const manifestPath = join(dir, 'model.json');
  let manifest: unknown;
  try {
    manifest = JSON.parse(await readFile(manifestPath, 'utf8'));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new ModelDirError(
      err.code === 'ENOENT' ? `${dir} is not a model directory (no model.json)` : `${manifestPath}: ${err.message}`,
    );
  }
  const problems = checkManifest(manifest);
  if (problems.length) throw new ModelDirError(`${manifestPath} is not a valid model manifest: ${problems.join('; ')}`);
  const m = manifest as ModelManifest;
  const imagePath = join(dir, 'image.onnx');
  const textPath = join(dir, 'text.onnx');
  for (const p of [...Object.keys(m.files).map((f) => join(dir, f)), imagePath, textPath, join(dir, 'vocab.txt')]) {
    await access(p).catch(() => {
      throw new ModelDirError(`${dir}: ${p.slice(dir.length + 1)} is missing`);
    });
  }
  const graphs = m.fusion?.graphs;
  const fusion = graphs && {
    imageStates: join(dir, graphs.image_states),
    textStates: join(dir, graphs.text_states),
    fusion: join(dir, graphs.fusion),
  };
  for (const p of fusion ? Object.values(fusion) : []) {
    await access(p).catch(() => {
      throw new ModelDirError(`${dir}: ${p.slice(dir.length + 1)} is missing`);
    });
  }
  return {
    dir,
    manifest: m,
    imagePath,
    textPath,
    vocabText: await readFile(join(dir, 'vocab.txt'), 'utf8'),
    ...(fusion ? { fusion } : {}),
  };
}

/** Each path is a model directory (has model.json) or a directory of them (its subdirectories, sorted). */
export async function findModelDirs(paths: string[]): Promise<string[]> {
  const found: string[] = [];
  for (const p of paths) {
    const dir = resolve(p);
    if (await pathExists(join(dir, 'model.json'))) {
      found.push(dir);
      continue;
    }
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries
      .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
      .sort((a, b) => a.name.localeCompare(b.name))) {
      if (await pathExists(join(dir, e.name, 'model.json'))) found.push(join(dir, e.name));
    }
  }
  if (found.length === 0) throw new NoModelsError(paths);
  return found;
}
