// The loaded models: for each, its manifest, tokenizer, one ONNX Runtime session per tower and one
// micro-batcher per tower that feeds it.

import { ModelNotFoundError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import type { ModelManifest } from '../model-manifest.js';
import { MicroBatcher } from './batcher.js';
import type { InferenceGate } from './inference-gate.js';
import { readModelDir } from './model-dir.js';
import { Session, type ProviderChoice, type WireTensor } from './sessions.js';
import { WordPieceTokenizer } from './tokenizer.js';

export interface PoolOptions {
  provider: ProviderChoice;
  intraOpThreads: number;
  maxBatchImages: number;
  maxBatchTexts: number;
  batchWaitMs: number;
  batchFillWaitMs?: number;
  batchSettleMs?: number;
  /** Told about every inference on the CPU, so that image decodes can keep out of its way. */
  gate?: InferenceGate;
  maxQueueImages: number;
  maxQueueTexts: number;
  metrics?: Metrics;
}

export interface ModelInfo {
  name: string;
  dim: number;
  image_res: number;
  precision: string;
  provider: { image: string; text: string };
  max_length: number;
  source: ModelManifest['source'];
}

/** Splits a [batch, dim] output into one Float32Array per item. */
function rows(t: WireTensor): Float32Array[] {
  const [n, dim] = t.dims as [number, number];
  const data = t.data as Float32Array;
  return Array.from({ length: n }, (_, i) => data.slice(i * dim, (i + 1) * dim));
}

export class LoadedModel {
  readonly imageBatcher: MicroBatcher<Uint8Array, Float32Array>;
  readonly textBatcher: MicroBatcher<number[], Float32Array>;

  constructor(
    readonly dir: string,
    readonly manifest: ModelManifest,
    readonly tokenizer: WordPieceTokenizer,
    private readonly image: Session,
    private readonly text: Session,
    private readonly options: PoolOptions,
  ) {
    const m = options.metrics;
    const name = manifest.name;
    const hooks = (tower: 'image' | 'text') => ({
      onBatch: (size: number, ms: number) => {
        m?.batchSize.observe({ model: name, tower }, size);
        m?.stageDuration.observe({ stage: 'infer', model: name }, ms / 1000);
      },
      onQueueDepth: (depth: number) => m?.queueDepth.set({ model: name, tower }, depth),
      onDropped: (reason: string) => m?.rejected.inc({ model: name, tower, reason }),
    });
    this.imageBatcher = new MicroBatcher({
      name: `${name} image`,
      maxBatch: options.maxBatchImages,
      maxWaitMs: options.batchWaitMs,
      fillWaitMs: options.batchFillWaitMs,
      maxQueue: options.maxQueueImages,
      run: (batch) => this.onGate(this.image, () => this.runImages(batch)),
      ...hooks('image'),
    });
    this.textBatcher = new MicroBatcher({
      name: `${name} text`,
      maxBatch: options.maxBatchTexts,
      maxWaitMs: options.batchWaitMs,
      settleMs: options.batchSettleMs,
      maxQueue: options.maxQueueTexts,
      run: (batch) => this.onGate(this.text, () => this.runTexts(batch)),
      // Batches of similar lengths: each is padded to its longest.
      groupKey: (ids) => ids.length,
      ...hooks('text'),
    });
  }

  private onGate<T>(session: Session, run: () => Promise<T>): Promise<T> {
    const gate = this.options.gate;
    return gate && session.provider === 'cpu' ? gate.during(run) : run();
  }

  get name(): string {
    return this.manifest.name;
  }

  get dim(): number {
    return this.manifest.embed_dim;
  }

  get imageRes(): number {
    return this.manifest.image_res;
  }

  info(): ModelInfo {
    return {
      name: this.name,
      dim: this.dim,
      image_res: this.imageRes,
      precision: this.manifest.precision,
      provider: { image: this.image.provider, text: this.text.provider },
      max_length: this.manifest.preprocessing.text.max_length,
      source: this.manifest.source,
    };
  }

  /** Token id rows → embeddings; rows are padded to the longest with attention_mask 0. */
  async runTexts(batch: number[][]): Promise<Float32Array[]> {
    const len = Math.max(...batch.map((r) => r.length));
    const ids = new BigInt64Array(batch.length * len).fill(BigInt(this.tokenizer.padId));
    const mask = new BigInt64Array(batch.length * len);
    batch.forEach((row, r) => {
      for (let c = 0; c < row.length; c++) {
        ids[r * len + c] = BigInt(row[c]!);
        mask[r * len + c] = 1n;
      }
    });
    const out = await this.text.run({
      input_ids: { type: 'int64', data: ids, dims: [batch.length, len] },
      attention_mask: { type: 'int64', data: mask, dims: [batch.length, len] },
    });
    return rows(out.embeddings!);
  }

  /** Resized RGB images (res × res × 3 each; transferred, so detached here) → embeddings. */
  async runImages(batch: Uint8Array[]): Promise<Float32Array[]> {
    const { size, mean, std } = this.manifest.preprocessing.image;
    const out = await this.image.run({ pixel_values: { type: 'rgb8', images: batch, size, mean, std } });
    return rows(out.embeddings!);
  }

  /** One inference per tower, so that the first request does not pay for lazy initialisation. */
  async warmup(): Promise<void> {
    await this.runTexts([[this.tokenizer.clsId]]);
    await this.runImages([new Uint8Array(3 * this.manifest.preprocessing.image.size ** 2)]);
  }

  async idle(): Promise<void> {
    await Promise.all([this.imageBatcher.idle(), this.textBatcher.idle()]);
  }

  async release(): Promise<void> {
    await Promise.all([this.image.release(), this.text.release()]);
  }
}

export class ModelPool {
  private constructor(private readonly models: Map<string, LoadedModel>) {}

  static async load(dirs: string[], options: PoolOptions): Promise<ModelPool> {
    const models = new Map<string, LoadedModel>();
    try {
      for (const dir of dirs) {
        const files = await readModelDir(dir);
        if (models.has(files.manifest.name)) throw new Error(`two model directories are named ${JSON.stringify(files.manifest.name)} (${dir})`);
        const sessionOptions = { provider: options.provider, intraOpThreads: options.intraOpThreads };
        // Both settle before anything is thrown: a session still loading on its worker when the
        // process exits after a load error can take the process down by a signal instead of exit 1.
        const created = await Promise.allSettled([Session.create(files.imagePath, sessionOptions), Session.create(files.textPath, sessionOptions)]);
        const failed = created.find((c) => c.status === 'rejected');
        if (failed) {
          await Promise.all(created.map((c) => (c.status === 'fulfilled' ? c.value.release() : undefined)));
          throw failed.reason;
        }
        const [image, text] = created.map((c) => (c as PromiseFulfilledResult<Session>).value) as [Session, Session];
        models.set(files.manifest.name, new LoadedModel(files.dir, files.manifest, new WordPieceTokenizer(files.vocabText), image, text, options));
      }
    } catch (e) {
      await Promise.all([...models.values()].map((m) => m.release().catch(() => undefined)));
      throw e;
    }
    return new ModelPool(models);
  }

  get names(): string[] {
    return [...this.models.keys()];
  }

  list(): LoadedModel[] {
    return [...this.models.values()];
  }

  /** The named model, or the default (the first one loaded) when no name is given. */
  get(name?: string): LoadedModel {
    if (name === undefined || name === '') {
      const first = this.models.values().next().value;
      if (!first) throw new ModelNotFoundError('(default)', []);
      return first;
    }
    const m = this.models.get(name);
    if (!m) throw new ModelNotFoundError(name, this.names);
    return m;
  }

  async warmup(): Promise<void> {
    for (const m of this.models.values()) await m.warmup();
  }

  async idle(): Promise<void> {
    await Promise.all(this.list().map((m) => m.idle()));
  }

  async release(): Promise<void> {
    await Promise.all(this.list().map((m) => m.release()));
  }
}
