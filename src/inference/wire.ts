// What crosses between the main thread and a session thread: input feeds (tensors, or images as
// resized RGB that the thread normalises), outputs, and the thread's replies.

import type { Provider, SkippedProvider } from './ort-session.js';

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
export type WorkerRequest = { id: number; graph: number; feeds: Record<string, WireFeed> };
export type WorkerReply =
  | { id: number; outputs: Record<string, WireTensor> }
  | { id: number; error: string }
  | { ready: true; providers: Provider[]; skipped: SkippedProvider[][] }
  | { loadError: string };
