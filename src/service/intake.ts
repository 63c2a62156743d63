// Any image or text input to what the towers take, with one set of rules for every route and command:
// counts and sizes against the limits; images fetched when given by URL, then decoded and resized on
// the decode pool (timed); texts cleaned up (ALBEF's pre_caption) and tokenized. Item errors say
// `item N: …` with the item's index.

import { AppError, BadRequestError, PayloadTooLargeError } from '../core/errors.js';
import type { Metrics } from '../core/metrics.js';
import type { DecodePool } from '../imaging/decode-pool.js';
import type { BatchTiming } from '../inference/batcher.js';
import { preCaption } from '../inference/caption.js';
import type { LoadedModel } from '../inference/model-pool.js';
import type { ImageInput } from '../sources/image-value.js';
import type { UrlFetcher } from '../sources/url-fetcher.js';
import type { Config } from './config.js';

export type Limits = Pick<
  Config,
  'maxItems' | 'maxTextChars' | 'maxImageBytes' | 'maxImagePixels' | 'requestTimeoutMs'
>;

/** Where a request's time went (ms), each the longest among its items: for the response headers. */
export interface RequestTiming extends BatchTiming {
  /** Decoding and resizing an image on a worker (images only). */
  decodeMs: number;
}

/** Settles all, then throws the failure of the lowest-index item (so errors are deterministic). */
export async function allOrFirstError<T>(promises: Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}

/**
 * Item errors say `item N: …`; callers that know where the item was in their request say so
 * (`documents[3]: …`, `input[5]: …`, `query: …`), with the index to match (none for the query).
 */
export function relabel(e: unknown, where: (i: number) => { label: string; index?: number }): never {
  const m = e instanceof AppError ? /^item (\d+): /.exec(e.message) : null;
  if (!m) throw e;
  const { label, index } = where(Number(m[1]));
  const err = Object.create(Object.getPrototypeOf(e) as object) as AppError;
  Object.assign(err, e, {
    message: `${label}: ${(e as AppError).message.slice(m[0].length)}`,
    index,
    stack: (e as AppError).stack,
  });
  throw err;
}

/** At least one item, at most maxItems. */
export function checkCount(limits: Limits, n: number, what: string): void {
  if (n === 0) throw new BadRequestError(`no ${what} given`);
  if (n > limits.maxItems)
    throw new PayloadTooLargeError(
      `${n} ${what} in one request; the limit is ${limits.maxItems}`,
      undefined,
      'too_many_items',
    );
}

export class TextIntake {
  constructor(
    readonly limits: Limits,
    private readonly metrics?: Metrics,
  ) {}

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
}

export class ImageIntake {
  constructor(
    readonly limits: Limits,
    private readonly decoder: DecodePool,
    private readonly fetcher: UrlFetcher,
    private readonly metrics?: Metrics,
  ) {}

  /** An image's encoded bytes: inline, or fetched when given by URL; empty or oversized ones refused. */
  async bytes(model: LoadedModel, input: ImageInput, index?: number, signal?: AbortSignal): Promise<Uint8Array> {
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

  /** Encoded image → RGB pixels resized to the model's resolution, on a decode worker. */
  async resizedPixels(
    model: LoadedModel,
    bytes: Uint8Array,
    index?: number,
    signal?: AbortSignal,
    timing?: RequestTiming,
  ): Promise<Uint8Array> {
    const options = { size: model.manifest.preprocessing.image.size, maxPixels: this.limits.maxImagePixels };
    const image = await this.decoder.run(bytes, options, index, signal);
    this.metrics?.stageDuration.observe({ stage: 'decode_wait', model: model.name }, image.waitMs / 1000);
    this.metrics?.stageDuration.observe({ stage: 'decode', model: model.name }, image.decodeMs / 1000);
    if (timing && image.decodeMs > timing.decodeMs) timing.decodeMs = image.decodeMs;
    return image.rgb;
  }

  /** Every input (fetched when given by URL) → resized RGB pixels, all items concurrently. */
  prepare(
    model: LoadedModel,
    inputs: ImageInput[],
    signal?: AbortSignal,
    timing?: RequestTiming,
  ): Promise<Uint8Array[]> {
    return allOrFirstError(
      inputs.map(async (input, index) =>
        this.resizedPixels(model, await this.bytes(model, input, index, signal), index, signal, timing),
      ),
    );
  }
}
