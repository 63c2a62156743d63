// `npm run bench`: the full-size ALBEF (albef_4m shape, 384 px, random weights unless --model is
// given) measured on this machine in one run: the raw ONNX Runtime ceiling, the service over HTTP at
// several concurrencies, memory, cold start, and int8 fidelity against fp32. Writes
// bench/results/*.json and *.svg and prints a table. Ratios within one run are what to compare.
//
//   npm run bench                         # fp32 and int8
//   npm run bench -- --precision fp32     # one precision
//   npm run bench -- --model models/albef_4m --seconds 20
//   npm run bench -- --quick              # a short smoke run
//   npm run bench -- --sessions 2         # two sessions per tower side by side (service and ceiling)
//   npm run bench -- --rerank-only        # only re-ranking (1 text × 16 images, 1 image × 64 texts)
//   npm run bench -- --eval-only          # only `albef-embed eval` (synthetic 100 × 5 set, k 16 and 32)
//   npm run bench -- --retrieval-only     # only collections: indexing vs ceiling, search with re-rank K
//   npm run bench -- --decode-only        # only image decode + resize, beside Pillow (bench/decode.ts)

import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { resolveConfig } from '../src/service/config.js';
import { PRESETS, resolveArch } from '../src/convert/arch.js';
import { cpuFeatures, KERNEL_FLAGS } from '../src/core/cpu-features.js';
import { CONVERTER_VERSION } from '../src/convert/model-writer.js';
import { synthesizeModel } from '../src/convert/synth.js';
import { preCaption } from '../src/inference/caption.js';
import { readModelDir } from '../src/inference/model-dir.js';
import { ModelPool } from '../src/inference/model-pool.js';
import { WordPieceTokenizer } from '../src/inference/tokenizer.js';
import { preprocessImage } from '../src/imaging/decode.js';
import type { ModelManifest } from '../src/core/model-manifest.js';
import { PACKAGE_ROOT } from '../src/core/paths.js';
import { CAPTIONS, rawImageTower, rawTextTower, sweep, type CeilingPoint } from './ceiling.js';
import { lineChart, type Series } from './charts.js';
import { closedLoop, type LoadResult, type RequestSpec } from './load.js';
import { benchEval, evalTable, type EvalBench } from './eval.js';
import { benchRetrieval, retrievalTable, type RetrievalBench } from './collections.js';
import { benchRerank, rerankTable, type RerankResult } from './rerank.js';
import { benchDecode, decodeTable, type DecodeResult } from './decode.js';
import { mainThreadCpuMs, multipartImage, rssMB, stageTimings, startService } from './service.js';
import { measureHttpFloor, type HttpFloor } from './http-floor.js';
import { mean, round } from './stats.js';

const { values } = parseArgs({
  options: {
    precision: { type: 'string', default: 'fp32,int8' },
    model: { type: 'string' },
    seconds: { type: 'string', default: '10' },
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '4' },
    // For A/B runs of one change: only the interleaved ratios, and extra `serve` flags.
    'paired-only': { type: 'boolean', default: false },
    // Only the re-ranking measurements (bench/rerank.ts).
    'rerank-only': { type: 'boolean', default: false },
    // Only `albef-embed eval` (bench/eval.ts).
    'eval-only': { type: 'boolean', default: false },
    // Only collections (bench/collections.ts).
    'retrieval-only': { type: 'boolean', default: false },
    // Only image decoding + resizing: standalone, in the service, and Pillow (bench/decode.ts).
    'decode-only': { type: 'boolean', default: false },
    'serve-args': { type: 'string', default: '' },
    // Sessions per tower, side by side, for the service (--image-sessions/--text-sessions) and the ceiling.
    sessions: { type: 'string', default: '1' },
    out: { type: 'string', default: join(PACKAGE_ROOT, 'bench', 'results') },
  },
});
const quick = values.quick;
const base = quick ? 3 : Number(values.seconds);
const pairedOnly = values['paired-only'];
const concurrencies = pairedOnly ? [] : quick ? [1, 4] : [1, 4, 16, 64];
const imageBatches = pairedOnly ? [2] : quick ? [1, 2] : [1, 2, 4, 8];
const textBatches = pairedOnly ? [32, 64] : quick ? [1, 8] : [1, 8, 32, 64];
const sessions = Number(values.sessions);
if (!Number.isInteger(sessions) || sessions < 1)
  throw new Error(`--sessions must be a whole number ≥ 1 (got ${values.sessions})`);
const serveArgs = [
  ...values['serve-args'].split(' ').filter(Boolean),
  ...(sessions > 1 ? ['--image-sessions', String(sessions), '--text-sessions', String(sessions)] : []),
];
const rounds = quick ? 1 : Number(values.rounds);
// The paired ratios drive the service at these concurrencies: enough to keep every batch full
// (image batches are capped at 2; text batches form from whatever queued during the last one).
const PAIRED_IMAGE_CONCURRENCY = 8;
const PAIRED_TEXT_CONCURRENCY = 64;
// The same texts in flight sent 8 to a request: what batching on the client side leaves of the overhead.
const TEXTS_PER_REQUEST = 8;
const photo = readFileSync(join(PACKAGE_ROOT, 'test', 'fixtures', 'images', 'photo.jpg')); // 640×480 JPEG
const log = (m: string): void => void process.stderr.write(`bench: ${m}\n`);

async function modelFor(precision: string): Promise<{ dir: string; manifest: ModelManifest }> {
  // A model given on the command line must be one (readModelDir says why not).
  if (values.model) return readModelDir(values.model);
  const dir = join(PACKAGE_ROOT, 'bench', '.models', `albef_4m-${precision}`);
  const found = await readModelDir(dir).catch(() => undefined);
  // A synthesised model from another converter version would measure that version's graphs.
  if (found?.manifest.converter_version === CONVERTER_VERSION) return found;
  log(`synthesising the albef_4m-shaped model (${precision}, 384 px, converter ${CONVERTER_VERSION}) in ${dir}`);
  const manifest = await synthesizeModel({
    arch: resolveArch(PRESETS.albef_4m),
    out: dir,
    name: `albef_4m-synthetic-${precision}`,
    precision: precision as 'fp32' | 'int8',
    force: true,
  });
  return { dir, manifest };
}

interface PrecisionResult {
  precision: string;
  model: string;
  onnxMB: number;
  ceiling: { image: CeilingPoint[]; text: CeilingPoint[] };
  paired: Paired;
  service: { image: LoadResult[]; text: LoadResult[] };
  coldStartMs: number;
  rssWarmMB: number;
  rssAfterLoadMB: number;
  stages: Record<string, { seconds: number; count: number }>;
  ratios: {
    imageServiceVsCeiling: number;
    textServiceVsCeiling: number;
    textsPerRequestServiceVsCeiling: number;
    singleTextLatencyOverheadMs: number;
    /** One text per request, with no CPU spent on HTTP beyond the bare node:http floor. */
    textBoundAtHttpFloor: number;
  };
  clientCpuMsPerTextRequest: number;
  /** The service's main thread (HTTP, JSON, tokenizing, batching), per one-text request; null off Linux. */
  mainThreadCpuMsPerTextRequest: number | null;
  httpFloor: HttpFloor;
  exitCode: number | null;
}

async function benchPrecision(precision: string): Promise<PrecisionResult> {
  const { dir, manifest } = await modelFor(precision);
  const onnxMB =
    Object.entries(manifest.files)
      .filter(([f]) => f.includes('.onnx'))
      .reduce((n, [f]) => n + statSync(join(dir, f)).size, 0) /
    2 ** 20;
  const tokenizer = new WordPieceTokenizer(readFileSync(join(dir, 'vocab.txt'), 'utf8'));
  const tokenize = (s: string): number[] => tokenizer.encode(preCaption(s, 30), 30).ids;

  log(`${precision}: ceiling (raw session.run)`);
  const image = await sweep(() => rawImageTower(dir, manifest.image_res, sessions), imageBatches, base);
  const text = await sweep(() => rawTextTower(dir, tokenize, sessions), textBatches, base / 2);

  log(`${precision}: service`);
  const svc = await startService(dir, serveArgs);
  const rssWarmMB = rssMB(svc.child.pid!);
  const textSpecs: RequestSpec[] = CAPTIONS.map((text) => ({
    path: '/embed/text',
    headers: { 'content-type': 'application/json' },
    body: Buffer.from(JSON.stringify({ text })),
  }));
  const textRequest = (i: number): RequestSpec => textSpecs[i % textSpecs.length]!;
  const multiSpecs: RequestSpec[] = CAPTIONS.map((_, i) => ({
    path: '/embed/text',
    headers: { 'content-type': 'application/json' },
    body: Buffer.from(
      JSON.stringify({
        texts: Array.from({ length: TEXTS_PER_REQUEST }, (_, j) => CAPTIONS[(i + j) % CAPTIONS.length]),
      }),
    ),
  }));
  const multiRequest = (i: number): RequestSpec => multiSpecs[i % multiSpecs.length]!;
  const mp = multipartImage(photo, 'photo.jpg');
  const imageSpec: RequestSpec = { path: '/embed/image', headers: mp.headers, body: mp.body };
  const imageRequest = (): RequestSpec => imageSpec;
  await checkReplies(svc.origin, [textSpecs[0]!, imageSpec]);
  const textLoads: LoadResult[] = [];
  for (const c of concurrencies) {
    const r = await closedLoop(svc.origin, textRequest, c, base, 1);
    log(`  text  c=${c}: ${r.throughput}/s p50 ${r.p50} ms p99 ${r.p99} ms (${r.errors} errors)`);
    textLoads.push(r);
  }
  const bestImage = Math.max(...image.map((p) => p.itemsPerSecond));
  // Long enough for each client to complete several requests at this concurrency.
  const imageWindow = (c: number) => ({
    seconds: Math.min(120, Math.max(base, Math.ceil((3 * c) / bestImage))),
    warmup: Math.min(30, Math.ceil(c / bestImage) + 2),
  });
  const imageLoads: LoadResult[] = [];
  for (const c of concurrencies) {
    const w = imageWindow(c);
    const r = await closedLoop(svc.origin, imageRequest, c, w.seconds, w.warmup);
    log(`  image c=${c}: ${r.throughput}/s p50 ${r.p50} ms p99 ${r.p99} ms (${r.errors} errors)`);
    imageLoads.push(r);
  }
  const rssAfterLoadMB = rssMB(svc.child.pid!);

  // The ratios: this machine's speed drifts by ±10 % within minutes, more than the effects being
  // measured, so raw runs and service runs alternate in short slices (the service idles while the
  // raw session runs, and the other way round) and each ratio compares the pooled slices.
  log(`${precision}: paired ratios (${rounds} interleaved rounds)`);
  const best = (pts: CeilingPoint[]) => pts.reduce((a, b) => (b.itemsPerSecond > a.itemsPerSecond ? b : a));
  const imageBatch = best(image).batch;
  const textBatch = best(text).batch;
  const rawImage = await rawImageTower(dir, manifest.image_res, sessions);
  const rawText = await rawTextTower(dir, tokenize, sessions);
  const slices = {
    imageRaw: [] as number[],
    imageService: [] as number[],
    textRaw: [] as number[],
    textService: [] as number[],
    textMultiService: [] as number[],
    b1Ms: [] as number[],
    c1P50Ms: [] as number[],
  };
  let clientCpuMs = 0;
  let clientRequests = 0;
  let mainCpuMs = 0;
  for (let r = 0; r < rounds; r++) {
    slices.imageRaw.push((await rawImage.measure(imageBatch, base / 2)).itemsPerSecond);
    // At least 60 images per slice: a closed loop counts whole completions.
    const w = imageWindow(PAIRED_IMAGE_CONCURRENCY);
    slices.imageService.push(
      (
        await closedLoop(
          svc.origin,
          imageRequest,
          PAIRED_IMAGE_CONCURRENCY,
          Math.max(w.seconds, Math.ceil(60 / bestImage)),
          w.warmup,
        )
      ).throughput,
    );
    slices.textRaw.push((await rawText.measure(textBatch, base / 4)).itemsPerSecond);
    const cpu0 = process.cpuUsage();
    const main0 = mainThreadCpuMs(svc.child.pid!);
    const t = await closedLoop(svc.origin, textRequest, PAIRED_TEXT_CONCURRENCY, base / 2, 1);
    const cpu = process.cpuUsage(cpu0);
    const main1 = mainThreadCpuMs(svc.child.pid!);
    clientCpuMs += (cpu.user + cpu.system) / 1000;
    clientRequests += t.sent;
    if (main0 !== undefined && main1 !== undefined) mainCpuMs += main1 - main0;
    slices.textService.push(t.throughput);
    const m = await closedLoop(svc.origin, multiRequest, PAIRED_TEXT_CONCURRENCY / TEXTS_PER_REQUEST, base / 2, 1);
    slices.textMultiService.push(round(m.throughput * TEXTS_PER_REQUEST, 1));
    slices.b1Ms.push((await rawText.measure(1, base / 5)).msPerRun);
    slices.c1P50Ms.push((await closedLoop(svc.origin, textRequest, 1, base / 3, 0.5)).p50);
    log(
      `  round ${r + 1}: images ${slices.imageService.at(-1)} vs ${slices.imageRaw.at(-1)}/s, texts ${slices.textService.at(-1)} (${slices.textMultiService.at(-1)} sent ${TEXTS_PER_REQUEST} a request) vs ${slices.textRaw.at(-1)}/s, single text ${slices.c1P50Ms.at(-1)} vs ${slices.b1Ms.at(-1)} ms`,
    );
  }
  await Promise.all([rawImage.release(), rawText.release()]);
  log(`${precision}: bare node:http server under the same text load`);
  const httpFloor = await measureHttpFloor(textSpecs, PAIRED_TEXT_CONCURRENCY, base / 2);
  // The raw session keeps every core busy: a text costs cores / rate of CPU there, and a request's
  // HTTP CPU, spread over the same cores, adds to its time at best without slowing the session.
  const rawTextMs = 1000 / mean(slices.textRaw);
  const textBoundAtHttpFloor =
    rawTextMs / (rawTextMs + (httpFloor.serverCpuMs + httpFloor.clientCpuMs) / cpus().length);
  const stages = await stageTimings(svc.origin);
  const exitCode = await svc.stop();

  const spread = (service: number[], raw: number[]) => service.map((x, i) => round(x / raw[i]!, 3));
  const paired: Paired = {
    rounds,
    image: {
      concurrency: PAIRED_IMAGE_CONCURRENCY,
      batch: imageBatch,
      service: slices.imageService,
      raw: slices.imageRaw,
      perRound: spread(slices.imageService, slices.imageRaw),
    },
    text: {
      concurrency: PAIRED_TEXT_CONCURRENCY,
      batch: textBatch,
      service: slices.textService,
      raw: slices.textRaw,
      perRound: spread(slices.textService, slices.textRaw),
    },
    textsPerRequest: {
      concurrency: PAIRED_TEXT_CONCURRENCY / TEXTS_PER_REQUEST,
      textsPerRequest: TEXTS_PER_REQUEST,
      batch: textBatch,
      service: slices.textMultiService,
      raw: slices.textRaw,
      perRound: spread(slices.textMultiService, slices.textRaw),
    },
    singleText: { serviceP50Ms: slices.c1P50Ms, rawB1Ms: slices.b1Ms },
  };
  return {
    precision,
    model: manifest.name,
    onnxMB: round(onnxMB, 1),
    ceiling: { image, text },
    service: { image: imageLoads, text: textLoads },
    coldStartMs: Math.round(svc.coldStartMs),
    rssWarmMB,
    rssAfterLoadMB,
    stages,
    paired,
    ratios: {
      imageServiceVsCeiling: round(mean(slices.imageService) / mean(slices.imageRaw), 3),
      textServiceVsCeiling: round(mean(slices.textService) / mean(slices.textRaw), 3),
      textsPerRequestServiceVsCeiling: round(mean(slices.textMultiService) / mean(slices.textRaw), 3),
      textBoundAtHttpFloor: round(textBoundAtHttpFloor, 3),
      singleTextLatencyOverheadMs: round(mean(slices.c1P50Ms) - mean(slices.b1Ms), 2),
    },
    clientCpuMsPerTextRequest: round(clientCpuMs / Math.max(1, clientRequests), 3),
    mainThreadCpuMsPerTextRequest: mainCpuMs ? round(mainCpuMs / Math.max(1, clientRequests), 3) : null,
    httpFloor: {
      requestsPerSecond: httpFloor.requestsPerSecond,
      serverCpuMs: round(httpFloor.serverCpuMs, 3),
      clientCpuMs: round(httpFloor.clientCpuMs, 3),
    },
    exitCode,
  };
}

/** The load generator reads only statuses: check once that the service answers with real vectors. */
async function checkReplies(origin: string, specs: RequestSpec[]): Promise<void> {
  for (const r of specs) {
    const res = await fetch(origin + r.path, { method: 'POST', headers: r.headers, body: r.body });
    const json = (await res.json()) as { dim?: number; embeddings?: number[][] };
    if (res.status !== 200 || json.embeddings?.[0]?.length !== json.dim)
      throw new Error(`${r.path} answered ${res.status}: ${JSON.stringify(json).slice(0, 200)}`);
  }
}

interface PairedTower {
  concurrency: number;
  batch: number;
  /** items/s per round: the service at `concurrency`, the raw session at `batch` */
  service: number[];
  raw: number[];
  perRound: number[];
}

interface Paired {
  rounds: number;
  image: PairedTower;
  text: PairedTower;
  textsPerRequest: PairedTower & { textsPerRequest: number };
  singleText: { serviceP50Ms: number[]; rawB1Ms: number[] };
}

/** int8 against fp32 on the same weights: cosine of the embeddings of the fixture images and texts. */
async function int8Fidelity(): Promise<{ image: { mean: number; min: number }; text: { mean: number; min: number } }> {
  const load = (p: string) =>
    ModelPool.load([join(PACKAGE_ROOT, 'bench', '.models', `albef_4m-${p}`)], resolveConfig({ fusion: false }));
  const [f, q] = [await load('fp32'), await load('int8')];
  const fm = f.get();
  const qm = q.get();
  const imgDir = join(PACKAGE_ROOT, 'test', 'fixtures', 'images');
  const size = fm.manifest.preprocessing.image.size;
  const pixels = await Promise.all(
    ['photo.jpg', 'shapes.png', 'gray.png', 'wide.jpg', 'rotated.jpg', 'tiny.png'].map(async (name) => {
      const r = await preprocessImage(readFileSync(join(imgDir, name)), { size, maxPixels: 1e8 });
      if (!r.ok) throw new Error(r.message);
      return r.rgb;
    }),
  );
  const cos = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + v * b[i]!, 0); // unit vectors
  // runImages hands its buffers to the session's worker: each model gets its own copies.
  const fi = await fm.runImages(pixels.map((p) => p.slice()));
  const qi = await qm.runImages(pixels);
  const imgCos = fi.map((v, i) => cos(v, qi[i]!));
  const ids = CAPTIONS.concat(['a dog', 'two men play frisbee on the grass', 'a plate of food with a fork']).map(
    (c) => fm.tokenizer.encode(preCaption(c, 30), 30).ids,
  );
  const ft = await fm.runTexts(ids);
  const qt = await qm.runTexts(ids);
  const txtCos = ft.map((v, i) => cos(v, qt[i]!));
  await Promise.all([f.release(), q.release()]);
  const summary = (xs: number[]) => ({ mean: round(mean(xs), 5), min: round(Math.min(...xs), 5) });
  return { image: summary(imgCos), text: summary(txtCos) };
}

function table(results: PrecisionResult[]): string {
  const lines: string[] = [];
  lines.push('| | ' + results.map((r) => r.precision).join(' | ') + ' |');
  lines.push('|---|' + results.map(() => '---:').join('|') + '|');
  const row = (label: string, f: (r: PrecisionResult) => string | number) =>
    lines.push(`| ${label} | ${results.map(f).join(' | ')} |`);
  for (const b of imageBatches)
    row(`ceiling image b${b} (img/s)`, (r) => r.ceiling.image.find((p) => p.batch === b)?.itemsPerSecond ?? '');
  for (const b of textBatches)
    row(`ceiling text b${b} (texts/s)`, (r) => r.ceiling.text.find((p) => p.batch === b)?.itemsPerSecond ?? '');
  for (const c of concurrencies)
    row(`service image c${c}: img/s · p50/p95/p99 ms`, (r) => {
      const l = r.service.image.find((x) => x.concurrency === c)!;
      return `${l.throughput} · ${Math.round(l.p50)}/${Math.round(l.p95)}/${Math.round(l.p99)}`;
    });
  for (const c of concurrencies)
    row(`service text c${c}: texts/s · p50/p95/p99 ms`, (r) => {
      const l = r.service.text.find((x) => x.concurrency === c)!;
      return `${l.throughput} · ${l.p50}/${l.p95}/${l.p99}`;
    });
  row(
    `service / ceiling, images (${rounds} interleaved rounds: service c${PAIRED_IMAGE_CONCURRENCY} vs raw best batch; per round)`,
    (r) =>
      `${(r.ratios.imageServiceVsCeiling * 100).toFixed(1)} % (b${r.paired.image.batch}; ${r.paired.image.perRound.map((x) => Math.round(x * 100)).join('/')})`,
  );
  row(
    `service / ceiling, texts (same, service c${PAIRED_TEXT_CONCURRENCY})`,
    (r) =>
      `${(r.ratios.textServiceVsCeiling * 100).toFixed(1)} % (b${r.paired.text.batch}; ${r.paired.text.perRound.map((x) => Math.round(x * 100)).join('/')})`,
  );
  row(
    `service / ceiling, texts sent ${TEXTS_PER_REQUEST} a request (same, service c${PAIRED_TEXT_CONCURRENCY / TEXTS_PER_REQUEST})`,
    (r) =>
      `${(r.ratios.textsPerRequestServiceVsCeiling * 100).toFixed(1)} % (${r.paired.textsPerRequest.perRound.map((x) => Math.round(x * 100)).join('/')})`,
  );
  row(
    'CPU per one-text request (ms): service main thread · bare node:http server · load generator',
    (r) => `${r.mainThreadCpuMsPerTextRequest ?? '–'} · ${r.httpFloor.serverCpuMs} · ${r.httpFloor.clientCpuMs}`,
  );
  row(
    'one text per request: best service / ceiling with only the bare node:http CPU',
    (r) => `${(r.ratios.textBoundAtHttpFloor * 100).toFixed(1)} %`,
  );
  row('single text: service c1 p50 − raw b1 (ms, interleaved)', (r) => r.ratios.singleTextLatencyOverheadMs);
  row('load generator CPU per text request (ms, same 2 cores)', (r) => r.clientCpuMsPerTextRequest);
  row('ONNX files (MB)', (r) => r.onnxMB);
  row('RSS loaded + warm (MB) · × files', (r) => `${r.rssWarmMB} · ${(r.rssWarmMB / r.onnxMB).toFixed(2)}×`);
  row('RSS after the load runs (MB)', (r) => r.rssAfterLoadMB);
  row('cold start to /readyz 200 (ms)', (r) => r.coldStartMs);
  const perImage = (s?: { seconds: number; count: number }) => (s ? ((1000 * s.seconds) / s.count).toFixed(1) : '');
  row(
    'decode per image in the service: waiting (worker, running inference) · decoding (ms)',
    (r) => `${perImage(r.stages.decode_wait)} · ${perImage(r.stages.decode)}`,
  );
  return lines.join('\n');
}

function charts(results: PrecisionResult[], outDir: string): void {
  const colors: Record<string, string> = { fp32: '#1f77b4', int8: '#d62728', fp16: '#2ca02c' };
  for (const modality of ['image', 'text'] as const) {
    const series: Series[] = [];
    for (const r of results) {
      const color = colors[r.precision] ?? '#555';
      series.push({
        name: `service ${r.precision}`,
        color,
        points: r.service[modality].map((l) => [l.concurrency, l.throughput]),
      });
      const best = Math.max(...r.ceiling[modality].map((p) => p.itemsPerSecond));
      series.push({ name: `ceiling ${r.precision}`, color, dashed: true, points: concurrencies.map((c) => [c, best]) });
    }
    writeFileSync(
      join(outDir, `${modality}-throughput.svg`),
      lineChart(series, {
        title: `${modality}s/s: service vs raw ONNX Runtime`,
        xLabel: 'concurrent clients',
        yLabel: `${modality}s per second`,
      }),
    );
    const lat: Series[] = results.flatMap((r) => {
      const color = colors[r.precision] ?? '#555';
      return [
        {
          name: `${r.precision} p50`,
          color,
          points: r.service[modality].map((l) => [l.concurrency, l.p50] as [number, number]),
        },
        {
          name: `${r.precision} p99`,
          color,
          dashed: true,
          points: r.service[modality].map((l) => [l.concurrency, l.p99] as [number, number]),
        },
      ];
    });
    writeFileSync(
      join(outDir, `${modality}-latency.svg`),
      lineChart(lat, {
        title: `${modality} request latency`,
        xLabel: 'concurrent clients',
        yLabel: 'ms (log scale)',
        logY: true,
      }),
    );
  }
}

const decodeOnly = values['decode-only'];
const precisions = decodeOnly
  ? []
  : values.model
    ? ['model']
    : (values.precision ?? 'fp32').split(',').map((s) => s.trim());
mkdirSync(values.out, { recursive: true });
const cpuFlags = cpuFeatures();
const machine = {
  cpu: cpus()[0]?.model,
  cores: cpus().length,
  cpuFlags: cpuFlags.flags,
  int8Kernel: cpuFlags.int8Kernel,
  memoryGB: round(totalmem() / 2 ** 30, 1),
  node: process.version,
  onnxruntime: ort.env.versions.node,
  date: new Date().toISOString(),
};
log(`machine: ${JSON.stringify(machine)}`);
const results: PrecisionResult[] = [];
const reranks: { precision: string; rerank: RerankResult }[] = [];
const evals: { precision: string; bench: EvalBench }[] = [];
const evalOnly = values['eval-only'];
const retrievalOnly = values['retrieval-only'];
const retrievals: { precision: string; bench: RetrievalBench }[] = [];
const only = values['rerank-only'] || evalOnly || retrievalOnly;
for (const p of precisions) {
  if (!only) {
    const r = await benchPrecision(p);
    results.push(r);
    writeFileSync(
      join(values.out, `${r.precision === 'model' ? 'model' : r.precision}.json`),
      JSON.stringify({ machine, quick, sessions, serveArgs, ...r }, null, 2) + '\n',
    );
  }
  if (!pairedOnly && (!only || values['rerank-only'])) {
    const { dir, manifest } = await modelFor(p);
    if (!manifest.fusion) {
      log(`${p}: ${dir} has no fusion part (converter ${manifest.converter_version}): no re-ranking measured`);
      continue;
    }
    const tokenizer = new WordPieceTokenizer(readFileSync(join(dir, 'vocab.txt'), 'utf8'));
    const rerank = await benchRerank(
      dir,
      manifest.image_res,
      (s) => tokenizer.encode(preCaption(s, 30), 30).ids,
      photo,
      base,
      quick ? [1] : [1, 2],
      log,
    );
    reranks.push({ precision: p, rerank });
    writeFileSync(join(values.out, `rerank-${p}.json`), JSON.stringify({ machine, quick, ...rerank }, null, 2) + '\n');
  }
  if (!pairedOnly && (!only || evalOnly)) {
    const { dir, manifest } = await modelFor(p);
    if (!manifest.fusion) continue;
    const bench = await benchEval(dir, manifest, photo, {
      images: quick ? 20 : 100,
      ks: quick ? [10] : [16, 32],
      seconds: base / 2,
      log,
    });
    evals.push({ precision: p, bench });
    writeFileSync(join(values.out, `eval-${p}.json`), JSON.stringify({ machine, quick, ...bench }, null, 2) + '\n');
  }
  if (!pairedOnly && (!only || retrievalOnly)) {
    const { dir, manifest } = await modelFor(p);
    if (!manifest.fusion) continue;
    const tokenizer = new WordPieceTokenizer(readFileSync(join(dir, 'vocab.txt'), 'utf8'));
    const bench = await benchRetrieval(dir, manifest, photo, (s) => tokenizer.encode(preCaption(s, 30), 30).ids, {
      images: quick ? 16 : 96,
      texts: quick ? 256 : 2048,
      queries: quick ? 2 : 5,
      seconds: base / 2,
      log,
    });
    retrievals.push({ precision: p, bench });
    writeFileSync(
      join(values.out, `retrieval-${p}.json`),
      JSON.stringify({ machine, quick, ...bench }, null, 2) + '\n',
    );
  }
}
let fidelity: Awaited<ReturnType<typeof int8Fidelity>> | undefined;
if (!values.model && !only && precisions.includes('fp32') && precisions.includes('int8')) {
  fidelity = await int8Fidelity();
  writeFileSync(join(values.out, 'int8-fidelity.json'), JSON.stringify({ machine, ...fidelity }, null, 2) + '\n');
}
if (!pairedOnly && results.length) charts(results, values.out);
let decode: DecodeResult | undefined;
if (decodeOnly || (!pairedOnly && !only)) {
  decode = await benchDecode({
    rounds: quick ? 2 : Math.max(4, rounds),
    sliceSeconds: quick ? 0.2 : 0.5,
    serveArgs,
    log,
  });
  writeFileSync(join(values.out, 'decode.json'), JSON.stringify({ machine, quick, ...decode }, null, 2) + '\n');
}
const summary = [
  `Machine: ${machine.cpu} (flags: ${machine.cpuFlags.join(' ') || 'none of ' + KERNEL_FLAGS.join(' ')}; int8 kernel ${machine.int8Kernel}), ${machine.cores} cores, Node ${machine.node}, onnxruntime-node ${machine.onnxruntime}, ${machine.date.slice(0, 10)}${quick ? ' (quick run)' : ''}${sessions > 1 ? `; ${sessions} sessions per tower side by side, service and ceiling` : ''}`,
  '',
  ...(results.length ? [table(results)] : []),
];
if (reranks.length)
  summary.push(
    '',
    'Re-ranking (`POST /v1/rerank`, JSON with base64 JPEGs; raw = the same graph calls on `session.run`):',
    '',
    rerankTable(reranks),
  );
if (retrievals.length)
  summary.push(
    '',
    'Collections (LanceDB, exact search; synthetic images and captions; search over HTTP, p50):',
    '',
    retrievalTable(retrievals),
  );
if (evals.length)
  summary.push(
    '',
    '`albef-embed eval` (synthetic Flickr-shaped set, random weights: the cost, not the recall; hours projected with no pair counted twice):',
    '',
    evalTable(evals),
  );
if (fidelity)
  summary.push(
    '',
    `int8 vs fp32 on the full-size synthetic model: image cosine mean ${fidelity.image.mean} (min ${fidelity.image.min}), text cosine mean ${fidelity.text.mean} (min ${fidelity.text.min})`,
  );
if (decode)
  summary.push(
    '',
    `Image decode + PIL-exact resize to 384 px, ${decode.rounds} interleaved rounds (medians; standalone: one thread, Pillow alternating with it; service: a tiny model at 384 px, one request at a time):`,
    '',
    decodeTable(decode),
  );
writeFileSync(join(values.out, decodeOnly ? 'decode-summary.md' : 'summary.md'), summary.join('\n') + '\n');
process.stdout.write(summary.join('\n') + '\n');
