// One lane of a side-by-side raw ceiling: a worker thread with its own ONNX Runtime session that
// runs the feeds it is sent in a loop (run() is synchronous, so side-by-side sessions need threads).

import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { createOrtSession } from '../src/inference/ort-session.js';

export interface LaneFeed {
  type: 'float32' | 'int64';
  data: Float32Array | BigInt64Array;
  dims: number[];
}
export type LaneRequest = { feeds: Record<string, LaneFeed>; seconds: number } | { release: true };
/** Milliseconds of each run after one warm-up run. */
export type LaneReply = { ready: true } | { times: number[] };

const port = parentPort!;
const { path, threads } = workerData as { path: string; threads: number };
const { session } = await createOrtSession(path, { provider: 'cpu', intraOpThreads: threads });
port.postMessage({ ready: true } satisfies LaneReply);
port.on('message', async (msg: LaneRequest) => {
  if ('release' in msg) {
    await session.release();
    port.close();
    return;
  }
  const feeds = Object.fromEntries(Object.entries(msg.feeds).map(([k, t]) => [k, new ort.Tensor(t.type, t.data, t.dims)]));
  await session.run(feeds);
  const times: number[] = [];
  const end = performance.now() + msg.seconds * 1000;
  while (performance.now() < end || times.length < 3) {
    const t0 = performance.now();
    await session.run(feeds);
    times.push(performance.now() - t0);
  }
  port.postMessage({ times } satisfies LaneReply);
});
