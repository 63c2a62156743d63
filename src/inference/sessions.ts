// ONNX Runtime sessions: CUDA when asked for (and present), CPU otherwise.

import { availableParallelism } from 'node:os';
import ort from 'onnxruntime-node';
import { AppError } from '../errors.js';

export type ProviderChoice = 'cpu' | 'cuda' | 'auto';

export interface Session {
  session: ort.InferenceSession;
  provider: 'cpu' | 'cuda';
}

export interface SessionOptions {
  provider: ProviderChoice;
  intraOpThreads: number;
}

export class SessionLoadError extends AppError {
  constructor(message: string, cause: unknown) {
    super('model_load_failed', message, 500, undefined, { cause });
  }
}

function sessionOptions(provider: 'cpu' | 'cuda', o: SessionOptions): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: provider === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
    graphOptimizationLevel: 'all',
    // One run at a time per session (the batcher serialises), so inter-op parallelism only adds threads.
    executionMode: 'sequential',
    interOpNumThreads: 1,
    // ORT's own default counts physical cores, which on some hosts (2-vCPU VMs measured here) gives
    // one thread and half the speed; one thread per available CPU is what a dedicated service wants.
    intraOpNumThreads: o.intraOpThreads > 0 ? o.intraOpThreads : availableParallelism(),
  };
}

export async function createSession(path: string, o: SessionOptions): Promise<Session> {
  const tryCreate = async (provider: 'cpu' | 'cuda'): Promise<Session> => ({ session: await ort.InferenceSession.create(path, sessionOptions(provider, o)), provider });
  try {
    if (o.provider === 'cpu') return await tryCreate('cpu');
    try {
      return await tryCreate('cuda');
    } catch (e) {
      if (o.provider === 'cuda') throw e;
      return await tryCreate('cpu');
    }
  } catch (e) {
    throw new SessionLoadError(`cannot load ${path}: ${(e as Error).message}`, e);
  }
}
