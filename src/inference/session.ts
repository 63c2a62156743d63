// A handle on an ONNX Runtime session that runs on a session thread (session-thread.ts), its own or
// shared with sessions of graphs that run in turn.

import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { SessionLoadError } from '../core/errors.js';
import type { Provider, SessionOptions, SkippedProvider } from './ort-session.js';
import { SessionThread } from './session-thread.js';
import type { WireFeed, WireTensor, WorkerReply } from './wire.js';

export type { Provider, ProviderChoice, SessionOptions, SkippedProvider } from './ort-session.js';
export type { WireFeed, WireImages, WireTensor } from './wire.js';

// The worker has this module's extension: .ts under the test runner, .js when built.
const WORKER = new URL(`./session-thread-entry${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

export class Session {
  private constructor(
    private readonly host: SessionThread,
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
    }).catch((e: Error) => ({ loadError: e.message }));
    if ('loadError' in first) {
      await worker.terminate();
      throw new SessionLoadError(first.loadError);
    }
    const host = new SessionThread(worker, paths.join(', '), paths.length);
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
