// The main thread's side of a session thread: a worker thread owning one or more ONNX Runtime
// sessions (session-thread-entry.ts), whose runs take turns on it. Inputs are transferred there and
// outputs back, without copies.

import type { Worker } from 'node:worker_threads';
import type { WireFeed, WireTensor, WorkerReply, WorkerRequest } from './wire.js';

/** A worker thread owning one or more ONNX Runtime sessions; their runs take turns on it. */
export class SessionThread {
  private nextId = 0;
  private readonly pending = new Map<
    number,
    { resolve: (o: Record<string, WireTensor>) => void; reject: (e: Error) => void }
  >();
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
      const transfer = [
        ...new Set(
          Object.values(feeds).flatMap((t) =>
            (t.type === 'rgb8' ? t.images : [t.data]).map((a) => a.buffer as ArrayBuffer),
          ),
        ),
      ];
      this.worker.postMessage({ id, graph, feeds } satisfies WorkerRequest, transfer);
    });
  }

  /** The worker ends with its last session. */
  async release(): Promise<void> {
    if (--this.open <= 0) await this.worker.terminate();
  }
}
