// ALBEF's first retrieval stage at COCO's size (5 000 images × 25 000 texts, dim 256, k_test 256) on
// synthetic unit vectors: the blocked pass (`itcStage`: top-k both ways and the ITC-only ranks without
// the cosine matrix) against the naive layout (the full float32 matrix, then top-k of its rows and
// columns). One variant per process, so that each peak RSS is its own.
//
//   node --import=./kit/ts-loader.mjs bench/itc-stage.ts --variant blocked [--block 64]
//   node --import=./kit/ts-loader.mjs bench/itc-stage.ts --variant naive
//   node --import=./kit/ts-loader.mjs bench/itc-stage.ts --images 1000 --texts 5000 --k 128   # Flickr30K

import { parseArgs } from 'node:util';
import { itcStage, similarityMatrix, topKColumns, topKRows, type Vectors } from '../src/retrieval/candidates.js';

const { values } = parseArgs({
  options: {
    variant: { type: 'string', default: 'blocked' },
    images: { type: 'string', default: '5000' },
    texts: { type: 'string', default: '25000' },
    dim: { type: 'string', default: '256' },
    k: { type: 'string', default: '256' },
    block: { type: 'string', default: '64' },
  },
});
const nI = Number(values.images);
const nT = Number(values.texts);
const dim = Number(values.dim);
const k = Number(values.k);
const perImage = Math.max(1, Math.floor(nT / nI));

/** Seeded uniform numbers (mulberry32) and Gaussian ones (Box–Muller). */
let seed = 12345;
const uniform = (): number => {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
  return (((x ^ (x >>> 14)) >>> 0) + 0.5) / 4294967296;
};
const gauss = (): number => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());

function normalise(data: Float32Array, v: number): void {
  let n = 0;
  for (let d = 0; d < dim; d++) n += data[v * dim + d]! ** 2;
  for (let d = 0; d < dim; d++) data[v * dim + d]! /= Math.sqrt(n);
}

// Images: random directions; texts: their image plus noise, so that ranks and heaps behave as in
// a real set (a text's own image near the top, most candidates rejected at once).
const images: Vectors = { data: new Float32Array(nI * dim), count: nI, dim };
for (let i = 0; i < nI; i++) {
  for (let d = 0; d < dim; d++) images.data[i * dim + d] = gauss();
  normalise(images.data, i);
}
const texts: Vectors = { data: new Float32Array(nT * dim), count: nT, dim };
const txt2img = Array.from({ length: nT }, (_, t) => Math.min(nI - 1, Math.floor(t / perImage)));
const img2txt = Array.from({ length: nI }, () => [] as number[]);
txt2img.forEach((i, t) => img2txt[i]!.push(t));
for (let t = 0; t < nT; t++) {
  const i = txt2img[t]!;
  for (let d = 0; d < dim; d++) texts.data[t * dim + d] = images.data[i * dim + d]! + 0.45 * gauss();
  normalise(texts.data, t);
}

const mb = (b: number) => Math.round(b / 2 ** 20);
const before = process.memoryUsage();
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
let extra = '';
if (values.variant === 'naive') {
  const sim = similarityMatrix(images, texts);
  const t1 = process.hrtime.bigint();
  const i2t = topKRows(sim, nI, nT, k);
  const t2i = topKColumns(sim, nI, nT, k);
  extra = `cosines ${Number(t1 - t0) / 1e9} s; top-k ${Number(process.hrtime.bigint() - t1) / 1e9} s; ${i2t.k}/${t2i.k}`;
} else {
  const r = itcStage(images, texts, { k, txt2img, img2txt, blockImages: Number(values.block) });
  extra = `ITC recall ${JSON.stringify(r.recall)}`;
}
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(cpu0);
const after = process.memoryUsage();
console.log(
  JSON.stringify({
    variant: values.variant,
    images: nI,
    texts: nT,
    dim,
    k,
    block: values.variant === 'naive' ? undefined : Number(values.block),
    seconds: Math.round(seconds * 100) / 100,
    cpuSeconds: Math.round((cpu.user + cpu.system) / 1e4) / 100,
    pairsPerCpuSecond: Math.round((nI * nT * 1e6) / (cpu.user + cpu.system)),
    inputsMB: mb((nI + nT) * dim * 4),
    peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
    rssBeforeMB: mb(before.rss),
    arrayBuffersAfterMB: mb(after.arrayBuffers),
    extra,
  }),
);
