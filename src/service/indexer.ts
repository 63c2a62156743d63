// Adding items to a collection: each batch through its tower, then into the store. Ids already stored
// are skipped (a rerun resumes; many processes may add to one collection at once, the store keeps
// every id once). An item that fails (an undecodable file, an unreachable URL) is reported and the
// rest indexed: a failing batch is retried item by item to find it.

import { readFile } from 'node:fs/promises';
import { AppError } from '../core/errors.js';
import { towerFingerprint } from '../core/model-manifest.js';
import type { LoadedModel } from '../inference/model-pool.js';
import type { CollectionInfo, CollectionStore, Modality, StoredItem } from '../retrieval/store.js';
import type { ImageInput } from '../sources/image-value.js';
import type { Annotations } from '../retrieval/annotations.js';
import { embedEachOrError, type Embedder } from './embedder.js';

/** An item to index: what the tower reads (`file`, `url` or `text`), and what the store keeps. */
export interface IndexItem {
  id: string;
  /** Image: the path relative to the collection's root, or the URL. Text: the text. */
  source: string;
  metadata?: Record<string, unknown>;
  /** Image items: the file to read (absolute), or nothing when `source` is a URL. */
  file?: string;
}

/** Items per batch unless told otherwise: the image tower's queue; whole text batches of 64, four per store write. */
export const DEFAULT_BATCH: Readonly<Record<Modality, number>> = { image: 16, text: 256 };

export interface IndexFailure {
  id: string;
  code: string;
  message: string;
}

export interface IndexProgress {
  done: number;
  total: number;
  added: number;
  failed: number;
}

export interface IndexResult {
  added: number;
  /** Already in the collection before this run. */
  skipped: number;
  failed: IndexFailure[];
}

export interface IndexOptions {
  collection: string;
  modality: Modality;
  /** Image collections: the folder `source` paths are relative to (absolute). */
  root?: string;
  /** Items per tower batch and store write (the CLI's default: 16 images, 256 texts). */
  batch: number;
  /** Texts: ALBEF's pre_caption clean-up (on by default everywhere). */
  captionCleanup: boolean;
  onProgress?: (p: IndexProgress) => void;
  /** Checked between batches: an interrupted run stops after its last whole batch. */
  signal?: AbortSignal;
}

/** The collection for these items, made by this model (created when missing; 409 when it is another's). */
export async function collectionFor(
  store: CollectionStore,
  model: LoadedModel,
  o: Pick<IndexOptions, 'collection' | 'modality' | 'root'>,
): Promise<CollectionInfo> {
  return store.create({
    name: o.collection,
    model: model.name,
    modelSha256: towerFingerprint(model.manifest, o.modality),
    modality: o.modality,
    dim: model.dim,
    ...(o.root !== undefined ? { root: o.root } : {}),
  });
}

export async function indexItems(
  embedder: Embedder,
  model: LoadedModel,
  store: CollectionStore,
  items: IndexItem[],
  o: IndexOptions,
): Promise<IndexResult> {
  await collectionFor(store, model, o);
  const present = new Set<string>();
  for (let at = 0; at < items.length; at += 1000) {
    for (const id of await store.present(
      o.collection,
      items.slice(at, at + 1000).map((i) => i.id),
    ))
      present.add(id);
  }
  const todo = items.filter((i) => !present.has(i.id));
  const result: IndexResult = { added: 0, skipped: items.length - todo.length, failed: [] };
  const report = (done: number): void =>
    o.onProgress?.({ done, total: todo.length, added: result.added, failed: result.failed.length });
  report(0);

  const embedBatch = (batch: IndexItem[]): Promise<(Float32Array | AppError)[]> =>
    embedEachOrError(batch, async (items) =>
      o.modality === 'text'
        ? (
            await embedder.embedTexts(
              model,
              items.map((b) => b.source),
              o.captionCleanup,
            )
          ).vectors
        : embedder.embedImages(model, await Promise.all(items.map(async (b): Promise<ImageInput> => imageInput(b)))),
    );

  // Each batch's write goes on while the next batch runs through its tower (one write in flight,
  // in order): the tower is the ceiling, the store's commit should not add to it.
  let writing: Promise<void> = Promise.resolve();
  for (let at = 0; at < todo.length; at += o.batch) {
    if (o.signal?.aborted) break;
    const batch = todo.slice(at, at + o.batch);
    const vectors = await embedBatch(batch);
    const ok: StoredItem[] = [];
    vectors.forEach((v, j) => {
      const item = batch[j]!;
      if (v instanceof AppError) {
        result.failed.push({ id: item.id, code: v.code, message: v.message.replace(/^item \d+: /, '') });
        return;
      }
      ok.push({ id: item.id, source: item.source, vector: v, ...(item.metadata ? { metadata: item.metadata } : {}) });
    });
    await writing;
    const done = Math.min(at + o.batch, todo.length);
    writing = (async () => {
      if (ok.length) result.added += (await store.add(o.collection, ok)).added;
      report(done);
    })();
    // Awaited before the next write or at the end: a failed write is this call's error then, not an
    // unhandled rejection that ends the process while the next batch runs.
    writing.catch(() => undefined);
  }
  await writing;
  o.signal?.throwIfAborted();
  return result;
}

/** An image item's bytes from its file, or its URL (fetched through the SSRF guard). */
async function imageInput(item: IndexItem): Promise<ImageInput> {
  if (!item.file) return { url: item.source };
  try {
    return { bytes: await readFile(item.file) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new AppError(
      'source_unavailable',
      `cannot read ${item.file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a folder, not a file' : (e as Error).message}`,
    );
  }
}

/**
 * ALBEF's annotation format as two collections' items: the images (id and source: the path as the
 * file gives it; metadata.captions: the image's captions) and the captions (id: the caption's
 * position in the file, as re_eval_dataset numbers them; source: the caption as written;
 * metadata.image: its image's path).
 */
export function annotationItems(a: Annotations, imageFiles: string[]): { images: IndexItem[]; texts: IndexItem[] } {
  return {
    images: a.images.map((path, i) => ({
      id: path,
      source: path,
      file: imageFiles[i]!,
      metadata: { captions: a.img2txt[i]!.map((t) => a.rawTexts[t]!) },
    })),
    texts: a.rawTexts.map((text, t) => ({
      id: String(t),
      source: text,
      metadata: { image: a.images[a.txt2img[t]!]! },
    })),
  };
}
