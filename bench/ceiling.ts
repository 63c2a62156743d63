// The ceiling: raw onnxruntime-node session.run throughput (on this thread, no worker, no HTTP),
// with the session options the service uses. With several sessions per tower (the service's
// --image-sessions/--text-sessions), as many sessions run side by side, one worker thread each.

import ort from 'onnxruntime-node';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { createOrtSession, threadsPerSession, type Provider } from '../src/inference/ort-session.js';
import type { LaneFeed, LaneReply, LaneRequest } from './raw-lane-worker.js';
import { median, round, timeRuns } from './stats.js';

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

/** An open raw session that measures one batch size at a time; kept open to interleave with the service. */
export interface RawTower {
  measure(batch: number, seconds: number): Promise<CeilingPoint>;
  release(): Promise<void>;
}

async function rawTower(
  path: string,
  feedsFor: (batch: number) => Record<string, ort.Tensor>,
  digits: number,
  sessions: number,
  provider: Provider,
): Promise<RawTower> {
  if (sessions > 1) return sideBySide(path, feedsFor, digits, sessions);
  const { session } = await createOrtSession(path, { provider, intraOpThreads: 0 });
  return {
    async measure(batch, seconds) {
      const feeds = feedsFor(batch);
      const times = await timeRuns(() => session.run(feeds), seconds);
      const ms = median(times);
      return { batch, runs: times.length, msPerRun: round(ms, 2), itemsPerSecond: round((batch * 1000) / ms, digits) };
    },
    release: () => session.release(),
  };
}

const LANE_WORKER = new URL(`./raw-lane-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

/** `sessions` sessions, each on a worker with its share of the threads, running the same batch at once. */
async function sideBySide(
  path: string,
  feedsFor: (batch: number) => Record<string, ort.Tensor>,
  digits: number,
  sessions: number,
): Promise<RawTower> {
  const threads = threadsPerSession(0, sessions);
  const workers = Array.from({ length: sessions }, () => new Worker(LANE_WORKER, { workerData: { path, threads } }));
  // The worker's next reply, or its error (listeners removed either way: measure() runs many times).
  const next = (w: Worker) =>
    new Promise<LaneReply>((resolve, reject) => {
      const onMessage = (m: LaneReply) => {
        w.off('error', onError);
        resolve(m);
      };
      const onError = (e: Error) => {
        w.off('message', onMessage);
        reject(e);
      };
      w.once('message', onMessage);
      w.once('error', onError);
    });
  await Promise.all(workers.map(next));
  return {
    async measure(batch, seconds) {
      const feeds: Record<string, LaneFeed> = {};
      for (const [k, t] of Object.entries(feedsFor(batch)))
        feeds[k] = { type: t.type as LaneFeed['type'], data: t.data as LaneFeed['data'], dims: [...t.dims] };
      const replies = await Promise.all(
        workers.map((w) => {
          const reply = next(w);
          w.postMessage({ feeds, seconds } satisfies LaneRequest);
          return reply;
        }),
      );
      // As for one session, from the median run time (of runs that overlapped the other lanes' runs).
      const times = replies.flatMap((r) => ('times' in r ? r.times : []));
      const ms = median(times);
      return {
        batch,
        runs: times.length,
        msPerRun: round(ms, 2),
        itemsPerSecond: round((sessions * batch * 1000) / ms, digits),
      };
    },
    async release() {
      const exits = workers.map((w) => new Promise((resolve) => w.once('exit', resolve)));
      for (const w of workers) w.postMessage({ release: true } satisfies LaneRequest);
      await Promise.all(exits);
    },
  };
}

export function rawImageTower(
  modelDir: string,
  imageRes: number,
  sessions = 1,
  provider: Provider = 'cpu',
): Promise<RawTower> {
  return rawTower(
    join(modelDir, 'image.onnx'),
    (batch) => ({
      pixel_values: new ort.Tensor(
        'float32',
        new Float32Array(batch * 3 * imageRes * imageRes).map(() => Math.random() * 2 - 1),
        [batch, 3, imageRes, imageRes],
      ),
    }),
    2,
    sessions,
    provider,
  );
}

export function rawTextTower(
  modelDir: string,
  tokenize: (s: string) => number[],
  sessions = 1,
  provider: Provider = 'cpu',
  /** The texts batches are made of, in turn (their lengths set the cost). */
  texts: readonly string[] = CAPTIONS,
): Promise<RawTower> {
  return rawTower(
    join(modelDir, 'text.onnx'),
    (batch) => {
      const rows = Array.from({ length: batch }, (_, i) => tokenize(texts[i % texts.length]!));
      const len = Math.max(...rows.map((r) => r.length));
      const ids = new BigInt64Array(batch * len);
      const mask = new BigInt64Array(batch * len);
      rows.forEach((r, i) => r.forEach((id, j) => ((ids[i * len + j] = BigInt(id)), (mask[i * len + j] = 1n))));
      return {
        input_ids: new ort.Tensor('int64', ids, [batch, len]),
        attention_mask: new ort.Tensor('int64', mask, [batch, len]),
      };
    },
    1,
    sessions,
    provider,
  );
}

/** Each batch size in turn on a fresh session. */
export async function sweep(
  open: () => Promise<RawTower>,
  batches: number[],
  seconds: number,
): Promise<CeilingPoint[]> {
  const tower = await open();
  const out: CeilingPoint[] = [];
  for (const b of batches) out.push(await tower.measure(b, seconds));
  await tower.release();
  return out;
}
