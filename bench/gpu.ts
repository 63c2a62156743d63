// The device run (scripts/gpu/device-run.sh): one provider (webgpu on a GPU machine; cpu for a dry
// run) measured in one process within a time budget: the tiny fixture's goldens on that provider
// (fp32 and fp16), where ONNX Runtime placed each node, raw session.run throughput by batch size
// against the CPU provider on the same machine, and the service end to end (bench/service.ts,
// bench/load.ts). results.json is rewritten after every phase, so a run cut short still reports.
//
//   node build/bench/gpu.js --provider webgpu --models DIR --out DIR [--seconds 3] [--budget-s 270]
//
// DIR holds tiny-fp32, tiny-fp16 (converted from the fixture checkpoint) and full-<precision> for
// each precision measured (synthesised), as device-run.sh makes them.

import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { preCaption } from '../src/inference/caption.js';
import { preprocessImage } from '../src/imaging/decode.js';
import { readModelDir } from '../src/inference/model-dir.js';
import { createOrtSession, type Provider } from '../src/inference/ort-session.js';
import { normalizeToCHW } from '../src/imaging/pixel-normalize.js';
import { PROVIDERS } from '../src/inference/providers.js';
import { WordPieceTokenizer } from '../src/inference/tokenizer.js';
import { PACKAGE_ROOT } from '../src/core/paths.js';
import { cosine, golden, IMAGES_DIR, maxAbsDiff, tensorInput } from '../kit/golden.js';
import { CAPTIONS, rawImageTower, rawTextTower, sweep, type CeilingPoint } from './ceiling.js';
import { closedLoop, type LoadResult, type RequestSpec } from './load.js';
import { multipartImage, stageTimings, startService } from './service.js';
import { round } from './stats.js';

const list = (s: string | undefined): string[] =>
  (s ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
const ints = (s: string | undefined): number[] => list(s).map(Number);
const { values } = parseArgs({
  options: {
    provider: { type: 'string', default: 'webgpu' },
    models: { type: 'string' },
    out: { type: 'string' },
    seconds: { type: 'string', default: '3' },
    'budget-s': { type: 'string', default: '270' },
    // The first is also the one the service runs first.
    precisions: { type: 'string', default: 'fp16,fp32' },
    'cpu-precisions': { type: 'string', default: 'fp32,int8' },
    'image-batches': { type: 'string', default: '1,2,4,8,16,32,64' },
    'cpu-image-batches': { type: 'string', default: '1,2,4,8,16' },
    'text-batches': { type: 'string', default: '1,8,32,64,128,256' },
    concurrency: { type: 'string', default: '1,16,64,128' },
  },
});
const provider = values.provider as Provider;
if (!(PROVIDERS as readonly string[]).includes(provider))
  throw new Error(`--provider must be one of ${PROVIDERS.join(', ')}`);
if (!values.models || !values.out) throw new Error('--models DIR and --out DIR are required');
const modelsDir = values.models;
const outDir = values.out;
const seconds = Number(values.seconds);
const budgetMs = Number(values['budget-s']) * 1000;
const started = performance.now();
const log = (m: string): void =>
  void process.stderr.write(`gpu-bench [${((performance.now() - started) / 1000).toFixed(0)} s]: ${m}\n`);
mkdirSync(outDir, { recursive: true });

const results: Record<string, unknown> = {
  machine: {
    cpu: cpus()[0]?.model,
    cores: cpus().length,
    memoryGB: round(totalmem() / 2 ** 30, 1),
    node: process.version,
    onnxruntime: ort.env.versions.node,
    backends: ort.listSupportedBackends(),
    date: new Date().toISOString(),
  },
  provider,
  seconds,
  skippedPhases: [] as string[],
};
const save = (): void => writeFileSync(join(outDir, 'results.json'), JSON.stringify(results, null, 2) + '\n');

/** Runs a phase unless the budget is spent; its error is recorded, and the run goes on. */
async function phase(name: string, run: () => Promise<unknown>): Promise<void> {
  if (performance.now() - started > budgetMs) {
    (results.skippedPhases as string[]).push(name);
    log(`${name}: skipped (budget of ${budgetMs / 1000} s spent)`);
    save();
    return;
  }
  log(`${name}`);
  try {
    results[name] = await run();
  } catch (e) {
    results[name] = { error: (e as Error).stack ?? String(e) };
    log(`${name} failed: ${(e as Error).message}`);
  }
  save();
}

/** The tiny fixture on the provider against the official fp32 vectors: one at a time and in one padded batch. */
async function goldens(precision: string) {
  const dir = join(modelsDir, `tiny-${precision}`);
  const { manifest } = await readModelDir(dir);
  const text = await createOrtSession(join(dir, 'text.onnx'), { provider, precision, intraOpThreads: 0 });
  const image = await createOrtSession(join(dir, 'image.onnx'), { provider, precision, intraOpThreads: 0 });
  const textRows = golden.texts.map((g) => g.pre_caption);
  const textCos: number[] = [];
  const textMaxAbs: number[] = [];
  for (const g of textRows) {
    const r = await text.session.run(idsFeed([g.ids]));
    const v = r.embeddings!.data as Float32Array;
    textCos.push(cosine(v, g.embedding));
    textMaxAbs.push(maxAbsDiff(v, g.embedding));
  }
  const batch = await text.session.run(idsFeed(textRows.map((g) => g.ids)));
  const dim = manifest.embed_dim;
  const batchCos = textRows.map((g, i) =>
    cosine((batch.embeddings!.data as Float32Array).subarray(i * dim, (i + 1) * dim), g.embedding),
  );

  const res = manifest.image_res;
  const { mean, std } = manifest.preprocessing.image;
  const pixels: Float32Array[] = [];
  for (const g of golden.images) {
    const p = await preprocessImage(readFileSync(join(IMAGES_DIR, g.file)), { size: res, maxPixels: 1e8 });
    if (!p.ok) throw new Error(p.message);
    pixels.push(normalizeToCHW(p.rgb, res, mean, std));
  }
  const imageCos: number[] = [];
  for (let i = 0; i < pixels.length; i++) {
    const r = await image.session.run({ pixel_values: new ort.Tensor('float32', pixels[i]!, [1, 3, res, res]) });
    imageCos.push(cosine(r.embeddings!.data as Float32Array, golden.images[i]!.embedding));
  }
  const all = new Float32Array(pixels.length * 3 * res * res);
  pixels.forEach((p, i) => all.set(p, i * p.length));
  const ib = await image.session.run({ pixel_values: new ort.Tensor('float32', all, [pixels.length, 3, res, res]) });
  const imageBatchCos = golden.images.map((g, i) =>
    cosine((ib.embeddings!.data as Float32Array).subarray(i * dim, (i + 1) * dim), g.embedding),
  );
  const tc = golden.tensor_check;
  const tr = await image.session.run({ pixel_values: new ort.Tensor('float32', tensorInput(), tc.shape) });
  const tv = tr.embeddings!.data as Float32Array;
  await Promise.all([text.session.release(), image.session.release()]);
  const min = (xs: number[]) => round(Math.min(...xs), 7);
  return {
    precision,
    provider: { text: text.provider, image: image.provider },
    texts: {
      n: textCos.length,
      minCosine: min(textCos),
      maxAbsDiff: Math.max(...textMaxAbs),
      paddedBatchMinCosine: min(batchCos),
    },
    images: { n: imageCos.length, minCosine: min(imageCos), batchMinCosine: min(imageBatchCos) },
    tensorCheck: { cosine: round(cosine(tv, tc.embedding), 7), maxAbsDiff: maxAbsDiff(tv, tc.embedding) },
  };
}

function idsFeed(rows: number[][]): Record<string, ort.Tensor> {
  const len = Math.max(...rows.map((r) => r.length));
  const ids = new BigInt64Array(rows.length * len);
  const mask = new BigInt64Array(rows.length * len);
  rows.forEach((r, i) => r.forEach((id, j) => ((ids[i * len + j] = BigInt(id)), (mask[i * len + j] = 1n))));
  return {
    input_ids: new ort.Tensor('int64', ids, [rows.length, len]),
    attention_mask: new ort.Tensor('int64', mask, [rows.length, len]),
  };
}

/** ORT's verbose "Node placements" report for one graph, from a child process (the log goes to its stderr). */
function placement(path: string, p: Provider): { summary: string[]; warnings: string[]; exitCode: number | null } {
  const code = `import ort from 'onnxruntime-node';
await ort.InferenceSession.create(process.argv[1], { executionProviders: [process.argv[2]], logSeverityLevel: 0, logVerbosityLevel: 0, graphOptimizationLevel: 'all' });`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code, path, p], {
    cwd: PACKAGE_ROOT,
    encoding: 'utf8',
    maxBuffer: 256 * 2 ** 20,
  });
  const lines = (r.stderr ?? '').split('\n');
  const summary = lines
    .filter((l) => /VerifyEachNodeIsAssignedToAnEp/.test(l) && !/Node placements/.test(l))
    .map((l) => l.replace(/^.*VerifyEachNodeIsAssignedToAnEp\] ?/, ''));
  const warnings = lines
    .filter((l) => /\[W:onnxruntime|\[E:onnxruntime/.test(l))
    .map((l) => l.replace(/^\S+ \S+ /, ''))
    .slice(0, 20);
  return { summary: summary.slice(0, 200), warnings, exitCode: r.status };
}

function tokenizerOf(dir: string): (s: string) => number[] {
  const tok = new WordPieceTokenizer(readFileSync(join(dir, 'vocab.txt'), 'utf8'));
  return (s) => tok.encode(preCaption(s, 30), 30).ids;
}

async function raw(
  p: Provider,
  precision: string,
  imageBatches: number[],
  textBatches: number[],
): Promise<{ image: CeilingPoint[]; text: CeilingPoint[] }> {
  const dir = join(modelsDir, `full-${precision}`);
  const { manifest } = await readModelDir(dir);
  const image = await sweep(() => rawImageTower(dir, manifest.image_res, 1, p), imageBatches, seconds);
  log(`  ${p} ${precision} image: ${image.map((x) => `b${x.batch} ${x.itemsPerSecond}/s`).join(', ')}`);
  const text = await sweep(() => rawTextTower(dir, tokenizerOf(dir), 1, p), textBatches, seconds / 2);
  log(`  ${p} ${precision} text: ${text.map((x) => `b${x.batch} ${x.itemsPerSecond}/s`).join(', ')}`);
  return { image, text };
}

/** The service on `precision` at each concurrency, texts then images, then both at once. */
async function service(precision: string) {
  const dir = join(modelsDir, `full-${precision}`);
  // Queues deep enough for the top concurrency: the defaults (64 images) would answer part of it with 503.
  const svc = await startService(dir, [
    '--provider',
    provider,
    '--max-queue-images',
    '512',
    '--max-queue-texts',
    '4096',
  ]);
  try {
    const models = await (await fetch(`${svc.origin}/models`)).json();
    const textSpecs: RequestSpec[] = CAPTIONS.map((text) => ({
      path: '/embed/text',
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify({ text })),
    }));
    const textRequest = (i: number): RequestSpec => textSpecs[i % textSpecs.length]!;
    const mp = multipartImage(readFileSync(join(IMAGES_DIR, 'photo.jpg')), 'photo.jpg');
    const imageSpec: RequestSpec = { path: '/embed/image', headers: mp.headers, body: mp.body };
    const check = await fetch(svc.origin + imageSpec.path, {
      method: 'POST',
      headers: imageSpec.headers,
      body: imageSpec.body,
    });
    if (check.status !== 200)
      throw new Error(`/embed/image answered ${check.status}: ${(await check.text()).slice(0, 300)}`);
    const concurrencies = ints(values.concurrency);
    const text: LoadResult[] = [];
    for (const c of concurrencies) {
      text.push(await closedLoop(svc.origin, textRequest, c, seconds, 1));
      log(
        `  service ${precision} text c${c}: ${text.at(-1)!.throughput}/s p50 ${text.at(-1)!.p50} p99 ${text.at(-1)!.p99} ms (${text.at(-1)!.errors} errors)`,
      );
    }
    const image: LoadResult[] = [];
    for (const c of concurrencies) {
      image.push(await closedLoop(svc.origin, () => imageSpec, c, seconds, 1));
      log(
        `  service ${precision} image c${c}: ${image.at(-1)!.throughput}/s p50 ${image.at(-1)!.p50} p99 ${image.at(-1)!.p99} ms (${image.at(-1)!.errors} errors)`,
      );
    }
    // Both towers at once: on a GPU their sessions share one device from two worker threads.
    const top = Math.max(...concurrencies);
    const [mixedText, mixedImage] = await Promise.all([
      closedLoop(svc.origin, textRequest, top, seconds, 1),
      closedLoop(svc.origin, () => imageSpec, top, seconds, 1),
    ]);
    log(
      `  service ${precision} mixed c${top}+c${top}: texts ${mixedText.throughput}/s, images ${mixedImage.throughput}/s (${mixedText.errors + mixedImage.errors} errors)`,
    );
    return {
      precision,
      models,
      text,
      image,
      mixed: { text: mixedText, image: mixedImage },
      stages: await stageTimings(svc.origin),
      coldStartMs: Math.round(svc.coldStartMs),
    };
  } finally {
    results[`service-${precision}-exit`] = await svc.stop();
  }
}

function summary(): string {
  const lines = [`Device run: ${provider}; ${JSON.stringify(results.machine)}`, ''];
  for (const [k, v] of Object.entries(results)) {
    if (k.startsWith('goldens-') && v && typeof v === 'object' && !('error' in v)) {
      const g = v as Awaited<ReturnType<typeof goldens>>;
      lines.push(
        `goldens ${g.precision} on ${g.provider.image}/${g.provider.text}: texts min cos ${g.texts.minCosine} (padded batch ${g.texts.paddedBatchMinCosine}, max |Δ| ${g.texts.maxAbsDiff.toExponential(2)}), images min cos ${g.images.minCosine} (batch ${g.images.batchMinCosine}), tensor ${g.tensorCheck.cosine}`,
      );
    }
  }
  lines.push('', '| raw session.run | batch | img/s or texts/s | ms/run |', '|---|---:|---:|---:|');
  for (const [k, v] of Object.entries(results)) {
    if (!k.startsWith('raw-') || !v || typeof v !== 'object' || 'error' in v) continue;
    const r = v as { image: CeilingPoint[]; text: CeilingPoint[] };
    for (const tower of ['image', 'text'] as const)
      for (const p of r[tower])
        lines.push(`| ${k.slice(4)} ${tower} | ${p.batch} | ${p.itemsPerSecond} | ${p.msPerRun} |`);
  }
  lines.push('', '| service | concurrency | items/s | p50 ms | p99 ms | errors |', '|---|---:|---:|---:|---:|---:|');
  for (const [k, v] of Object.entries(results)) {
    if (!/^service-[a-z0-9]+$/.test(k) || !v || typeof v !== 'object' || 'error' in v) continue;
    const s = v as Awaited<ReturnType<typeof service>>;
    const m = (s.models as { models: { provider: unknown; provider_skipped: unknown; max_batch: unknown }[] })
      .models[0]!;
    lines.push(`| ${s.precision}: ${JSON.stringify({ provider: m.provider, max_batch: m.max_batch })} | | | | | |`);
    for (const tower of ['text', 'image'] as const)
      for (const l of s[tower])
        lines.push(
          `| ${s.precision} ${tower} | ${l.concurrency} | ${l.throughput} | ${l.p50} | ${l.p99} | ${l.errors} |`,
        );
    for (const tower of ['text', 'image'] as const)
      lines.push(
        `| ${s.precision} ${tower}, both towers loaded | ${s.mixed[tower].concurrency} | ${s.mixed[tower].throughput} | ${s.mixed[tower].p50} | ${s.mixed[tower].p99} | ${s.mixed[tower].errors} |`,
      );
  }
  const errors = Object.entries(results)
    .filter(([, v]) => v && typeof v === 'object' && 'error' in v)
    .map(([k]) => k);
  if (errors.length) lines.push('', `phases that failed (see results.json): ${errors.join(', ')}`);
  const skipped = results.skippedPhases as string[];
  if (skipped.length) lines.push('', `phases skipped for time: ${skipped.join(', ')}`);
  return lines.join('\n') + '\n';
}

const precisions = list(values.precisions);
// On --provider cpu (a dry run) the provider's own sweep is the CPU's.
const cpuPrecisions = list(values['cpu-precisions']).filter((p) => provider !== 'cpu' || !precisions.includes(p));
for (const precision of precisions) await phase(`goldens-${precision}`, () => goldens(precision));
await phase('placement', async () => {
  const out: Record<string, unknown> = {};
  for (const precision of precisions)
    for (const tower of ['image', 'text'])
      out[`${precision} ${tower}`] = placement(join(modelsDir, `full-${precision}`, `${tower}.onnx`), provider);
  return out;
});
// Most wanted first, should the budget run out: the provider's own numbers, then the CPU's for comparison.
for (const precision of precisions)
  await phase(`raw-${provider}-${precision}`, () =>
    raw(provider, precision, ints(values['image-batches']), ints(values['text-batches'])),
  );
await phase(`service-${precisions[0]}`, () => service(precisions[0]!));
for (const precision of cpuPrecisions)
  await phase(`raw-cpu-${precision}`, () =>
    raw('cpu', precision, ints(values['cpu-image-batches']), ints(values['text-batches'])),
  );
for (const precision of precisions.slice(1)) await phase(`service-${precision}`, () => service(precision));
results.totalSeconds = round((performance.now() - started) / 1000, 1);
save();
writeFileSync(join(outDir, 'summary.md'), summary());
process.stdout.write(summary());
