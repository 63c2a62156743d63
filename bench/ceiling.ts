// The ceiling: raw onnxruntime-node session.run throughput (on this thread, no worker, no HTTP),
// with the session options the service uses.

import ort from 'onnxruntime-node';
import { join } from 'node:path';
import { createOrtSession } from '../src/inference/ort-session.js';
import { median, round } from './stats.js';

export interface CeilingPoint {
  batch: number;
  runs: number;
  msPerRun: number;
  itemsPerSecond: number;
}

/** Twelve-word captions, as the issue specifies. */
export const CAPTIONS = [
  'a brown dog runs across a green field chasing a red ball today',
  'two young children play with a kite on a windy sandy beach',
  'a man in a blue jacket rides his bicycle down the busy street',
  'an old wooden boat rests on the shore of a quiet calm lake',
];

async function timeRuns(run: () => Promise<unknown>, seconds: number): Promise<number[]> {
  await run(); // warm-up
  const times: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end || times.length < 3) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
  }
  return times;
}

export async function imageCeiling(modelDir: string, imageRes: number, batches: number[], seconds: number): Promise<CeilingPoint[]> {
  const { session } = await createOrtSession(join(modelDir, 'image.onnx'), { provider: 'cpu', intraOpThreads: 0 });
  const out: CeilingPoint[] = [];
  for (const batch of batches) {
    const pixels = new Float32Array(batch * 3 * imageRes * imageRes).map(() => Math.random() * 2 - 1);
    const feeds = { pixel_values: new ort.Tensor('float32', pixels, [batch, 3, imageRes, imageRes]) };
    const times = await timeRuns(() => session.run(feeds), seconds);
    const ms = median(times);
    out.push({ batch, runs: times.length, msPerRun: round(ms, 1), itemsPerSecond: round((batch * 1000) / ms) });
  }
  await session.release();
  return out;
}

export async function textCeiling(modelDir: string, tokenize: (s: string) => number[], batches: number[], seconds: number): Promise<CeilingPoint[]> {
  const { session } = await createOrtSession(join(modelDir, 'text.onnx'), { provider: 'cpu', intraOpThreads: 0 });
  const out: CeilingPoint[] = [];
  for (const batch of batches) {
    const rows = Array.from({ length: batch }, (_, i) => tokenize(CAPTIONS[i % CAPTIONS.length]!));
    const len = Math.max(...rows.map((r) => r.length));
    const ids = new BigInt64Array(batch * len);
    const mask = new BigInt64Array(batch * len);
    rows.forEach((r, i) => r.forEach((id, j) => ((ids[i * len + j] = BigInt(id)), (mask[i * len + j] = 1n))));
    const feeds = { input_ids: new ort.Tensor('int64', ids, [batch, len]), attention_mask: new ort.Tensor('int64', mask, [batch, len]) };
    const times = await timeRuns(() => session.run(feeds), seconds);
    const ms = median(times);
    out.push({ batch, runs: times.length, msPerRun: round(ms, 2), itemsPerSecond: round((batch * 1000) / ms, 1) });
  }
  await session.release();
  return out;
}
