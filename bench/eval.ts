// `albef-embed eval` on the full-size model (random weights: the recall means nothing, the cost is
// real): a synthetic Flickr-shaped set (images × 5 captions), the ITM stage's pairs per second
// against the raw fusion graph's ceiling at its best run size, the other stages' times, and the hours
// Flickr30K (1 000 images, 5 000 captions, k 128) and COCO (5 000 × 25 000, k 256) would take here.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import sharp from 'sharp';
import { Metrics } from '../src/core/metrics.js';
import type { ModelManifest } from '../src/core/model-manifest.js';
import { createOrtSession } from '../src/inference/ort-session.js';
import { annotationsFromJson } from '../src/retrieval/annotations.js';
import { resolveConfig } from '../src/service/config.js';
import { evaluateRetrieval, type EvalProgress, type EvalStage } from '../src/service/evaluation.js';
import { Service } from '../src/service/service.js';
import { CAPTIONS } from './ceiling.js';
import { median, round, timeRuns } from './stats.js';

export interface EvalRun {
  k: number;
  images: number;
  texts: number;
  pairs: number;
  pairsPerRun: number;
  seconds: Record<EvalStage, number>;
  itmPairsPerSecond: number;
  /** itmPairsPerSecond / the raw fusion graph's best pairs per second */
  ofCeiling: number;
}

export interface EvalBench {
  /** Raw session.run of fusion.onnx: one image with M pairs per run, texts of the set's median length. */
  ceiling: { pairsPerRun: number; msPerRun: number; pairsPerSecond: number }[];
  textTokens: number;
  runs: EvalRun[];
  projection: { set: string; images: number; texts: number; k: number; pairs: number; hours: number }[];
}

const SHAPES = [
  { set: 'Flickr30K test', images: 1000, texts: 5000, k: 128 },
  { set: 'COCO 5k test', images: 5000, texts: 25000, k: 256 },
];

/** `images` distinct 640×480 JPEGs (crops of the photo at other places and scales) and five captions each. */
async function syntheticSet(photo: Buffer, images: number, dir: string): Promise<unknown[]> {
  const meta = await sharp(photo).metadata();
  const ann = [];
  for (let i = 0; i < images; i++) {
    const w = Math.round(meta.width * (0.5 + (0.5 * ((i * 7) % 11)) / 10));
    const h = Math.round(meta.height * (0.5 + (0.5 * ((i * 5) % 11)) / 10));
    const left = (i * 37) % (meta.width - w + 1);
    const top = (i * 23) % (meta.height - h + 1);
    const file = `img${String(i).padStart(4, '0')}.jpg`;
    await sharp(photo)
      .extract({ left, top, width: w, height: h })
      .resize(640, 480, { fit: 'fill' })
      .modulate({ hue: (i * 29) % 360 })
      .jpeg({ quality: 90 })
      .toFile(join(dir, file));
    const caption = Array.from({ length: 5 }, (_, c) => `${CAPTIONS[(i + c) % CAPTIONS.length]} number ${i} view ${c}`);
    ann.push({ image: file, caption });
  }
  return ann;
}

/** The raw fusion graph's pairs per second for runs of one image with M pairs of `len` text tokens. */
async function fusionCeiling(
  dir: string,
  manifest: ModelManifest,
  len: number,
  sizes: number[],
  seconds: number,
): Promise<EvalBench['ceiling']> {
  const { session } = await createOrtSession(join(dir, 'fusion.onnx'), { provider: 'cpu', intraOpThreads: 0 });
  const { vision, text } = manifest.architecture;
  const tokens = (manifest.image_res / vision.patch) ** 2 + 1;
  const random = (n: number): Float32Array => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
  const image = random(tokens * vision.dim);
  const out = [];
  for (const M of sizes) {
    const feeds = {
      text_states: new ort.Tensor('float32', random(M * len * text.dim), [M, len, text.dim]),
      text_mask: new ort.Tensor('int64', new BigInt64Array(M * len).fill(1n), [M, len]),
      image_states: new ort.Tensor('float32', image, [1, tokens, vision.dim]),
    };
    const ms = median(await timeRuns(() => session.run(feeds), seconds));
    out.push({ pairsPerRun: M, msPerRun: round(ms, 1), pairsPerSecond: round((1000 * M) / ms, 1) });
  }
  await session.release();
  return out;
}

export async function benchEval(
  dir: string,
  manifest: ModelManifest,
  photo: Buffer,
  options: { images: number; ks: number[]; seconds: number; log: (m: string) => void },
): Promise<EvalBench> {
  const work = await mkdtemp(join(tmpdir(), 'albef-bench-eval-'));
  try {
    options.log(`eval: a synthetic set of ${options.images} images × 5 captions`);
    const annJson = await syntheticSet(photo, options.images, work);
    await writeFile(join(work, 'ann.json'), JSON.stringify(annJson));
    const annotations = annotationsFromJson(annJson);
    const service = new Service(resolveConfig({ models: [dir], warmup: true, stateCacheImages: 0 }), new Metrics());
    await service.start();
    const model = service.requireEmbedder().model();
    const lengths = annotations.texts.map((t) => model.tokenizer.encode(t, 30).ids.length).sort((a, b) => a - b);
    const textTokens = lengths[lengths.length >> 1]!;
    const runs: EvalRun[] = [];
    let ceiling: EvalBench['ceiling'] = [];
    try {
      options.log(`eval: the raw fusion graph (${textTokens} text tokens per pair)`);
      ceiling = await fusionCeiling(dir, manifest, textTokens, [16, 32, 64, 128, 256], options.seconds);
      const best = Math.max(...ceiling.map((c) => c.pairsPerSecond));
      const pairsPerRun = ceiling.find((c) => c.pairsPerSecond === best)!.pairsPerRun;
      for (const k of options.ks) {
        options.log(`eval: k ${k}, ${pairsPerRun} pairs per run`);
        const seconds = { texts: 0, images: 0, itc: 0, itm: 0 };
        let stage: EvalStage | undefined;
        let since = performance.now();
        const onProgress = (p: EvalProgress): void => {
          const now = performance.now();
          if (stage) seconds[stage] += (now - since) / 1000;
          stage = p.stage;
          since = now;
        };
        const report = await evaluateRetrieval(model, service.requireIntake(), {
          annotations,
          annotationsSha256: `bench-${k}`,
          imageRoot: work,
          kTest: k,
          workDir: join(work, `work-k${k}`),
          pairsPerRun,
          onProgress,
        });
        if (stage) seconds[stage] += (performance.now() - since) / 1000;
        const itmPairsPerSecond = report.pairs / seconds.itm;
        runs.push({
          k,
          images: report.images,
          texts: report.texts,
          pairs: report.pairs,
          pairsPerRun,
          seconds: {
            texts: round(seconds.texts),
            images: round(seconds.images),
            itc: round(seconds.itc, 3),
            itm: round(seconds.itm),
          },
          itmPairsPerSecond: round(itmPairsPerSecond, 1),
          ofCeiling: round(itmPairsPerSecond / best, 3),
        });
        options.log(
          `eval: k ${k}: ${round(itmPairsPerSecond, 1)} pairs/s, ${round((100 * itmPairsPerSecond) / best, 1)} % of the ceiling`,
        );
      }
    } finally {
      await service.close();
    }
    // Upper bound on the pairs (no image–text pair counted in both directions), this run's rates.
    const last = runs.at(-1)!;
    const perImage = last.seconds.images / last.images;
    const perText = last.seconds.texts / last.texts;
    const projection = SHAPES.map((s) => {
      const pairs = s.images * s.k + s.texts * s.k;
      const seconds = pairs / last.itmPairsPerSecond + s.images * perImage + s.texts * perText;
      return { ...s, pairs, hours: round(seconds / 3600, 2) };
    });
    return { ceiling, textTokens, runs, projection };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export function evalTable(rows: { precision: string; bench: EvalBench }[]): string {
  const lines = [
    '| precision | k | images × texts | pairs | pairs/s (eval ITM stage) | raw fusion ceiling (best run size) | of ceiling | Flickr30K (h) | COCO 5k (h) |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const { precision, bench } of rows) {
    const best = bench.ceiling.reduce((a, b) => (b.pairsPerSecond > a.pairsPerSecond ? b : a));
    for (const r of bench.runs) {
      const [flickr, coco] = bench.projection;
      lines.push(
        `| ${precision} | ${r.k} | ${r.images} × ${r.texts} | ${r.pairs} | ${r.itmPairsPerSecond} | ${best.pairsPerSecond} (M = ${best.pairsPerRun}) | ${Math.round(r.ofCeiling * 1000) / 10} % | ${flickr!.hours} | ${coco!.hours} |`,
      );
    }
  }
  return lines.join('\n');
}
