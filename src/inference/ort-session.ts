// Creating an ONNX Runtime session: provider choice (CUDA when asked for and present, else CPU) and
// the session options chosen by measurement, threads included. Used inside the session worker, by the
// model pool (threads per session) and by the benchmark.

import ort from 'onnxruntime-node';
import { usableCpus } from '../cpus.js';

export type ProviderChoice = 'cpu' | 'cuda' | 'auto';

export interface SessionOptions {
  provider: ProviderChoice;
  intraOpThreads: number;
}

/**
 * Threads for each of a tower's `sessions` side-by-side sessions: an equal share (at least one) of
 * `intraOpThreads`, or of one per usable CPU when that is 0.
 */
export function threadsPerSession(intraOpThreads: number, sessions: number): number {
  const total = intraOpThreads > 0 ? intraOpThreads : usableCpus();
  return Math.max(1, Math.floor(total / sessions));
}

export function sessionOptions(provider: 'cpu' | 'cuda', o: SessionOptions): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: provider === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
    graphOptimizationLevel: 'all',
    // One run at a time per session (the batcher serialises), so inter-op parallelism only adds threads.
    executionMode: 'sequential',
    interOpNumThreads: 1,
    // ORT's own default counts physical cores, which on some hosts (2-vCPU VMs measured here) gives
    // one thread and half the speed; one thread per usable CPU is what a dedicated service wants.
    intraOpNumThreads: threadsPerSession(o.intraOpThreads, 1),
  };
}

export async function createOrtSession(path: string, o: SessionOptions): Promise<{ session: ort.InferenceSession; provider: 'cpu' | 'cuda' }> {
  const tryCreate = async (provider: 'cpu' | 'cuda') => ({ session: await ort.InferenceSession.create(path, sessionOptions(provider, o)), provider });
  if (o.provider === 'cpu') return tryCreate('cpu');
  try {
    return await tryCreate('cuda');
  } catch (e) {
    if (o.provider === 'cuda') throw e;
    return tryCreate('cpu');
  }
}
