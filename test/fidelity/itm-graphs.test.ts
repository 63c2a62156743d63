// Image–text matching through the converted graphs, against the official ALBEF modules
// (itm_golden.json): every golden text × image pair through text_states.onnx, image_states.onnx and
// fusion.onnx (tensor_input.f32 fed without decoding), for both checkpoint layouts in fp32 at the
// reference tolerances, and int8 / fp16 within the tolerances measured and stated here. Also: the
// per-token graphs share the towers' weight files, and grouping pairs by image changes nothing.

import { readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import t from 'tap';
import { convertCheckpoint } from '../../src/convert/convert.js';
import { preprocessImage } from '../../src/imaging/decode.js';
import { normalizeToCHW } from '../../src/imaging/pixel-normalize.js';
import { IMAGE_MEAN, IMAGE_STD } from '../../src/core/model-manifest.js';
import {
  IMAGES_DIR,
  ITM_TOL,
  itmGolden,
  TINY_ARCH,
  TINY_CHECKPOINT,
  TINY_DIR,
  TINY_FINETUNED,
} from '../../kit/golden.js';

const dir = await mkdtemp(join(tmpdir(), 'albef-itm-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

const g = itmGolden;
const prob = (l: ArrayLike<number>) => 1 / (1 + Math.exp(l[0]! - l[1]!));
const int64 = (xs: number[]) => BigInt64Array.from(xs.map(BigInt));

async function pixels(file: string): Promise<Float32Array> {
  if (file.endsWith('.f32')) {
    const b = readFileSync(join(TINY_DIR, file));
    return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  }
  const p = await preprocessImage(readFileSync(join(IMAGES_DIR, file)), { size: 96, maxPixels: 1e8 });
  if (!p.ok) throw new Error(p.message);
  return normalizeToCHW(p.rgb, 96, IMAGE_MEAN, IMAGE_STD);
}
const imagePixels = await Promise.all(g.images.map(pixels));

interface Worst {
  logitsFile: number;
  logitsTensor: number;
  prob: number;
  itc: number;
}

/** Runs every golden pair through a model directory's graphs; returns the worst |Δ| of each quantity. */
async function worstAgainstGolden(out: string): Promise<Worst> {
  const open = (f: string) => ort.InferenceSession.create(join(out, f));
  const [imageStates, textStates, fusion] = await Promise.all([
    open('image_states.onnx'),
    open('text_states.onnx'),
    open('fusion.onnx'),
  ]);
  const images = [];
  for (const px of imagePixels)
    images.push(await imageStates.run({ pixel_values: new ort.Tensor('float32', px, [1, 3, 96, 96]) }));
  const worst: Worst = { logitsFile: 0, logitsTensor: 0, prob: 0, itc: 0 };
  for (let ti = 0; ti < g.texts.length; ti++) {
    const ids = g.ids[ti]!;
    const mask = new ort.Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]);
    const text = await textStates.run({
      input_ids: new ort.Tensor('int64', int64(ids), [1, ids.length]),
      attention_mask: mask,
    });
    for (let ii = 0; ii < g.images.length; ii++) {
      const { itm_logits } = await fusion.run({
        text_states: text.states!,
        text_mask: mask,
        image_states: images[ii]!.states!,
      });
      const l = itm_logits!.data as Float32Array;
      const want = g.pairs[ti]![ii]!;
      const d = Math.max(Math.abs(l[0]! - want.itm_logits[0]), Math.abs(l[1]! - want.itm_logits[1]));
      if (g.images[ii]!.endsWith('.f32')) worst.logitsTensor = Math.max(worst.logitsTensor, d);
      else worst.logitsFile = Math.max(worst.logitsFile, d);
      worst.prob = Math.max(worst.prob, Math.abs(prob(l) - want.itm_prob));
      const a = images[ii]!.embeddings!.data as Float32Array;
      const b = text.embeddings!.data as Float32Array;
      worst.itc = Math.max(worst.itc, Math.abs(a.reduce((s, v, k) => s + v * b[k]!, 0) - want.itc));
    }
  }
  await Promise.all([imageStates.release(), textStates.release(), fusion.release()]);
  return worst;
}

const fmt = (w: Worst) =>
  `logits ${w.logitsTensor.toExponential(1)} (tensor) / ${w.logitsFile.toExponential(1)} (files), prob ${w.prob.toExponential(1)}, itc ${w.itc.toExponential(1)}`;

for (const [layout, checkpoint] of [
  ['pretrain', TINY_CHECKPOINT],
  ['finetuned', TINY_FINETUNED],
] as const) {
  t.test(`${layout} layout, fp32: every text × image pair matches the official ITM outputs`, async (t) => {
    const out = join(dir, `${layout}-fp32`);
    const m = await convertCheckpoint({ checkpoint, out, archFile: TINY_ARCH, name: 'tiny' });
    t.equal(m.architecture.layout, layout);
    t.ok(Math.abs(m.fusion!.temp! - g.temp) < 1e-7, `temp ${m.fusion!.temp} recorded in model.json`);
    const w = await worstAgainstGolden(out);
    t.ok(
      w.logitsTensor <= ITM_TOL.logitsTensor,
      `tensor_input.f32: itm_logits max|Δ| ${w.logitsTensor.toExponential(2)}`,
    );
    t.ok(w.logitsFile <= ITM_TOL.logitsFile, `image files: itm_logits max|Δ| ${w.logitsFile.toExponential(2)}`);
    t.ok(w.prob <= ITM_TOL.prob, `itm_prob max|Δ| ${w.prob.toExponential(2)}`);
    t.ok(w.itc <= ITM_TOL.itc, `itc max|Δ| ${w.itc.toExponential(2)}`);

    // The per-token graphs point into the towers' weight files instead of copying them.
    for (const f of ['image_states.onnx', 'text_states.onnx']) {
      t.notOk(m.files[`${f}.data`], `${f} has no weight file of its own`);
      t.ok(statSync(join(out, f)).size < 200_000, `${f} is graph only (${statSync(join(out, f)).size} bytes)`);
    }
  });
}

// Measured on the tiny fixture (AVX2 Zen 3 and the same bound holds on any CPU with 7-bit weights):
// int8 logits max|Δ| 0.068, prob 0.016, itc 0.013; fp16 logits 0.0027, prob 0.0009, itc 0.0005.
const REDUCED = {
  int8: { logits: 0.15, prob: 0.03, itc: 0.03 },
  fp16: { logits: 0.006, prob: 0.002, itc: 0.001 },
} as const;

for (const precision of ['int8', 'fp16'] as const) {
  t.test(`${precision}: every pair within the stated tolerance of the official ITM outputs`, async (t) => {
    const out = join(dir, precision);
    await convertCheckpoint({ checkpoint: TINY_CHECKPOINT, out, archFile: TINY_ARCH, name: 'tiny', precision });
    const w = await worstAgainstGolden(out);
    const tol = REDUCED[precision];
    t.ok(
      Math.max(w.logitsFile, w.logitsTensor) <= tol.logits && w.prob <= tol.prob && w.itc <= tol.itc,
      `${precision}: ${fmt(w)}`,
    );
  });
}

t.test(
  'pairs grouped by image: one image against many texts, many images against one text, all in one run each',
  async (t) => {
    const out = join(dir, 'pretrain-fp32');
    const open = (f: string) => ort.InferenceSession.create(join(out, f));
    const [imageStates, textStates, fusion] = await Promise.all([
      open('image_states.onnx'),
      open('text_states.onnx'),
      open('fusion.onnx'),
    ]);
    const n = g.texts.length;
    const len = Math.max(...g.ids.map((r) => r.length));
    const ids = new BigInt64Array(n * len);
    const mask = new BigInt64Array(n * len);
    g.ids.forEach((r, i) => {
      ids.set(int64(r), i * len);
      mask.fill(1n, i * len, i * len + r.length);
    });
    const texts = await textStates.run({
      input_ids: new ort.Tensor('int64', ids, [n, len]),
      attention_mask: new ort.Tensor('int64', mask, [n, len]),
    });
    const batch = new Float32Array(imagePixels.length * imagePixels[0]!.length);
    imagePixels.forEach((p, i) => batch.set(p, i * p.length));
    const images = await imageStates.run({
      pixel_values: new ort.Tensor('float32', batch, [imagePixels.length, 3, 96, 96]),
    });
    const states = images.states!;
    const per = states.dims[1]! * states.dims[2]!;
    const imageData = states.data as Float32Array;

    // Image 0 against all texts: I = 1, M = n (padded texts, masked).
    const one = await fusion.run({
      text_states: texts.states!,
      text_mask: new ort.Tensor('int64', mask, [n, len]),
      image_states: new ort.Tensor('float32', imageData.slice(0, per), [1, states.dims[1]!, states.dims[2]!]),
    });
    const l1 = one.itm_logits!.data as Float32Array;
    let worst = 0;
    for (let ti = 0; ti < n; ti++)
      worst = Math.max(worst, Math.abs(prob(l1.subarray(2 * ti, 2 * ti + 2)) - g.pairs[ti]![0]!.itm_prob));
    t.ok(worst <= ITM_TOL.prob, `1 image × ${n} texts in one run: itm_prob max|Δ| ${worst.toExponential(2)}`);

    // Text 1 against every image: I = images, M = 1.
    const k = g.images.length;
    const D = texts.states!.dims[2]!;
    const textRow = (texts.states!.data as Float32Array).slice(1 * len * D, 2 * len * D);
    const repeated = new Float32Array(k * len * D);
    const repeatedMask = new BigInt64Array(k * len);
    for (let i = 0; i < k; i++) {
      repeated.set(textRow, i * len * D);
      repeatedMask.fill(1n, i * len, i * len + g.ids[1]!.length);
    }
    const many = await fusion.run({
      text_states: new ort.Tensor('float32', repeated, [k, len, D]),
      text_mask: new ort.Tensor('int64', repeatedMask, [k, len]),
      image_states: states,
    });
    const l2 = many.itm_logits!.data as Float32Array;
    worst = 0;
    for (let ii = 0; ii < k; ii++)
      worst = Math.max(worst, Math.abs(prob(l2.subarray(2 * ii, 2 * ii + 2)) - g.pairs[1]![ii]!.itm_prob));
    t.ok(worst <= ITM_TOL.prob, `${k} images × 1 text in one run: itm_prob max|Δ| ${worst.toExponential(2)}`);
    await Promise.all([imageStates.release(), textStates.release(), fusion.release()]);
  },
);
