// What runs inside a session thread (session-thread.ts starts it): the ONNX Runtime sessions of one or
// more graphs, run in turn. onnxruntime-node's run() blocks the thread that calls it for the whole
// inference, so sessions live on worker threads and the main thread stays free for HTTP.
// Images arrive as resized 8-bit RGB and are normalised here into a float buffer kept from batch to
// batch: a fresh multi-megabyte tensor per batch cost page faults, GC work and a copy on the main
// thread, all in the gap between two batches.

import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { createOrtSession, type SessionOptions } from './ort-session.js';
import { normalizeToCHW } from '../imaging/pixel-normalize.js';
import type { WireImages, WireTensor, WorkerReply, WorkerRequest } from './wire.js';

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
  feed.images.forEach((rgb, i) =>
    normalizeToCHW(rgb, feed.size, feed.mean, feed.std, data.subarray(i * per, (i + 1) * per)),
  );
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
  port.postMessage({
    ready: true,
    providers: sessions.map((s) => s.provider),
    skipped: sessions.map((s) => s.skipped),
  } satisfies WorkerReply);
  port.on('message', (msg: WorkerRequest) => void runGraph(msg));
  // Every failure is answered to the caller; nothing escapes.
  async function runGraph(msg: WorkerRequest): Promise<void> {
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
  }
} catch (e) {
  port.postMessage({ loadError: (e as Error).message } satisfies WorkerReply);
}
