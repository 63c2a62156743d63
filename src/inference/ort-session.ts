// Creating an ONNX Runtime session: the provider chosen by providers.ts (this file is its ORT side:
// a session per provider tried, and a first inference on the GPU ones) and the session options
// chosen by measurement, threads included. Used inside the session worker, by the model pool
// (threads per session) and by the benchmark.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import ort from 'onnxruntime-node';
import { usableCpus } from '../core/cpus.js';
import { selectProvider, type Provider, type ProviderChoice, type SkippedProvider } from './providers.js';

export type { Provider, ProviderChoice, SkippedProvider } from './providers.js';

export interface SessionOptions {
  provider: ProviderChoice;
  intraOpThreads: number;
  /** The model's precision (model.json): a GPU provider refuses int8. */
  precision?: string;
}

/**
 * Threads for each of a tower's `sessions` side-by-side sessions: an equal share (at least one) of
 * `intraOpThreads`, or of one per usable CPU when that is 0.
 */
export function threadsPerSession(intraOpThreads: number, sessions: number): number {
  const total = intraOpThreads > 0 ? intraOpThreads : usableCpus();
  return Math.max(1, Math.floor(total / sessions));
}

export function sessionOptions(provider: Provider, o: SessionOptions): ort.InferenceSession.SessionOptions {
  return {
    // ORT adds its CPU provider behind any other, for the nodes the other has no kernel for.
    executionProviders: [provider],
    graphOptimizationLevel: 'all',
    // One run at a time per session (the batcher serialises), so inter-op parallelism only adds threads.
    executionMode: 'sequential',
    interOpNumThreads: 1,
    // ORT's own default counts physical cores, which on some hosts (2-vCPU VMs measured here) gives
    // one thread and half the speed; one thread per usable CPU is what a dedicated service wants.
    intraOpNumThreads: threadsPerSession(o.intraOpThreads, 1),
    // Its pool threads spin between operators (worth it), but not after a run: there they took a core
    // from the next request's image decode, about doubling it (docs/performance.md).
    extra: { session: { force_spinning_stop: '1' } },
  };
}

/**
 * One inference on a one-item input made from the model's own input metadata (symbolic dimensions
 * 1, floats 0, integers 1): a GPU provider can load a model and still fail or give NaN at its first
 * run (a missing shader feature, say), which must count as not running it.
 */
export async function firstInference(session: ort.InferenceSession): Promise<void> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const m of session.inputMetadata) {
    if (!m.isTensor) throw new Error(`input ${m.name} is not a tensor`);
    const dims = m.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
    const n = dims.reduce((a, b) => a * b, 1);
    if (m.type === 'int64') feeds[m.name] = new ort.Tensor('int64', new BigInt64Array(n).fill(1n), dims);
    else if (m.type === 'float32') feeds[m.name] = new ort.Tensor('float32', new Float32Array(n), dims);
    else throw new Error(`input ${m.name} has type ${m.type}, not float32 or int64`);
  }
  const out = await session.run(feeds);
  for (const [name, t] of Object.entries(out)) {
    if (t.type === 'float32' && !(t.data as Float32Array).every(Number.isFinite))
      throw new Error(`its first inference gave non-finite values in ${name}`);
  }
}

async function open(path: string, provider: Provider, o: SessionOptions): Promise<ort.InferenceSession> {
  const session = await ort.InferenceSession.create(path, sessionOptions(provider, o));
  if (provider === 'cpu') return session;
  try {
    await firstInference(session);
  } catch (e) {
    await session.release().catch(() => undefined);
    throw new Error(`it loaded, but its first inference failed: ${(e as Error).message}`);
  }
  return session;
}

/**
 * Whether onnxruntime-node's CUDA provider library sits next to its binding: its install script puts
 * it there on linux-x64 when it runs (package.json's allowScripts keeps it from running under npm ci;
 * `npm run onnxruntime:cuda12` runs it on purpose, and npm 10 runs it unless told to skip).
 */
export function cudaBinariesInstalled(): boolean {
  const binding = join(
    dirname(createRequire(import.meta.url).resolve('onnxruntime-node')),
    '..',
    'bin',
    'napi-v6',
    process.platform,
    process.arch,
  );
  return existsSync(join(binding, 'libonnxruntime_providers_cuda.so'));
}

export async function createOrtSession(
  path: string,
  o: SessionOptions,
): Promise<{ session: ort.InferenceSession; provider: Provider; skipped: SkippedProvider[] }> {
  const cuda = o.provider === 'default' && cudaBinariesInstalled();
  const {
    value: session,
    provider,
    skipped,
  } = await selectProvider(o.provider, o.precision, (p) => open(path, p, o), cuda);
  return { session, provider, skipped };
}
