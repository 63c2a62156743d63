// The service's lifecycle outside HTTP: loads the models, warms them up, exposes readiness, drains
// on shutdown. The HTTP layer asks it for the Embedder and gets NotReadyError (503) until it exists.

import type { Config } from './config.js';
import type { CpuFeatures } from '../core/cpu-features.js';
import { Embedder } from './embedder.js';
import { ImageIntake, TextIntake } from './intake.js';
import { Matcher } from './matcher.js';
import { NotReadyError } from '../core/errors.js';
import type { Metrics } from '../core/metrics.js';
import { DecodePool } from '../imaging/decode-pool.js';
import { DecodeGate } from '../imaging/decode-gate.js';
import { ModelPool } from '../inference/model-pool.js';
import { UrlFetcher, type Resolver } from '../sources/url-fetcher.js';
import { pathExists } from '../core/fs-utils.js';
import { DEFAULT_STORE, openStore } from '../retrieval/open-store.js';
import type { CollectionStore } from '../retrieval/store.js';
import { Searcher } from './searcher.js';

export interface ServiceOptions {
  /** DNS resolver for image URLs (tests inject one). */
  resolver?: Resolver;
  /** Address policy for image URLs (tests inject one). */
  isForbiddenAddress?: (address: string) => boolean;
  onConnect?: (address: string, hostname: string) => void;
  /** The CPU the models' int8 kernels are judged for (tests inject one; default: this machine's). */
  cpu?: CpuFeatures;
}

export type Phase = 'starting' | 'loading' | 'ready' | 'failed' | 'draining' | 'closed';

export class Service {
  phase: Phase = 'starting';
  loadError: Error | undefined;
  private embedder: Embedder | undefined;
  private matcher: Matcher | undefined;
  private intake: { texts: TextIntake; images: ImageIntake } | undefined;
  private storeOpen: Promise<CollectionStore | undefined> | undefined;
  private searcher: { store: CollectionStore; searcher: Searcher } | undefined;
  private storeHealth: { at: number; problem: Promise<string | undefined> } | undefined;
  private readonly decoder: DecodePool;
  private readonly gate: DecodeGate | undefined;
  private readonly fetcher: UrlFetcher;
  private readonly cpu: CpuFeatures | undefined;

  constructor(
    readonly config: Config,
    readonly metrics: Metrics,
    options: ServiceOptions = {},
  ) {
    this.cpu = options.cpu;
    this.gate = config.decodeGateMs > 0 ? new DecodeGate(config.decodeGateMs) : undefined;
    this.decoder = new DecodePool(config.decodeThreads, this.gate);
    this.fetcher = new UrlFetcher({
      allowPrivate: config.allowPrivateUrls,
      timeoutMs: config.urlTimeoutMs,
      maxBytes: config.urlMaxBytes,
      maxRedirects: config.urlMaxRedirects,
      resolver: options.resolver,
      isForbidden: options.isForbiddenAddress,
      onConnect: options.onConnect,
    });
  }

  get ready(): boolean {
    return this.phase === 'ready';
  }

  /** Loads every model directory, warms each tower, then reports ready. */
  async start(): Promise<void> {
    this.phase = 'loading';
    try {
      const c = this.config;
      const pool = await ModelPool.load(c.models, {
        provider: c.provider,
        intraOpThreads: c.intraOpThreads,
        imageSessions: c.imageSessions,
        textSessions: c.textSessions,
        maxBatchImages: c.maxBatchImages,
        maxBatchTexts: c.maxBatchTexts,
        batchWaitMs: c.batchWaitMs,
        batchFillWaitMs: c.batchFillWaitMs,
        batchSettleMs: c.batchSettleMs,
        gate: this.gate,
        maxQueueImages: c.maxQueueImages,
        maxQueueTexts: c.maxQueueTexts,
        fusion: c.fusion,
        maxBatchPairs: c.maxBatchPairs,
        maxQueuePairs: c.maxQueuePairs,
        stateCacheImages: c.stateCacheImages,
        metrics: this.metrics,
        cpu: this.cpu,
      });
      if (c.warmup) {
        await pool.warmup();
        await this.decoder.warmup(pool.get().manifest.preprocessing.image.size);
      }
      const texts = new TextIntake(c, this.metrics);
      const images = new ImageIntake(c, this.decoder, this.fetcher, this.metrics);
      this.embedder = new Embedder(pool, texts, images, this.metrics);
      this.matcher = new Matcher(texts, images, this.embedder, this.metrics);
      this.intake = { texts, images };
      if (this.phase === 'loading') this.phase = 'ready';
    } catch (e) {
      this.phase = 'failed';
      this.loadError = e as Error;
      throw e;
    }
  }

  /** The embedder while models are loaded; during a drain too, so that accepted requests finish. */
  requireEmbedder(): Embedder {
    if (this.phase === 'closed') throw new NotReadyError('the service is shut down');
    if (!this.embedder || (this.phase !== 'ready' && this.phase !== 'draining'))
      throw new NotReadyError(
        this.phase === 'failed' ? `models failed to load: ${this.loadError?.message}` : 'models are still loading',
      );
    return this.embedder;
  }

  /** Image–text matching, under the same conditions as the embedder. */
  requireMatcher(): Matcher {
    this.requireEmbedder();
    return this.matcher!;
  }

  /** Inputs to what the towers take, for batch work outside the request path (evaluation, indexing). */
  requireIntake(): { texts: TextIntake; images: ImageIntake } {
    this.requireEmbedder();
    return this.intake!;
  }

  /**
   * The collection store, opened on first use and again after a failed open (a store that was down
   * at start works once it is back). None with --no-store, nor while the default directory does not
   * exist (a service that indexes nothing creates no folder).
   */
  async collectionStore(): Promise<CollectionStore | undefined> {
    const spec = this.config.store;
    if (!spec) return undefined;
    if (!this.storeOpen) {
      // One promise for the check and the open: concurrent first requests share one store.
      const opening = (async () =>
        spec === DEFAULT_STORE && !(await pathExists(spec)) ? undefined : openStore(spec))();
      this.storeOpen = opening;
      const forget = (): void => {
        if (this.storeOpen === opening) this.storeOpen = undefined;
      };
      opening.then((s) => s ?? forget(), forget);
    }
    return this.storeOpen;
  }

  /** Search over the store's collections (undefined: no store to search). */
  async requireSearcher(): Promise<Searcher | undefined> {
    const embedder = this.requireEmbedder();
    const store = await this.collectionStore();
    if (!store) return undefined;
    if (this.searcher?.store !== store)
      this.searcher = { store, searcher: new Searcher(store, embedder.pool, embedder, this.matcher!, this.metrics) };
    return this.searcher.searcher;
  }

  /** Why the store cannot serve now, or undefined (for /readyz; asked at most once a second). */
  storeProblem(): Promise<string | undefined> {
    const now = Date.now();
    if (this.storeHealth && now - this.storeHealth.at < 1000) return this.storeHealth.problem;
    const problem = (async () => {
      try {
        const store = await this.collectionStore();
        await store?.ping();
        return undefined;
      } catch (e) {
        return (e as Error).message;
      }
    })();
    this.storeHealth = { at: now, problem };
    return problem;
  }

  get pool(): ModelPool | undefined {
    return this.embedder?.pool;
  }

  /** Stops taking new work (readyz → 503); accepted work keeps running. */
  beginDrain(): void {
    if (this.phase !== 'closed') this.phase = 'draining';
  }

  /** Waits for queued inference to finish, then frees workers and sessions. */
  async close(): Promise<void> {
    this.beginDrain();
    const pool = this.embedder?.pool;
    if (pool) await pool.idle();
    const store = this.storeOpen?.catch(() => undefined);
    await Promise.all([this.decoder.close(), this.fetcher.close(), store?.then((s) => s?.close())]);
    if (pool) await pool.release();
    this.phase = 'closed';
  }
}
