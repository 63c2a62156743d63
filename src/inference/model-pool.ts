// The loaded models: for each, its manifest, tokenizer, one ONNX Runtime session per tower and one
// micro-batcher per tower that feeds it; and, for models with the fusion part, the image–text
// matching graphs (matching.ts).

import { cpuFeatures, type CpuFeatures } from '../core/cpu-features.js';
import { ModelNotFoundError } from '../core/errors.js';
import type { Metrics, Tower } from '../core/metrics.js';
import type { ModelManifest } from '../core/model-manifest.js';
import { MicroBatcher } from './batcher.js';
import type { DecodeGate } from '../imaging/decode-gate.js';
import { MatchingTowers, type MatchingSessions } from './matching-towers.js';
import { readModelDir } from './model-dir.js';
import { modelWarnings } from './model-warnings.js';
import { threadsPerSession } from './ort-session.js';
import { maxBatchFor } from './providers.js';
import { paddedTokenFeeds } from './token-feeds.js';
import { Session, splitBatch, type Provider, type ProviderChoice, type SkippedProvider } from './session.js';
import { WordPieceTokenizer } from './tokenizer.js';

export interface PoolOptions {
  provider: ProviderChoice;
  intraOpThreads: number;
  /** Sessions per tower that run batches side by side (each with its share of the threads). */
  imageSessions?: number;
  textSessions?: number;
  /** 0: the default of the provider the tower got (providers.ts). */
  maxBatchImages: number;
  maxBatchTexts: number;
  batchWaitMs: number;
  batchFillWaitMs?: number;
  batchSettleMs?: number;
  /** Told about every inference on the CPU, so that image decodes can keep out of its way. */
  gate?: DecodeGate;
  maxQueueImages: number;
  maxQueueTexts: number;
  metrics?: Metrics;
  /** The CPU the int8 kernels run on (default: this one's /proc/cpuinfo), for the models' warnings. */
  cpu?: CpuFeatures;
  /** Load the matching graphs of models that have them (default true). */
  fusion?: boolean;
  maxBatchPairs?: number;
  maxQueuePairs?: number;
  /** Images whose matching states are kept per model (0 = none). */
  stateCacheImages?: number;
}

export type Capability = 'embed' | 'rerank' | 'classify';

/** How one tower runs here. */
export interface TowerInfo {
  provider: Provider;
  /** Providers tried before `provider`, and why each was passed over. */
  skipped: SkippedProvider[];
  maxBatch: number;
  sessions: number;
}

export class LoadedModel {
  readonly imageBatcher: MicroBatcher<Uint8Array, Float32Array>;
  readonly textBatcher: MicroBatcher<number[], Float32Array>;
  /** Image–text matching, when the model directory has the fusion part and it was loaded. */
  readonly matching: MatchingTowers | undefined;

  constructor(
    readonly dir: string,
    readonly manifest: ModelManifest,
    readonly tokenizer: WordPieceTokenizer,
    private readonly image: Session[],
    private readonly text: Session[],
    private readonly options: PoolOptions,
    readonly warnings: string[] = [],
    matchingSessions?: MatchingSessions,
  ) {
    const m = options.metrics;
    const name = manifest.name;
    const hooks = (tower: Tower) => ({
      onBatch: (size: number, ms: number) => {
        m?.batchSize.observe({ model: name, tower }, size);
        m?.stageDuration.observe({ stage: 'infer', model: name }, ms / 1000);
      },
      onQueueDepth: (depth: number) => m?.queueDepth.set({ model: name, tower }, depth),
      onDropped: (reason: string) => m?.rejected.inc({ model: name, tower, reason }),
    });
    this.imageBatcher = new MicroBatcher({
      name: `${name} image`,
      maxBatch: maxBatchFor('image', options.maxBatchImages, image[0]!.provider),
      maxWaitMs: options.batchWaitMs,
      fillWaitMs: options.batchFillWaitMs,
      lanes: image.length,
      maxQueue: options.maxQueueImages,
      run: (batch, lane) => this.onGate(image, () => this.runImages(batch, lane)),
      ...hooks('image'),
    });
    this.textBatcher = new MicroBatcher({
      name: `${name} text`,
      maxBatch: maxBatchFor('text', options.maxBatchTexts, text[0]!.provider),
      maxWaitMs: options.batchWaitMs,
      settleMs: options.batchSettleMs,
      lanes: text.length,
      maxQueue: options.maxQueueTexts,
      run: (batch, lane) => this.onGate(text, () => this.runTexts(batch, lane)),
      // Batches of similar lengths: each is padded to its longest.
      groupKey: (ids) => ids.length,
      ...hooks('text'),
    });
    this.matching = matchingSessions
      ? new MatchingTowers(
          manifest,
          matchingSessions,
          { pad: tokenizer.padId, cls: tokenizer.clsId },
          {
            maxBatchImages: maxBatchFor('image', options.maxBatchImages, matchingSessions.imageStates.provider),
            maxBatchTexts: maxBatchFor('text', options.maxBatchTexts, matchingSessions.textStates.provider),
            maxBatchPairs: options.maxBatchPairs ?? 32,
            maxQueueImages: options.maxQueueImages,
            maxQueueTexts: options.maxQueueTexts,
            maxQueuePairs: options.maxQueuePairs ?? 1024,
            batchWaitMs: options.batchWaitMs,
            batchFillWaitMs: options.batchFillWaitMs,
            stateCacheImages: options.stateCacheImages ?? 0,
            cacheEvents: {
              onHit: () => m?.stateCache.inc({ model: name, result: 'hit' }),
              onMiss: () => m?.stateCache.inc({ model: name, result: 'miss' }),
              onShared: () => m?.stateCache.inc({ model: name, result: 'shared' }),
              onSize: (n) => m?.stateCacheEntries.set({ model: name }, n),
            },
            onGate: (session, run) => this.onGate([session], run),
            hooks,
          },
        )
      : undefined;
  }

  /** What the model serves: embeddings always; zero-shot needs the temperature; re-ranking the loaded fusion graphs. */
  get capabilities(): Capability[] {
    return [
      'embed',
      ...(this.matching ? (['rerank'] as const) : []),
      ...(this.manifest.fusion?.temp !== undefined ? (['classify'] as const) : []),
    ];
  }

  /**
   * A tower of one CPU session holds the decode gate while it runs (its threads meet at barriers, which
   * a decode stalls). Of side-by-side sessions one nearly always runs: holding the gate would hold
   * every decode for its whole timeout, so they leave it open (on 2 CPUs each runs on one thread,
   * which a decode only slows).
   */
  private onGate<T>(sessions: Session[], run: () => Promise<T>): Promise<T> {
    const gate = this.options.gate;
    return gate && sessions.length === 1 && sessions[0]!.provider === 'cpu' ? gate.during(run) : run();
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

  /** The image and text towers: provider, batch size and sessions of each. */
  towers(): { image: TowerInfo; text: TowerInfo } {
    const tower = (sessions: Session[], batcher: { maxBatch: number }): TowerInfo => ({
      provider: sessions[0]!.provider,
      skipped: sessions[0]!.skipped,
      maxBatch: batcher.maxBatch,
      sessions: sessions.length,
    });
    return { image: tower(this.image, this.imageBatcher), text: tower(this.text, this.textBatcher) };
  }

  /** Token id rows → embeddings; rows are padded to the longest with attention_mask 0. */
  async runTexts(batch: number[][], lane = 0): Promise<Float32Array[]> {
    const out = await this.text[lane]!.run(paddedTokenFeeds(batch, this.tokenizer.padId));
    return splitBatch(out.embeddings!);
  }

  /** Resized RGB images (res × res × 3 each; transferred, so detached here) → embeddings. */
  async runImages(batch: Uint8Array[], lane = 0): Promise<Float32Array[]> {
    const { size, mean, std } = this.manifest.preprocessing.image;
    const out = await this.image[lane]!.run({ pixel_values: { type: 'rgb8', images: batch, size, mean, std } });
    return splitBatch(out.embeddings!);
  }

  /** One inference per session, so that the first requests do not pay for lazy initialisation. */
  async warmup(): Promise<void> {
    for (let lane = 0; lane < this.text.length; lane++) await this.runTexts([[this.tokenizer.clsId]], lane);
    for (let lane = 0; lane < this.image.length; lane++)
      await this.runImages([new Uint8Array(3 * this.manifest.preprocessing.image.size ** 2)], lane);
    await this.matching?.warmup();
  }

  async idle(): Promise<void> {
    await Promise.all([this.imageBatcher.idle(), this.textBatcher.idle(), this.matching?.idle()]);
  }

  async release(): Promise<void> {
    await Promise.all([...[...this.image, ...this.text].map((s) => s.release()), this.matching?.release()]);
  }
}

export class ModelPool {
  private constructor(private readonly models: Map<string, LoadedModel>) {}

  static async load(dirs: string[], options: PoolOptions): Promise<ModelPool> {
    const models = new Map<string, LoadedModel>();
    const cpu = options.cpu ?? cpuFeatures();
    try {
      for (const dir of dirs) {
        const files = await readModelDir(dir);
        if (models.has(files.manifest.name))
          throw new Error(`two model directories are named ${JSON.stringify(files.manifest.name)} (${dir})`);
        const nImage = options.imageSessions ?? 1;
        const nText = options.textSessions ?? 1;
        const open = (path: string, n: number) =>
          Array.from({ length: n }, () =>
            Session.create(path, {
              provider: options.provider,
              precision: files.manifest.precision,
              intraOpThreads: threadsPerSession(options.intraOpThreads, n),
            }),
          );
        // The matching graphs run one after another for a request (states, then pairs), so they share
        // one worker thread (a thread and a module load less each, and no oversubscribed CPU among them).
        const f = options.fusion !== false ? files.fusion : undefined;
        const matchingSessions = f
          ? Session.createShared([f.imageStates, f.textStates, f.fusion], {
              provider: options.provider,
              precision: files.manifest.precision,
              intraOpThreads: threadsPerSession(options.intraOpThreads, 1),
            })
          : Promise.resolve([]);
        // All settle before anything is thrown: a session still loading on its worker when the
        // process exits after a load error can take the process down by a signal instead of exit 1.
        const created = await Promise.allSettled([
          ...open(files.imagePath, nImage),
          ...open(files.textPath, nText),
          matchingSessions,
        ]);
        const failed = created.find((c) => c.status === 'rejected');
        if (failed) {
          await Promise.all(
            created.flatMap((c) => (c.status === 'fulfilled' ? [c.value].flat().map((s) => s.release()) : [])),
          );
          throw failed.reason;
        }
        const sessions = created.map((c) => (c as PromiseFulfilledResult<Session | Session[]>).value);
        const image = sessions.slice(0, nImage) as Session[];
        const text = sessions.slice(nImage, nImage + nText) as Session[];
        const [imageStates, textStates, fusion] = sessions[nImage + nText] as Session[];
        const matching = fusion ? { imageStates: imageStates!, textStates: textStates!, fusion } : undefined;
        const warnings = modelWarnings(files.manifest, files.dir, cpu);
        models.set(
          files.manifest.name,
          new LoadedModel(
            files.dir,
            files.manifest,
            new WordPieceTokenizer(files.vocabText),
            image,
            text,
            options,
            warnings,
            matching,
          ),
        );
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
