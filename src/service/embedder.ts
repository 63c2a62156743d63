// Embeddings without HTTP: texts and images in, vectors out. Routes and commands call this; the intake
// turns the inputs into what the towers take, and whole requests go to the model's micro-batchers.

import { AppError, ClientGoneError } from '../core/errors.js';
import type { Metrics } from '../core/metrics.js';
import type { Departure } from '../inference/batcher.js';
import type { LoadedModel, ModelPool } from '../inference/model-pool.js';
import type { ImageInput } from '../sources/image-value.js';
import {
  allOrFirstError,
  checkCount,
  type ImageIntake,
  type Limits,
  type RequestTiming,
  type TextIntake,
} from './intake.js';

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

/**
 * Runs a batch; when it fails, runs its items one by one, so that one bad item fails alone: a vector
 * or the item's error for each (the indexing commands keep going past bad files).
 */
export async function embedEachOrError<T>(
  batch: T[],
  run: (items: T[]) => Promise<Float32Array[]>,
): Promise<(Float32Array | AppError)[]> {
  try {
    return await run(batch);
  } catch (e) {
    if (batch.length === 1) return [e instanceof AppError ? e : new AppError('embedding_failed', (e as Error).message)];
    return (await Promise.all(batch.map((b) => embedEachOrError([b], run)))).flat();
  }
}

export class Embedder {
  constructor(
    readonly pool: ModelPool,
    private readonly texts: TextIntake,
    private readonly images: ImageIntake,
    private readonly metrics?: Metrics,
  ) {}

  get limits(): Limits {
    return this.texts.limits;
  }

  model(name?: string): LoadedModel {
    return this.pool.get(name);
  }

  async embedTexts(
    model: LoadedModel,
    texts: string[],
    cleanup: boolean,
    options: EmbedOptions<Departure> = {},
  ): Promise<TextResult> {
    checkCount(this.limits, texts.length, 'texts');
    const ids = this.texts.tokenize(model, texts, cleanup);
    const deadline = options.deadline ?? Date.now() + this.limits.requestTimeoutMs;
    const vectors = await allOrFirstError(
      model.textBatcher.submitAll(ids, { deadline, signal: options.signal, timing: options.timing }),
    );
    this.metrics?.items.inc({ model: model.name, modality: 'text' }, texts.length);
    return { vectors, tokens: ids.reduce((n, r) => n + r.length, 0) };
  }

  async embedImages(model: LoadedModel, inputs: ImageInput[], options: EmbedOptions = {}): Promise<Float32Array[]> {
    checkCount(this.limits, inputs.length, 'images');
    const deadline = options.deadline ?? Date.now() + this.limits.requestTimeoutMs;
    // Admission before decoding: a full pipeline refuses at once (503) instead of after the work.
    const places = model.imageBatcher.reserve(inputs.length, {
      deadline,
      signal: options.signal,
      timing: options.timing,
    });
    let pixels: Uint8Array[];
    try {
      pixels = await this.images.prepare(model, inputs, options.signal, options.timing);
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
