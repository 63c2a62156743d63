// A handle on an ONNX Runtime session that runs on its own worker thread (see session-worker.ts):
// run() transfers the input buffers there and the outputs back, without copies.

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

export class Session {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (o: Record<string, WireTensor>) => void; reject: (e: Error) => void }>();
  private failure: Error | undefined;

  private constructor(
    private readonly worker: Worker,
    readonly provider: Provider,
    readonly path: string,
    /** Providers tried before `provider` (under --provider auto), and why each was passed over. */
    readonly skipped: SkippedProvider[] = [],
  ) {
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
    worker.on('exit', (code) => fail(new Error(`the inference worker for ${path} exited (code ${code})`)));
  }

  static async create(path: string, options: SessionOptions): Promise<Session> {
    const worker = new Worker(WORKER, { workerData: { path, options } });
    const first = await new Promise<WorkerReply>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`worker exited with code ${code}`)));
    }).catch((e: Error) => ({ loadError: e.message }) as WorkerReply);
    if ('loadError' in first) {
      await worker.terminate();
      throw new SessionLoadError(`cannot load ${path}: ${first.loadError}`);
    }
    const { provider, skipped } = first as Extract<WorkerReply, { ready: true }>;
    return new Session(worker, provider, path, skipped);
  }

  /** Runs the model; the feeds' buffers are transferred (detached here). */
  run(feeds: Record<string, WireFeed>): Promise<Record<string, WireTensor>> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const transfer = [...new Set(Object.values(feeds).flatMap((t) => (t.type === 'rgb8' ? t.images : [t.data]).map((a) => a.buffer as ArrayBuffer)))];
      this.worker.postMessage({ id, feeds } satisfies WorkerRequest, transfer);
    });
  }

  async release(): Promise<void> {
    await this.worker.terminate();
  }
}
