// Runs image decode + PIL-exact resize + normalisation on worker threads, so that neither the
// decode nor the pure-JS resampler ever blocks the event loop.

import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { PayloadTooLargeError, UndecodableImageError, UnsupportedMediaError } from '../errors.js';
import type { PreprocessOptions, PreprocessResult } from './image.js';

// The worker has this module's extension: .ts under the test runner, .js when built.
const WORKER = new URL(`./image-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url).href;

export interface PreprocessedImage {
  pixels: Float32Array;
  width: number;
  height: number;
  format: string;
}

export class ImagePreprocessor {
  private readonly pool: Piscina;

  constructor(threads = Math.max(1, availableParallelism() - 1)) {
    this.pool = new Piscina({ filename: WORKER, minThreads: threads, maxThreads: threads, idleTimeout: Number.POSITIVE_INFINITY });
  }

  get threads(): number {
    return this.pool.threads.length;
  }

  get queued(): number {
    return this.pool.queueSize;
  }

  /** Decodes and preprocesses one image; `index` is the item's position, for error messages. */
  async run(bytes: Uint8Array, options: PreprocessOptions, index?: number, signal?: AbortSignal): Promise<PreprocessedImage> {
    const result = (await this.pool.run({ bytes, options }, { signal })) as PreprocessResult;
    if (result.ok) return result;
    const at = index === undefined ? '' : `item ${index}: `;
    if (result.status === 413) throw new PayloadTooLargeError(at + result.message, index, 'image_too_large');
    if (result.status === 415) throw new UnsupportedMediaError(at + result.message, index);
    throw new UndecodableImageError(at + result.message, index);
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
