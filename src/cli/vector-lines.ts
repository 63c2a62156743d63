// The JSON lines files of offline indexing (`embed --out`, `merge`): one vector a line,
// {"id", "model", "modality", "tower_sha256", "embedding"}. Each line says which vectors it holds
// (rather than a header line, which `cat`, `head`, `split`, pandas and vector-database importers
// would take for a record) so that a resumed run or a merge refuses to mix image with text vectors,
// or vectors of two models, naming both. Lines of older files, without those fields, stay readable;
// they are counted and cannot be checked.

import { appendFile, readFile, truncate } from 'node:fs/promises';
import { AppError } from '../core/errors.js';
import type { ModelManifest } from '../core/model-manifest.js';

export type Modality = 'image' | 'text';

/** Which vectors a line holds: the model's name, the tower, and the sha256 of the tower's weights file. */
export interface VectorsIdentity {
  model: string;
  modality: Modality;
  /** sha256 of `<modality>.onnx.data` as model.json lists it (of `<modality>.onnx` where the weights are inside it) */
  tower_sha256: string;
}

export interface VectorLine extends Partial<VectorsIdentity> {
  id: string;
  embedding: number[];
}

/** The identity of the vectors a model's tower makes, from its model.json (no hashing of gigabytes). */
export function identityOf(manifest: ModelManifest, modality: Modality): VectorsIdentity {
  const files = manifest.files;
  const tower = files[`${modality}.onnx.data`] ?? files[`${modality}.onnx`];
  return { model: manifest.name, modality, tower_sha256: tower?.sha256 ?? 'unknown' };
}

/** The line for one vector: identity first, so that the start of a line says what it holds. */
export const vectorLine = (id: string, identity: VectorsIdentity, embedding: ArrayLike<number>): string =>
  JSON.stringify({ id, ...identity, embedding: Array.from(embedding) });

/** The identity a line carries, or undefined for a line of an older file. */
export function lineIdentity(row: Partial<VectorsIdentity>): VectorsIdentity | undefined {
  if (typeof row.model !== 'string' || (row.modality !== 'image' && row.modality !== 'text')) return undefined;
  return { model: row.model, modality: row.modality, tower_sha256: String(row.tower_sha256 ?? 'unknown') };
}

export const sameVectors = (a: VectorsIdentity, b: VectorsIdentity): boolean =>
  a.model === b.model && a.modality === b.modality && a.tower_sha256 === b.tower_sha256;

/** "image vectors of tiny (image tower weights sha256 5bfc0e86…)". */
export const describeVectors = (i: VectorsIdentity): string =>
  `${i.modality} vectors of ${i.model} (${i.modality} tower weights sha256 ${i.tower_sha256.slice(0, 12)}…)`;

export interface ExistingOutput {
  ids: Set<string>;
  /** lines without model and modality (written by an older albef-embed) */
  unchecked: number;
}

/**
 * What an output file to resume already holds: its ids, checked against the vectors this run makes
 * (refused, naming both, when they differ). A torn last line (an interrupted run) is cut off so that
 * appending keeps the file whole JSON lines.
 */
export async function existingOutput(out: string, identity: VectorsIdentity): Promise<ExistingOutput> {
  const ids = new Set<string>();
  let unchecked = 0;
  const text = await readFile(out, 'utf8').catch(() => '');
  if (!text) return { ids, unchecked };
  let good = 0;
  let n = 0;
  for (const line of text.split('\n')) {
    n++;
    if (!line) {
      good += 1;
      continue;
    }
    let row: Partial<VectorLine>;
    try {
      row = JSON.parse(line) as Partial<VectorLine>;
    } catch {
      break;
    }
    const theirs = lineIdentity(row);
    if (!theirs) unchecked++;
    else if (!sameVectors(theirs, identity)) {
      throw new AppError(
        'mixed_vectors',
        `${out} holds ${describeVectors(theirs)} (line ${n}), and this run makes ${describeVectors(identity)}: give this run another --out`,
      );
    }
    ids.add(String(row.id));
    good += Buffer.byteLength(line) + 1;
  }
  const bytes = Buffer.byteLength(text);
  if (good < bytes) await truncate(out, good);
  else if (good > bytes) await appendFile(out, '\n'); // a whole last line that lost its newline
  return { ids, unchecked };
}
