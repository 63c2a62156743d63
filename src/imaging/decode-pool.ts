// Runs image decode + PIL-exact resize on worker threads (decode-thread-entry.ts), one image per
// thread at a time and each start cleared by the decode gate, so that neither the decode nor the
// JavaScript resampler ever blocks the event loop. Failures become the typed errors of their status.

import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { usableCpus } from '../core/cpus.js';
import { PayloadTooLargeError, UndecodableImageError, UnsupportedMediaError } from '../core/errors.js';
import type { PreprocessOptions, PreprocessResult } from './decoded.js';
import type { DecodeGate } from './decode-gate.js';

// The worker has this module's extension: .ts under the test runner, .js when built.
const WORKER = new URL(`./decode-thread-entry${extname(fileURLToPath(import.meta.url))}`, import.meta.url).href;

export interface DecodedImage {
  /** size × size × 3 interleaved RGB, resized */
  rgb: Uint8Array;
  width: number;
  height: number;
  format: string;
  /** ms spent waiting for a worker and for running inferences to end, then decoding */
  waitMs: number;
  decodeMs: number;
}

export class DecodePool {
  private readonly pool: Piscina;
  /** Decodes started (at most one per worker: the gate is consulted when a worker is free). */
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    readonly threads = usableCpus(),
    private readonly gate?: DecodeGate,
  ) {
    this.pool = new Piscina({
      filename: WORKER,
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: Number.POSITIVE_INFINITY,
    });
  }

  /** Decodes and preprocesses one image; `index` is the item's position, for error messages. */
  async run(
    bytes: Uint8Array,
    options: PreprocessOptions,
    index?: number,
    signal?: AbortSignal,
  ): Promise<DecodedImage> {
    const queued = performance.now();
    await this.acquire(signal);
    let result: PreprocessResult;
    let started: number;
    try {
      await this.gate?.clear();
      signal?.throwIfAborted();
      started = performance.now();
      result = (await this.pool.run({ bytes, options }, { signal })) as PreprocessResult;
    } finally {
      this.release();
    }
    if (result.ok) return { ...result, waitMs: started - queued, decodeMs: performance.now() - started };
    const at = index === undefined ? '' : `item ${index}: `;
    if (result.status === 413) throw new PayloadTooLargeError(at + result.message, index, 'image_too_large');
    if (result.status === 415) throw new UnsupportedMediaError(at + result.message, index);
    throw new UndecodableImageError(at + result.message, index);
  }

  /**
   * Decodes and resizes a made-up photo on every thread, a few times: the first images a thread sees
   * otherwise pay for libvips' first use and for the resampler's baseline (unoptimised) code.
   */
  async warmup(size: number): Promise<void> {
    await Promise.all(
      Array.from({ length: this.threads }, () => this.pool.run({ warmup: true, options: { size, maxPixels: 0 } })),
    );
  }

  private acquire(signal?: AbortSignal): Promise<void> {
    if (this.active < this.threads) {
      this.active++;
      return Promise.resolve();
    }
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.waiting.indexOf(go);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal!.reason as Error);
      };
      const go = (): void => {
        signal?.removeEventListener('abort', onAbort);
        this.active++;
        resolve();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(go);
    });
  }

  private release(): void {
    this.active--;
    this.waiting.shift()?.();
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
