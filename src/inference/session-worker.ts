// Worker-thread entry owning one ONNX Runtime session. onnxruntime-node's run() executes
// synchronously on the calling thread (measured: the event loop stood still for a whole 369 ms
// image run), so every session lives on a worker of its own and the main thread stays free for HTTP.
// Images arrive as resized 8-bit RGB and are normalised here into a float buffer kept from batch to
// batch: a fresh multi-megabyte tensor per batch cost page faults, GC work and a copy on the main
// thread, all in the gap between two batches.

import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { createOrtSession, type Provider, type SessionOptions, type SkippedProvider } from './ort-session.js';
import { normalizeToCHW } from './pixel-normalize.js';

export interface WireTensor {
  type: 'float32' | 'int64';
  data: Float32Array | BigInt64Array;
  dims: number[];
}

/** A batch of images as resized interleaved RGB (size × size × 3 each), for a [n, 3, size, size] float input. */
export interface WireImages {
  type: 'rgb8';
  images: Uint8Array[];
  size: number;
  mean: readonly number[];
  std: readonly number[];
}

export type WireFeed = WireTensor | WireImages;
export type WorkerRequest = { id: number; graph: number; feeds: Record<string, WireFeed> } | { id: number; release: true };
export type WorkerReply =
  | { id: number; outputs: Record<string, WireTensor> }
  | { id: number; error: string }
  | { ready: true; providers: Provider[]; skipped: SkippedProvider[][] }
  | { loadError: string };

const port = parentPort!;
const { paths, options } = workerData as { paths: string[]; options: SessionOptions };

let pixelBuffer = new Float32Array(0);
let pixelBufferBusy = false;

/** The normalised NCHW tensor of an image batch, in the kept buffer (grown to the largest batch). */
function imageTensor(feed: WireImages): { tensor: ort.Tensor; done: () => void } {
  const per = 3 * feed.size * feed.size;
  const n = feed.images.length;
  // Runs come one at a time per session; were two ever to overlap, the second gets a buffer of its own.
  const kept = !pixelBufferBusy;
  if (kept && pixelBuffer.length < n * per) pixelBuffer = new Float32Array(n * per);
  const data = kept ? pixelBuffer.subarray(0, n * per) : new Float32Array(n * per);
  feed.images.forEach((rgb, i) => normalizeToCHW(rgb, feed.size, feed.mean, feed.std, data.subarray(i * per, (i + 1) * per)));
  if (kept) pixelBufferBusy = true;
  const done = kept ? () => void (pixelBufferBusy = false) : () => undefined;
  return { tensor: new ort.Tensor('float32', data, [n, 3, feed.size, feed.size]), done };
}

try {
  const sessions: Awaited<ReturnType<typeof createOrtSession>>[] = [];
  for (const path of paths) {
    try {
      sessions.push(await createOrtSession(path, options));
    } catch (e) {
      throw new Error(`cannot load ${path}: ${(e as Error).message}`);
    }
  }
  port.postMessage({ ready: true, providers: sessions.map((s) => s.provider), skipped: sessions.map((s) => s.skipped) } satisfies WorkerReply);
  port.on('message', async (msg: WorkerRequest) => {
    if ('release' in msg) {
      for (const { session } of sessions) await session.release();
      port.postMessage({ id: msg.id, outputs: {} } satisfies WorkerReply);
      return;
    }
    const release: (() => void)[] = [];
    try {
      const feeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(msg.feeds)) {
        if (t.type === 'rgb8') {
          const { tensor, done } = imageTensor(t);
          feeds[name] = tensor;
          release.push(done);
        } else feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
      }
      const result = await sessions[msg.graph]!.session.run(feeds);
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
    } finally {
      for (const done of release) done();
    }
  });
} catch (e) {
  port.postMessage({ loadError: (e as Error).message } satisfies WorkerReply);
}
