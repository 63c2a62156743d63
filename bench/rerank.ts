// Re-ranking on the full-size model: the matching graphs run raw (session.run, the calls the service
// makes for a request: image states per distinct image at the service's image batch, text states for
// the texts, fusion on pairs grouped by image in batches of --max-batch-pairs), then the service over
// HTTP for 1 text × 16 images and 1 image × 64 texts, with every image new (cache misses) and with
// the same images each time (cache hits); what grouping pairs by image saves in the fusion graph; and
// the memory one cached image costs.

import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { createOrtSession } from '../src/inference/ort-session.js';
import { jpegWithComment } from '../kit/images.js';
import { CAPTIONS } from './ceiling.js';
import { closedLoop, type LoadResult, type RequestSpec } from './load.js';
import { rssMB, startService } from './service.js';
import { median, round, timeRuns } from './stats.js';

export interface RerankScenario {
  name: string;
  pairs: number;
  cache: 'miss' | 'hit';
  /** ms per request of the same graph calls run raw, one after another */
  rawMsPerRequest: number;
  rawPairsPerSecond: number;
  service: LoadResult[];
}

export interface RerankResult {
  scenarios: RerankScenario[];
  raw: Record<string, number>;
  /** ms per pair in the fusion graph: 64 texts against one image grouped (I=1, M=64) and as 64 separate images */
  grouping: { groupedMsPerPair: number; ungroupedMsPerPair: number };
  cache: { computedMBPerImage: number; measuredMBPerImage: number; images: number };
  rssWarmMB: number;
  rssWarmNoFusionMB: number;
}

const IMAGE_BATCH = 2;
const PAIR_BATCH = 32;

const variant = (jpeg: Buffer, n: number): Buffer => jpegWithComment(jpeg, `albef-bench ${n}`);

const dataUri = (b: Buffer) => `data:image/jpeg;base64,${b.toString('base64')}`;
const json = (body: unknown): RequestSpec => ({
  path: '/v1/rerank',
  headers: { 'content-type': 'application/json' },
  body: Buffer.from(JSON.stringify(body)),
});

export async function benchRerank(
  dir: string,
  imageRes: number,
  tokenize: (s: string) => number[],
  photo: Buffer,
  seconds: number,
  concurrencies: number[],
  log: (m: string) => void,
): Promise<RerankResult> {
  const open = async (f: string) =>
    (await createOrtSession(join(dir, f), { provider: 'cpu', intraOpThreads: 0 })).session;
  const [image, imageStates, textStates, fusion] = [
    await open('image.onnx'),
    await open('image_states.onnx'),
    await open('text_states.onnx'),
    await open('fusion.onnx'),
  ];
  const random = (n: number) => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
  const pixels = (b: number) => ({
    pixel_values: new ort.Tensor('float32', random(b * 3 * imageRes * imageRes), [b, 3, imageRes, imageRes]),
  });
  const texts = (b: number) => {
    const rows = Array.from({ length: b }, (_, i) => tokenize(`${CAPTIONS[i % CAPTIONS.length]} ${i}`));
    const len = Math.max(...rows.map((r) => r.length));
    const ids = new BigInt64Array(b * len);
    const mask = new BigInt64Array(b * len);
    rows.forEach((r, i) => r.forEach((id, j) => ((ids[i * len + j] = BigInt(id)), (mask[i * len + j] = 1n))));
    return {
      input_ids: new ort.Tensor('int64', ids, [b, len]),
      attention_mask: new ort.Tensor('int64', mask, [b, len]),
    };
  };
  const one = await imageStates.run(pixels(1));
  const oneText = await textStates.run(texts(1));
  const [, tokens, dim] = one.states!.dims as [number, number, number];
  const [, len, tdim] = oneText.states!.dims as [number, number, number];
  /** Fusion feeds for I images with M pairs each. */
  const pairs = (I: number, M: number) => {
    const images = new Float32Array(I * tokens * dim);
    for (let i = 0; i < I; i++) images.set(one.states!.data as Float32Array, i * tokens * dim);
    const states = new Float32Array(I * M * len * tdim);
    for (let p = 0; p < I * M; p++) states.set(oneText.states!.data as Float32Array, p * len * tdim);
    return {
      text_states: new ort.Tensor('float32', states, [I * M, len, tdim]),
      text_mask: new ort.Tensor('int64', new BigInt64Array(I * M * len).fill(1n), [I * M, len]),
      image_states: new ort.Tensor('float32', images, [I, tokens, dim]),
    };
  };
  const ms = async (feeds: Record<string, ort.Tensor>, session: ort.InferenceSession, s: number) =>
    median(await timeRuns(() => session.run(feeds), s));

  log('rerank: raw matching graphs');
  const raw: Record<string, number> = {};
  // The per-token image graph against the embedding graph, alternating (what its full last block costs).
  const batch = pixels(IMAGE_BATCH);
  const embedMs: number[] = [];
  const statesMs: number[] = [];
  for (let r = 0; r < 3; r++) {
    embedMs.push(await ms(batch, image, seconds / 6));
    statesMs.push(await ms(batch, imageStates, seconds / 6));
  }
  raw.imageBatchMs = median(embedMs);
  raw.imageStatesBatchMs = median(statesMs);
  raw.imageStatesB1Ms = await ms(pixels(1), imageStates, seconds / 2);
  raw.textStatesB1Ms = await ms(texts(1), textStates, seconds / 4);
  raw.textStatesB64Ms = await ms(texts(64), textStates, seconds / 2);
  raw.fusion16x1Ms = await ms(pairs(16, 1), fusion, seconds / 2);
  raw.fusion1x32Ms = await ms(pairs(1, PAIR_BATCH), fusion, seconds / 2);
  const grouping = {
    groupedMsPerPair: round((await ms(pairs(1, 64), fusion, seconds / 2)) / 64, 2),
    ungroupedMsPerPair: round((await ms(pairs(64, 1), fusion, seconds / 2)) / 64, 2),
  };
  await Promise.all([image.release(), imageStates.release(), textStates.release(), fusion.release()]);
  for (const k of Object.keys(raw)) raw[k] = round(raw[k]!, 1);

  // The calls the service makes per request (image batches of 2, pair batches of 32).
  const rawTextByImages = {
    miss: (16 / IMAGE_BATCH) * raw.imageStatesBatchMs + raw.textStatesB1Ms + raw.fusion16x1Ms,
    hit: raw.textStatesB1Ms + raw.fusion16x1Ms,
  };
  const rawImageByTexts = {
    miss: raw.imageStatesB1Ms + raw.textStatesB64Ms + (64 / PAIR_BATCH) * raw.fusion1x32Ms,
    hit: raw.textStatesB64Ms + (64 / PAIR_BATCH) * raw.fusion1x32Ms,
  };

  log('rerank: service');
  const noFusion = await startService(dir, ['--no-fusion']);
  const rssWarmNoFusionMB = rssMB(noFusion.child.pid!);
  await noFusion.stop();
  // A deadline long enough that a miss of 16 images at c4 is measured, not refused (30 s by default).
  const svc = await startService(dir, ['--state-cache-images', '256', '--request-timeout-ms', '300000']);
  const rssWarmMB = rssMB(svc.child.pid!);
  let n = 0;
  const gallery = Array.from({ length: 16 }, () => dataUri(variant(photo, n++)));
  const captions = Array.from({ length: 64 }, (_, i) => `${CAPTIONS[i % CAPTIONS.length]} ${i}`);
  const fixedImage = dataUri(variant(photo, n++));
  const make: Record<string, Record<'miss' | 'hit', () => RequestSpec>> = {
    '1 text × 16 images': {
      miss: () =>
        json({
          query: CAPTIONS[0],
          documents: Array.from({ length: 16 }, () => ({ image: dataUri(variant(photo, n++)) })),
        }),
      hit: () => json({ query: CAPTIONS[0], documents: gallery.map((image) => ({ image })) }),
    },
    '1 image × 64 texts': {
      miss: () => json({ query: { image: dataUri(variant(photo, n++)) }, documents: captions }),
      hit: () => json({ query: { image: fixedImage }, documents: captions }),
    },
  };
  // Memory per cached image: RSS after 64 new images, less RSS after a warm request.
  const check = await fetch(`${svc.origin}/v1/rerank`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: make['1 text × 16 images']!.hit().body,
  });
  if (check.status !== 200)
    throw new Error(`/v1/rerank answered ${check.status}: ${(await check.text()).slice(0, 200)}`);
  const before = rssMB(svc.child.pid!);
  for (let i = 0; i < 4; i++)
    await fetch(`${svc.origin}/v1/rerank`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: make['1 text × 16 images']!.miss().body,
    });
  const measuredMBPerImage = round((rssMB(svc.child.pid!) - before) / 64, 2);

  const scenarios: RerankScenario[] = [];
  for (const [name, kinds] of Object.entries(make)) {
    const pairsPerRequest = name.startsWith('1 text') ? 16 : 64;
    for (const cache of ['miss', 'hit'] as const) {
      const rawMs = (name.startsWith('1 text') ? rawTextByImages : rawImageByTexts)[cache];
      const service: LoadResult[] = [];
      for (const c of concurrencies) {
        // Requests made fresh per send for misses (new image bytes), once for hits; the misses before
        // may have pushed the hit request's images out of the cache, so it runs once first.
        const spec = cache === 'hit' ? kinds.hit() : undefined;
        if (spec) await fetch(svc.origin + spec.path, { method: 'POST', headers: spec.headers, body: spec.body });
        // Long enough for several requests per client at this concurrency (a miss costs seconds).
        const window = Math.min(90, Math.max(seconds, (4 * c * rawMs) / 1000));
        const r = await closedLoop(
          svc.origin,
          () => spec ?? kinds.miss(),
          c,
          window,
          Math.min(30, (c * rawMs) / 1000 + 1),
        );
        log(
          `  ${name}, cache ${cache}, c=${c}: ${round(r.throughput * pairsPerRequest, 1)} pairs/s, p50 ${r.p50} ms, p99 ${r.p99} ms (${r.errors} errors; raw ${round(rawMs, 0)} ms per request)`,
        );
        service.push(r);
      }
      scenarios.push({
        name,
        pairs: pairsPerRequest,
        cache,
        rawMsPerRequest: round(rawMs, 1),
        rawPairsPerSecond: round((pairsPerRequest * 1000) / rawMs, 1),
        service,
      });
    }
  }
  await svc.stop();
  return {
    scenarios,
    raw,
    grouping,
    cache: { computedMBPerImage: round(((tokens * dim + 256) * 4) / 2 ** 20, 2), measuredMBPerImage, images: 64 },
    rssWarmMB,
    rssWarmNoFusionMB,
  };
}

export function rerankTable(results: { precision: string; rerank: RerankResult }[]): string {
  const lines = [
    '| | ' + results.map((r) => r.precision).join(' | ') + ' |',
    '|---|' + results.map(() => '---:').join('|') + '|',
  ];
  const row = (label: string, f: (r: RerankResult) => string | number) =>
    lines.push(`| ${label} | ${results.map((r) => f(r.rerank)).join(' | ')} |`);
  const first = results[0]!.rerank;
  for (const [i, s] of first.scenarios.entries()) {
    for (const [j, l] of s.service.entries()) {
      row(`rerank ${s.name}, cache ${s.cache}, c${l.concurrency}: pairs/s · p50/p99 ms`, (r) => {
        const x = r.scenarios[i]!.service[j]!;
        return `${round(x.throughput * s.pairs, 1)} · ${Math.round(x.p50)}/${Math.round(x.p99)}`;
      });
    }
    row(
      `rerank ${s.name}, cache ${s.cache}: raw graphs, pairs/s (ms per request)`,
      (r) => `${r.scenarios[i]!.rawPairsPerSecond} (${Math.round(r.scenarios[i]!.rawMsPerRequest)})`,
    );
  }
  row(
    'fusion ms per pair, 64 texts × 1 image: grouped by image · as 64 images',
    (r) => `${r.grouping.groupedMsPerPair} · ${r.grouping.ungroupedMsPerPair}`,
  );
  row(
    'image tower, per-token graph · embedding graph (raw ms per image at b2, alternating)',
    (r) => `${round(r.raw.imageStatesBatchMs! / 2, 1)} · ${round(r.raw.imageBatchMs! / 2, 1)}`,
  );
  row('RSS loaded + warm, with fusion · --no-fusion (MB)', (r) => `${r.rssWarmMB} · ${r.rssWarmNoFusionMB}`);
  row(
    'state cache per image: computed · measured RSS (MB)',
    (r) => `${r.cache.computedMBPerImage} · ${r.cache.measuredMBPerImage}`,
  );
  return lines.join('\n');
}
