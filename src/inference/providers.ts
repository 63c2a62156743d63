import { ProviderError } from '../core/errors.js';
// Which ONNX Runtime execution provider a session runs on: the order `auto` tries them in, the model
// precisions each one runs, the batch sizes each wants, and the choice itself. The choice is a pure
// function over an `attempt` callback (ort-session.ts passes the real one), so that its fallbacks,
// refusals and reasons are tested on machines without a GPU.

export const PROVIDERS = ['cpu', 'cuda', 'webgpu'] as const;
export type Provider = (typeof PROVIDERS)[number];
export const PROVIDER_CHOICES = [...PROVIDERS, 'auto', 'default'] as const;
export type ProviderChoice = (typeof PROVIDER_CHOICES)[number];

/** `auto` tries these in turn and takes the first that loads and runs a first inference. */
export const AUTO_ORDER: readonly Provider[] = ['cuda', 'webgpu', 'cpu'];

export interface SkippedProvider {
  provider: Provider;
  reason: string;
}

/**
 * The providers a choice tries, in order. `default` is "CUDA when present, CPU otherwise" (docs/deployment.md):
 * CUDA only where onnxruntime-node's CUDA binaries are installed (they are not in its npm package),
 * falling back to the CPU when it cannot start; WebGPU only when asked for (or `auto`), since on a
 * host without a GPU its attempt prints Vulkan and Dawn warnings at every start.
 */
export function candidates(choice: ProviderChoice, cudaInstalled = false): Provider[] {
  if (choice === 'auto') return [...AUTO_ORDER];
  if (choice === 'default') return cudaInstalled ? ['cuda', 'cpu'] : ['cpu'];
  return [choice];
}

/** Why `provider` does not run models of `precision`, or undefined when it does. */
export function precisionRefusal(provider: Provider, precision: string | undefined): string | undefined {
  // The CPU runs all three (fp16 through float32 casts: test/fidelity/precision.test.ts). ORT's GPU providers
  // have no DynamicQuantizeMatMul kernel: it would run on the CPU with copies on both sides.
  if (provider !== 'cpu' && precision === 'int8')
    return 'int8 models run on the CPU only (their DynamicQuantizeMatMul nodes have no GPU kernel): use an fp16 or fp32 model on a GPU';
  return undefined;
}

const NEEDS: Record<Exclude<Provider, 'cpu'>, string> = {
  cuda: "the CUDA provider needs onnxruntime-node's CUDA 12 binaries, installed by ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci, with CUDA 12, cuDNN 9 and an NVIDIA GPU",
  webgpu:
    'WebGPU needs a Vulkan loader, libvulkan.so.1, and a GPU driver with a Vulkan ICD; in containers NVIDIA_DRIVER_CAPABILITIES must include graphics',
};

/** ORT's message without its source location and assertion text, plus what the provider needs when it did not start. */
export function failureReason(provider: Provider, message: string): string {
  let m = message.trim().replace(/\s+/g, ' ');
  // "/onnxruntime_src/….cc:136 <function> <condition> was false. Failed to get a WebGPU adapter: …"
  const assertion = /^\/onnxruntime_src\/\S+:\d+ .*? was false\. (.+)$/.exec(m);
  if (assertion) m = assertion[1]!;
  m = m.replace(/^\/onnxruntime_src\/\S+:\d+ /, '');
  const unavailable = /Failed to load shared library|Failed to get a WebGPU adapter|No supported adapters/i.test(m);
  return provider !== 'cpu' && unavailable ? `${m.replace(/\.$/, '')}. ${NEEDS[provider]}` : m;
}

export interface Selected<T> {
  value: T;
  provider: Provider;
  /** The providers tried before it, and why each was passed over. */
  skipped: SkippedProvider[];
}

/**
 * The first provider of `choice` that suits `precision` and for which `attempt` succeeds (with the
 * GPU providers, `attempt` includes a first inference). A requested provider is never replaced by
 * another: only `auto` and `default` fall through. The CPU provider's own errors (a corrupt file,
 * say) are thrown as they are, except under `auto`, whose error names every provider tried.
 */
export async function selectProvider<T>(
  choice: ProviderChoice,
  precision: string | undefined,
  attempt: (p: Provider) => Promise<T>,
  cudaInstalled = false,
): Promise<Selected<T>> {
  const skipped: SkippedProvider[] = [];
  for (const provider of candidates(choice, cudaInstalled)) {
    const refusal = precisionRefusal(provider, precision);
    if (refusal) {
      skipped.push({ provider, reason: refusal });
      continue;
    }
    try {
      return { value: await attempt(provider), provider, skipped };
    } catch (e) {
      if (provider === 'cpu' && choice !== 'auto') throw e;
      skipped.push({ provider, reason: failureReason(provider, e instanceof Error ? e.message : String(e)) });
    }
  }
  throw new ProviderError(choice, skipped);
}

/** Largest batch per inference when none is configured: measured on the CPU (docs/performance.md); GPUs want larger ones. */
export const BATCH_DEFAULTS: Record<Provider, { image: number; text: number }> = {
  cpu: { image: 2, text: 64 },
  cuda: { image: 32, text: 128 },
  webgpu: { image: 32, text: 128 },
};

/** The configured batch size, or (0) the default of the provider the tower actually got. */
export function maxBatchFor(tower: 'image' | 'text', configured: number, provider: Provider): number {
  return configured > 0 ? configured : BATCH_DEFAULTS[provider][tower];
}
