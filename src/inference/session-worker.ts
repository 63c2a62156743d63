// Worker-thread entry owning one ONNX Runtime session. onnxruntime-node's run() executes
// synchronously on the calling thread (measured: the event loop stood still for a whole 369 ms
// image run), so every session lives on a worker of its own and the main thread stays free for HTTP.

import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { createOrtSession, type SessionOptions } from './ort-session.js';

export interface WireTensor {
  type: 'float32' | 'int64';
  data: Float32Array | BigInt64Array;
  dims: number[];
}

export type WorkerRequest = { id: number; feeds: Record<string, WireTensor> } | { id: number; release: true };
export type WorkerReply = { id: number; outputs: Record<string, WireTensor> } | { id: number; error: string } | { ready: true; provider: string } | { loadError: string };

const port = parentPort!;
const { path, options } = workerData as { path: string; options: SessionOptions };

try {
  const { session, provider } = await createOrtSession(path, options);
  port.postMessage({ ready: true, provider } satisfies WorkerReply);
  port.on('message', async (msg: WorkerRequest) => {
    if ('release' in msg) {
      await session.release();
      port.postMessage({ id: msg.id, outputs: {} } satisfies WorkerReply);
      return;
    }
    try {
      const feeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(msg.feeds)) feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
      const result = await session.run(feeds);
      const outputs: Record<string, WireTensor> = {};
      const transfer: ArrayBuffer[] = [];
      for (const [name, t] of Object.entries(result)) {
        const data = t.data as Float32Array;
        outputs[name] = { type: 'float32', data, dims: [...t.dims] };
        transfer.push(data.buffer as ArrayBuffer);
      }
      port.postMessage({ id: msg.id, outputs } satisfies WorkerReply, transfer);
    } catch (e) {
      port.postMessage({ id: msg.id, error: (e as Error).message } satisfies WorkerReply);
    }
  });
} catch (e) {
  port.postMessage({ loadError: (e as Error).message } satisfies WorkerReply);
}
