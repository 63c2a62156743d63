// Execution providers: the choice (providers.ts) as a pure function, then through real ONNX Runtime
// sessions and the real server on this machine. GPUs are hidden from this process and its children
// (no Vulkan driver file, no CUDA device), so that the error paths are the same on a host with a GPU:
// --provider webgpu / cuda fail at start with a clear message, auto lands on the CPU and says why.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { convertCheckpoint } from '../../src/convert/convert.js';
import { createOrtSession, cudaBinariesInstalled, firstInference } from '../../src/inference/ort-session.js';
import {
  AUTO_ORDER,
  BATCH_DEFAULTS,
  failureReason,
  maxBatchFor,
  selectProvider,
  type Provider,
} from '../../src/inference/providers.js';
import { runCli, serveUntilFailed, spawnCli } from '../../kit/cli.js';
import { TINY_ARCH, TINY_CHECKPOINT } from '../../kit/golden.js';
import { cleanupTinyModel, postJson, startServer, tinyModel } from '../../kit/server.js';
import { ProviderError } from '../../src/core/errors.js';

// Read when a provider first starts (not at import), here and in the servers this file spawns.
process.env.VK_DRIVER_FILES = process.env.VK_ICD_FILENAMES = '/nonexistent/albef-test-icd.json';
process.env.CUDA_VISIBLE_DEVICES = '-1';

const dir = await mkdtemp(join(tmpdir(), 'albef-providers-'));
t.teardown(async () => {
  await rm(dir, { recursive: true, force: true });
  await cleanupTinyModel();
});
const { dir: fp32 } = await tinyModel();
const int8 = join(dir, 'tiny-int8');
await convertCheckpoint({
  checkpoint: TINY_CHECKPOINT,
  out: int8,
  archFile: TINY_ARCH,
  name: 'tiny-int8',
  precision: 'int8',
});

// What onnxruntime-node 1.30 says on a machine without a Vulkan driver (recorded here).
const ORT_NO_ADAPTER =
  '/onnxruntime_src/onnxruntime/core/providers/webgpu/webgpu_context.cc:136 onnxruntime::webgpu::WebGpuContext::Initialize(const onnxruntime::webgpu::WebGpuContextConfig&)::<lambda()> adapter_result.status == wgpu::RequestAdapterStatus::Success was false. Failed to get a WebGPU adapter: No supported adapters\n';

/** An attempt that fails for the providers in `failing` and records every provider it was asked for. */
function attempts(failing: Partial<Record<Provider, string>>) {
  const tried: Provider[] = [];
  const attempt = async (p: Provider) => {
    tried.push(p);
    if (failing[p]) throw new Error(failing[p]);
    return `session on ${p}`;
  };
  return { tried, attempt };
}

t.test('selection: auto takes the first provider that works, in the order cuda, webgpu, cpu', async (t) => {
  t.same(AUTO_ORDER, ['cuda', 'webgpu', 'cpu']);
  const a = attempts({
    cuda: 'OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library',
    webgpu: ORT_NO_ADAPTER,
  });
  const r = await selectProvider('auto', 'fp32', a.attempt);
  t.equal(r.provider, 'cpu');
  t.equal(r.value, 'session on cpu');
  t.same(a.tried, ['cuda', 'webgpu', 'cpu']);
  t.same(
    r.skipped.map((s) => s.provider),
    ['cuda', 'webgpu'],
  );
  t.match(
    r.skipped[0]!.reason,
    /^OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library\. the CUDA provider needs .*ONNXRUNTIME_NODE_INSTALL=cuda12/,
  );
  t.equal(
    r.skipped[1]!.reason,
    'Failed to get a WebGPU adapter: No supported adapters. WebGPU needs a Vulkan loader, libvulkan.so.1, and a GPU driver with a Vulkan ICD; in containers NVIDIA_DRIVER_CAPABILITIES must include graphics',
    'ORT source location and assertion dropped',
  );

  const b = attempts({ cuda: 'no CUDA' });
  const w = await selectProvider('auto', 'fp16', b.attempt);
  t.equal(w.provider, 'webgpu', 'webgpu when it works');
  t.same(b.tried, ['cuda', 'webgpu'], 'cpu not tried once a GPU works');

  const c = attempts({ cuda: 'x', webgpu: 'y', cpu: 'Protobuf parsing failed.' });
  const e = await selectProvider('auto', 'fp32', c.attempt).catch((e: unknown) => e);
  t.type(e, ProviderError);
  t.equal(
    (e as Error).message,
    'no execution provider could run it (--provider auto tried cuda: x; webgpu: y; cpu: Protobuf parsing failed.)',
  );
});

t.test('selection: a provider asked for by name is the only one tried', async (t) => {
  for (const p of ['webgpu', 'cuda'] as const) {
    const a = attempts({ [p]: ORT_NO_ADAPTER });
    const e = await selectProvider(p, 'fp32', a.attempt).catch((e: unknown) => e);
    t.type(e, ProviderError, `${p}: an error, no fallback`);
    t.same(a.tried, [p], `${p}: cpu never tried`);
    t.match(
      (e as Error).message,
      new RegExp(`^the ${p} execution provider \\(--provider ${p}\\) cannot run it: Failed to get a WebGPU adapter`),
    );
  }
  const ok = attempts({});
  t.match(await selectProvider('webgpu', 'fp16', ok.attempt), { provider: 'webgpu', skipped: [] });
  // The CPU's own errors (a corrupt file) are not a provider's: thrown unchanged.
  const cpu = attempts({ cpu: 'Protobuf parsing failed.' });
  await t.rejects(selectProvider('cpu', 'fp32', cpu.attempt), { message: 'Protobuf parsing failed.' });
});

t.test(
  'selection: the default is CUDA where its binaries are installed, falling back to the CPU; else the CPU alone',
  async (t) => {
    const none = attempts({});
    t.match(await selectProvider('default', 'fp32', none.attempt, false), { provider: 'cpu', skipped: [] });
    t.same(none.tried, ['cpu'], 'without the CUDA binaries nothing else is tried (no WebGPU attempt)');
    const gpu = attempts({});
    t.match(
      await selectProvider('default', 'fp16', gpu.attempt, true),
      { provider: 'cuda', skipped: [] },
      'CUDA installed and working: CUDA',
    );
    const broken = attempts({ cuda: 'CUDA failure 100: no CUDA-capable device is detected' });
    const r = await selectProvider('default', 'fp32', broken.attempt, true);
    t.equal(r.provider, 'cpu', 'CUDA installed but not starting: the CPU, not an error');
    t.match(r.skipped, [{ provider: 'cuda', reason: /no CUDA-capable device/ }], 'and the reason it was skipped');
    t.same(broken.tried, ['cuda', 'cpu']);
    const q = attempts({});
    t.match(await selectProvider('default', 'int8', q.attempt, true), {
      provider: 'cpu',
      skipped: [{ provider: 'cuda', reason: /int8 models run on the CPU only/ }],
    });
    t.same(q.tried, ['cpu'], 'int8: CUDA refused by precision before loading');
    await t.rejects(
      selectProvider('default', 'fp32', attempts({ cpu: 'Protobuf parsing failed.' }).attempt),
      { message: 'Protobuf parsing failed.' },
      "the CPU's own errors unchanged",
    );
  },
);

t.test('selection: int8 is refused on GPU providers before anything is loaded', async (t) => {
  const a = attempts({});
  const e = await selectProvider('webgpu', 'int8', a.attempt).catch((e: unknown) => e);
  t.type(e, ProviderError);
  t.match(
    (e as Error).message,
    /webgpu .* cannot run it: int8 models run on the CPU only \(their DynamicQuantizeMatMul nodes have no GPU kernel\)/,
  );
  t.same(a.tried, [], 'nothing loaded');
  const b = attempts({});
  const r = await selectProvider('auto', 'int8', b.attempt);
  t.equal(r.provider, 'cpu');
  t.same(b.tried, ['cpu'], 'auto goes straight to the CPU');
  t.same(
    r.skipped.map((s) => [s.provider, /int8 models run on the CPU only/.test(s.reason)]),
    [
      ['cuda', true],
      ['webgpu', true],
    ],
  );
  for (const precision of ['fp32', 'fp16'])
    t.match(
      await selectProvider('webgpu', precision, attempts({}).attempt),
      { provider: 'webgpu' },
      `${precision} runs on webgpu`,
    );
  t.match(await selectProvider('cpu', 'fp16', attempts({}).attempt), { provider: 'cpu' }, 'fp16 runs on the CPU');
});

t.test('batch sizes: by the provider the tower got unless configured', async (t) => {
  t.equal(maxBatchFor('image', 0, 'cpu'), 2, 'CPU images: 2 (measured best)');
  t.equal(maxBatchFor('text', 0, 'cpu'), 64);
  for (const p of ['webgpu', 'cuda'] as const) {
    t.ok(maxBatchFor('image', 0, p) > BATCH_DEFAULTS.cpu.image, `${p}: larger image batches than the CPU`);
    t.equal(maxBatchFor('image', 0, p), BATCH_DEFAULTS[p].image);
    t.equal(maxBatchFor('text', 0, p), BATCH_DEFAULTS[p].text);
  }
  t.equal(maxBatchFor('image', 5, 'webgpu'), 5, 'a configured size wins');
  t.equal(failureReason('cpu', '  some\n  error '), 'some error');
});

t.test('ORT layer: real sessions on this machine, GPUs hidden', async (t) => {
  const image = join(fp32, 'image.onnx');
  const e = await createOrtSession(image, { provider: 'webgpu', intraOpThreads: 1, precision: 'fp32' }).catch(
    (e: unknown) => e,
  );
  t.type(e, ProviderError);
  t.match(
    (e as Error).message,
    /^the webgpu execution provider \(--provider webgpu\) cannot run it: Failed to get a WebGPU adapter: No supported adapters\. WebGPU needs a Vulkan loader/,
  );
  const c = await createOrtSession(image, { provider: 'cuda', intraOpThreads: 1, precision: 'fp32' }).catch(
    (e: unknown) => e,
  );
  t.type(c, ProviderError, 'cuda asked for: an error, not the CPU');

  // Without CUDA binaries (what npm ci installs) the default tries nothing else; with them (CUDA hidden here) it says why it passed CUDA over.
  const byDefault = await createOrtSession(image, { provider: 'default', intraOpThreads: 1, precision: 'fp32' });
  t.match(
    byDefault,
    { provider: 'cpu', skipped: cudaBinariesInstalled() ? [{ provider: 'cuda' }] : [] },
    `the default: the CPU (CUDA binaries ${cudaBinariesInstalled() ? '' : 'not '}installed)`,
  );
  await byDefault.session.release();

  const auto = await createOrtSession(image, { provider: 'auto', intraOpThreads: 1, precision: 'fp32' });
  t.equal(auto.provider, 'cpu');
  t.same(
    auto.skipped.map((s) => s.provider),
    ['cuda', 'webgpu'],
  );
  t.match(auto.skipped[1]!.reason, /No supported adapters/);
  await firstInference(auto.session);
  t.pass('the first inference made from the input metadata runs');
  await auto.session.release();
  const text = await createOrtSession(join(int8, 'text.onnx'), {
    provider: 'auto',
    intraOpThreads: 1,
    precision: 'int8',
  });
  await firstInference(text.session);
  t.match(
    text,
    {
      provider: 'cpu',
      skipped: [
        { provider: 'cuda', reason: /int8/ },
        { provider: 'webgpu', reason: /int8/ },
      ],
    },
    'int8 text tower: GPUs refused by precision',
  );
  await text.session.release();
});

t.test(
  'serve --provider webgpu without a GPU: clear error at start, exit 1; env twin the same; int8 refused',
  async (t) => {
    const a = await runCli(['serve', '--models', fp32, '--port', '0', '--provider', 'webgpu']);
    t.equal(a.code, 1, 'exit code 1');
    t.match(
      a.stdout + a.stderr,
      /cannot load .*\.onnx: the webgpu execution provider \(--provider webgpu\) cannot run it: Failed to get a WebGPU adapter: No supported adapters\. WebGPU needs a Vulkan loader/,
    );
    t.notMatch(a.stdout, /"msg":"ready"/, 'never ready on the CPU');
    const b = await runCli(['serve', '--models', fp32, '--port', '0'], { ALBEF_PROVIDER: 'webgpu' });
    t.equal(b.code, 1, 'ALBEF_PROVIDER=webgpu: exit 1');
    t.match(b.stdout + b.stderr, /No supported adapters/);
    const c = await runCli(['serve', '--models', int8, '--port', '0', '--provider', 'webgpu']);
    t.equal(c.code, 1, 'int8 on webgpu: exit 1');
    t.match(c.stdout + c.stderr, /cannot run it: int8 models run on the CPU only .*use an fp16 or fp32 model on a GPU/);
  },
);

t.test('serve --provider webgpu --on-load-error not-ready: alive, not ready, the reason logged', async (t) => {
  const { url, ready, log, stop } = await serveUntilFailed(['--models', fp32, '--provider', 'webgpu']);
  t.equal(ready.status, 503, 'not ready');
  t.equal((await fetch(`${url}/healthz`)).status, 200, 'but alive');
  const embed = await postJson(`${url}/embed/text`, { text: 'a dog' });
  t.equal(embed.status, 503, 'embeddings refused, not served from the CPU');
  t.match(embed.json.error.message, /webgpu execution provider .*No supported adapters/);
  t.match(log(), /"level":60.*No supported adapters/, 'the fatal log line says why');
  await stop();
});

t.test('auto on a machine without a GPU: cpu, with the reasons in /models and in the log', async (t) => {
  const server = await startServer({ provider: 'auto' });
  t.teardown(() => server.close());
  const models = (await (await fetch(`${server.url}/models`)).json()) as { models: Array<Record<string, any>> };
  const m = models.models[0]!;
  t.same(m.provider, { image: 'cpu', text: 'cpu' });
  for (const tower of ['image', 'text']) {
    t.same(
      m.provider_skipped[tower].map((s: { provider: string }) => s.provider),
      ['cuda', 'webgpu'],
      `${tower}: cuda and webgpu skipped`,
    );
    t.match(m.provider_skipped[tower][1].reason, /Failed to get a WebGPU adapter: No supported adapters/);
  }
  t.same(m.max_batch, { image: BATCH_DEFAULTS.cpu.image, text: BATCH_DEFAULTS.cpu.text }, "the CPU's batch sizes");
  t.equal((await postJson(`${server.url}/embed/text`, { text: 'a dog' })).status, 200, 'serves');

  const child = spawnCli(['serve', '--models', fp32, '--port', '0', '--provider', 'auto']);
  let log = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      log += d.toString();
      if (log.includes('"msg":"ready"')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`exited ${code}: ${log}`)));
  });
  t.match(
    log,
    /"skipped":\{"image":\[\{"provider":"cuda".*"provider":"webgpu","reason":"Failed to get a WebGPU adapter.*"msg":"execution providers: image cpu, text cpu"/,
    'the startup log names the provider and the skipped ones',
  );
  child.kill('SIGTERM');
  await new Promise((r) => child.on('exit', r));
});

t.test('configured batch sizes are kept; /models reports them', async (t) => {
  const server = await startServer({ maxBatchImages: 8, maxBatchTexts: 3 });
  t.teardown(() => server.close());
  const models = (await (await fetch(`${server.url}/models`)).json()) as { models: Array<Record<string, any>> };
  t.same(models.models[0]!.max_batch, { image: 8, text: 3 });
  t.same(models.models[0]!.provider_skipped, { image: [], text: [] }, '--provider cpu: nothing tried before it');
});
