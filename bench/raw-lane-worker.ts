// One lane of a side-by-side raw ceiling: a worker thread with its own ONNX Runtime session that
// runs the feeds it is sent in a loop (run() is synchronous, so side-by-side sessions need threads).

import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { createOrtSession } from '../src/inference/ort-session.js';
import { timeRuns } from './stats.js';

export interface LaneFeed {
  type: 'float32' | 'int64';
  data: Float32Array | BigInt64Array;
  dims: number[];
}
export type LaneRequest = { feeds: Record<string, LaneFeed>; seconds: number } | { release: true };
/** Milliseconds of each run (timeRuns). */
export type LaneReply = { ready: true } | { times: number[] };

const port = parentPort!;
const { path, threads } = workerData as { path: string; threads: number };
const { session } = await createOrtSession(path, { provider: 'cpu', intraOpThreads: threads });
port.postMessage({ ready: true } satisfies LaneReply);
port.on('message', (msg: LaneRequest) => void answer(msg));
async function answer(msg: LaneRequest): Promise<void> {
  if ('release' in msg) {
    await session.release();
    port.close();
    return;
  }
  const feeds = Object.fromEntries(
    Object.entries(msg.feeds).map(([k, t]) => [k, new ort.Tensor(t.type, t.data, t.dims)]),
  );
  port.postMessage({ times: await timeRuns(() => session.run(feeds), msg.seconds) } satisfies LaneReply);
}
