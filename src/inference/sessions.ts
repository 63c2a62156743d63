// A handle on an ONNX Runtime session that runs on a worker thread (see session-worker.ts), its own
// or shared with sessions of graphs that run in turn: run() transfers the input buffers there and the
// outputs back, without copies.

import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { AppError } from '../errors.js';
import type { Provider, SessionOptions, SkippedProvider } from './ort-session.js';
import type { WireFeed, WireTensor, WorkerReply, WorkerRequest } from './session-worker.js';

export type { Provider, ProviderChoice, SessionOptions, SkippedProvider } from './ort-session.js';
export type { WireFeed, WireImages, WireTensor } from './session-worker.js';

// The worker has this module's extension: .ts under the test runner, .js when built.
const WORKER = new URL(`./session-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

export class SessionLoadError extends AppError {
  constructor(message: string) {
    super('model_load_failed', message, 500);
  }
}

/** A worker thread owning one or more ONNX Runtime sessions; their runs take turns on it. */
class SessionWorker {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (o: Record<string, WireTensor>) => void; reject: (e: Error) => void }>();
  private failure: Error | undefined;
  private open: number;

  constructor(
    private readonly worker: Worker,
    label: string,
    sessions: number,
  ) {
    this.open = sessions;
    worker.on('message', (msg: WorkerReply) => {
      if (!('id' in msg)) return;
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if ('error' in msg) p.reject(new Error(msg.error));
      else p.resolve(msg.outputs);
    });
    const fail = (e: Error): void => {
      this.failure = e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the inference worker for ${label} exited (code ${code})`)));
  }

  run(graph: number, feeds: Record<string, WireFeed>): Promise<Record<string, WireTensor>> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const transfer = [...new Set(Object.values(feeds).flatMap((t) => (t.type === 'rgb8' ? t.images : [t.data]).map((a) => a.buffer as ArrayBuffer)))];
      this.worker.postMessage({ id, graph, feeds } satisfies WorkerRequest, transfer);
    });
  }

  /** The worker ends with its last session. */
  async release(): Promise<void> {
    if (--this.open <= 0) await this.worker.terminate();
  }
}

export class Session {
  private constructor(
    private readonly host: SessionWorker,
    private readonly graph: number,
    readonly provider: Provider,
    readonly path: string,
    /** Providers tried before `provider` (under --provider auto), and why each was passed over. */
    readonly skipped: SkippedProvider[] = [],
  ) {}

  static async create(path: string, options: SessionOptions): Promise<Session> {
    return (await Session.createShared([path], options))[0]!;
  }

  /**
   * Sessions for several graphs on one worker thread: for graphs that run one after another anyway
   * (the matching pipeline), one thread instead of one each.
   */
  static async createShared(paths: string[], options: SessionOptions): Promise<Session[]> {
    const worker = new Worker(WORKER, { workerData: { paths, options } });
    const first = await new Promise<WorkerReply>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`worker exited with code ${code}`)));
    }).catch((e: Error) => ({ loadError: e.message }) as WorkerReply);
    if ('loadError' in first) {
      await worker.terminate();
      throw new SessionLoadError(first.loadError);
    }
    const host = new SessionWorker(worker, paths.join(', '), paths.length);
    const { providers, skipped } = first as Extract<WorkerReply, { ready: true }>;
    return paths.map((path, i) => new Session(host, i, providers[i]!, path, skipped[i]));
  }

  /** Runs the model; the feeds' buffers are transferred (detached here). */
  run(feeds: Record<string, WireFeed>): Promise<Record<string, WireTensor>> {
    return this.host.run(this.graph, feeds);
  }

  async release(): Promise<void> {
    await this.host.release();
  }
}

/** Splits a [batch, ...] output into one Float32Array per item. */
export function splitBatch(t: WireTensor): Float32Array[] {
  const n = t.dims[0]!;
  const data = t.data as Float32Array;
  const per = n > 0 ? data.length / n : 0;
  return Array.from({ length: n }, (_, i) => data.slice(i * per, (i + 1) * per));
}
