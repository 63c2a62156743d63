// The embedding service without HTTP: texts and images in, vectors out, through the inference layer.
// Routes and the CLI call this; it applies the limits, acquires image bytes (inline or by URL),
// preprocesses off the event loop, and hands whole requests to the micro-batchers.

import type { Config } from './config.js';
import { BadRequestError, PayloadTooLargeError } from '../core/errors.js';
import type { Metrics } from '../core/metrics.js';
import { ClientGoneError, type BatchTiming, type Departure } from '../inference/batcher.js';
import { preCaption } from '../inference/caption.js';
import type { DecodePool } from '../imaging/decode-pool.js';
import type { LoadedModel, ModelPool } from '../inference/model-pool.js';
import type { UrlFetcher } from '../sources/url-fetcher.js';

export type Limits = Pick<
  Config,
  'maxItems' | 'maxTextChars' | 'maxImageBytes' | 'maxImagePixels' | 'requestTimeoutMs'
>;

export type ImageInput = { bytes: Uint8Array } | { url: string };

/** Where a request's time went (ms), each the longest among its items: for the response headers. */
export interface RequestTiming extends BatchTiming {
  /** Decoding and resizing an image on a worker (images only). */
  decodeMs: number;
}

export interface EmbedOptions<S extends Departure = AbortSignal> {
  /** Aborted when the client goes away: queued items are then dropped before inference. */
  signal?: S;
  /** Epoch ms; defaults to now + requestTimeoutMs. */
  deadline?: number;
  /** Filled in as the request's items are decoded and run. */
  timing?: RequestTiming;
}

export interface TextResult {
  vectors: Float32Array[];
  /** Token ids fed to the model, [CLS] included (OpenAI `usage`). */
  tokens: number;
}

/** Settles all, then throws the failure of the lowest-index item (so errors are deterministic). */
export async function allOrFirstError<T>(promises: Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}

export class Embedder {
  constructor(
    readonly pool: ModelPool,
    private readonly images: DecodePool,
    private readonly fetcher: UrlFetcher,
    readonly limits: Limits,
    private readonly metrics?: Metrics,
  ) {}

  model(name?: string): LoadedModel {
    return this.pool.get(name);
  }

  /** At least one item, at most maxItems. */
  checkCount(n: number, what: string): void {
    if (n === 0) throw new BadRequestError(`no ${what} given`);
    if (n > this.limits.maxItems)
      throw new PayloadTooLargeError(
        `${n} ${what} in one request; the limit is ${this.limits.maxItems}`,
        undefined,
        'too_many_items',
      );
  }

  /** Ids as the model sees them: optional pre_caption, then [CLS] + WordPiece, ≤ max_length. */
  tokenize(model: LoadedModel, texts: string[], cleanup: boolean): number[][] {
    const t = this.metrics?.stageDuration.startTimer({ stage: 'tokenize', model: model.name });
    const { max_words, max_length } = model.manifest.preprocessing.text;
    const ids = texts.map((text, i) => {
      if (typeof text !== 'string') throw new BadRequestError(`item ${i}: not a string`, i);
      if (text.length > this.limits.maxTextChars) {
        throw new PayloadTooLargeError(
          `item ${i}: text of ${text.length} characters; the limit is ${this.limits.maxTextChars}`,
          i,
          'text_too_long',
        );
      }
      return model.tokenizer.encode(cleanup ? preCaption(text, max_words) : text, max_length).ids;
    });
    t?.();
    return ids;
  }

  async embedTexts(
    model: LoadedModel,
    texts: string[],
    cleanup: boolean,
    options: EmbedOptions<Departure> = {},
  ): Promise<TextResult> {
    this.checkCount(texts.length, 'texts');
    const ids = this.tokenize(model, texts, cleanup);
    const deadline = options.deadline ?? Date.now() + this.limits.requestTimeoutMs;
    const vectors = await allOrFirstError(
      model.textBatcher.submitAll(ids, { deadline, signal: options.signal, timing: options.timing }),
    );
    this.metrics?.items.inc({ model: model.name, modality: 'text' }, texts.length);
    return { vectors, tokens: ids.reduce((n, r) => n + r.length, 0) };
  }

  /** An image's encoded bytes: inline, or fetched when given by URL; empty or oversized ones refused. */
  async imageBytes(model: LoadedModel, input: ImageInput, index?: number, signal?: AbortSignal): Promise<Uint8Array> {
    let bytes: Uint8Array;
    if ('url' in input) {
      const t = this.metrics?.stageDuration.startTimer({ stage: 'fetch', model: model.name });
      bytes = await this.fetcher.fetch(input.url, index ?? 0, signal);
      t?.();
    } else bytes = input.bytes;
    const at = index === undefined ? '' : `item ${index}: `;
    if (bytes.length === 0) throw new BadRequestError(`${at}empty image`, index, 'empty_image');
    if (bytes.length > this.limits.maxImageBytes) {
      throw new PayloadTooLargeError(
        `${at}image of ${bytes.length} bytes; the limit is ${this.limits.maxImageBytes}`,
        index,
        'image_too_large',
      );
    }
    return bytes;
  }

  /** Encoded image → resized RGB pixels at the model's resolution, on a decode worker. */
  async decodeImage(
    model: LoadedModel,
    bytes: Uint8Array,
    index?: number,
    signal?: AbortSignal,
    timing?: RequestTiming,
  ): Promise<Uint8Array> {
    const options = { size: model.manifest.preprocessing.image.size, maxPixels: this.limits.maxImagePixels };
    const image = await this.images.run(bytes, options, index, signal);
    this.metrics?.stageDuration.observe({ stage: 'decode_wait', model: model.name }, image.waitMs / 1000);
    this.metrics?.stageDuration.observe({ stage: 'decode', model: model.name }, image.decodeMs / 1000);
    if (timing && image.decodeMs > timing.decodeMs) timing.decodeMs = image.decodeMs;
    return image.rgb;
  }

  /** Image bytes (fetched when given by URL) → resized RGB pixels, all items concurrently. */
  private async prepareImages(
    model: LoadedModel,
    inputs: ImageInput[],
    signal?: AbortSignal,
    timing?: RequestTiming,
  ): Promise<Uint8Array[]> {
    return allOrFirstError(
      inputs.map(async (input, index) =>
        this.decodeImage(model, await this.imageBytes(model, input, index, signal), index, signal, timing),
      ),
    );
  }

  async embedImages(model: LoadedModel, inputs: ImageInput[], options: EmbedOptions = {}): Promise<Float32Array[]> {
    this.checkCount(inputs.length, 'images');
    const deadline = options.deadline ?? Date.now() + this.limits.requestTimeoutMs;
    // Admission before decoding: a full pipeline refuses at once (503) instead of after the work.
    const places = model.imageBatcher.reserve(inputs.length, {
      deadline,
      signal: options.signal,
      timing: options.timing,
    });
    let pixels: Uint8Array[];
    try {
      pixels = await this.prepareImages(model, inputs, options.signal, options.timing);
    } catch (e) {
      places.release();
      if (!options.signal?.aborted) throw e;
      // The client left while its images were being fetched or decoded: nothing reaches the model.
      this.metrics?.rejected.inc({ model: model.name, tower: 'image', reason: 'client_gone' }, inputs.length);
      throw new ClientGoneError();
    }
    const vectors = await allOrFirstError(places.enqueue(pixels));
    this.metrics?.items.inc({ model: model.name, modality: 'image' }, inputs.length);
    return vectors;
  }
}
