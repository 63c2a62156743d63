// The converter's ONNX graphs reproduce the official ALBEF PyTorch outputs (golden.json).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import t from 'tap';
import { convertCheckpoint } from '../../src/convert/convert.js';
import {
  cosine,
  golden,
  maxAbsDiff,
  tensorInput,
  TINY_ARCH,
  TINY_CHECKPOINT,
  TINY_FINETUNED,
  TOL,
} from '../../kit/golden.js';

async function runText(session: ort.InferenceSession, batch: number[][]): Promise<Float32Array[]> {
  const len = Math.max(...batch.map((b) => b.length));
  const ids = new BigInt64Array(batch.length * len);
  const mask = new BigInt64Array(batch.length * len);
  batch.forEach((row, r) =>
    row.forEach((id, c) => {
      ids[r * len + c] = BigInt(id);
      mask[r * len + c] = 1n;
    }),
  );
  const out = await session.run({
    input_ids: new ort.Tensor('int64', ids, [batch.length, len]),
    attention_mask: new ort.Tensor('int64', mask, [batch.length, len]),
  });
  const e = out.embeddings!;
  const dim = e.dims[1]!;
  const data = e.data as Float32Array;
  return batch.map((_, i) => data.slice(i * dim, (i + 1) * dim));
}

for (const [label, checkpoint] of [
  ['pretrain', TINY_CHECKPOINT],
  ['finetuned', TINY_FINETUNED],
] as const) {
  t.test(`${label} layout: ONNX outputs match the official ALBEF outputs`, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'albef-convert-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const out = join(dir, 'model');
    const manifest = await convertCheckpoint({ checkpoint, out, archFile: TINY_ARCH, name: 'tiny' });
    t.equal(manifest.architecture.layout, label);
    t.equal(manifest.image_res, 96);
    t.equal(manifest.architecture.checkpoint_image_res, label === 'pretrain' ? 64 : 96);

    const image = await ort.InferenceSession.create(join(out, 'image.onnx'));
    const input = tensorInput();
    const res = await image.run({ pixel_values: new ort.Tensor('float32', input, golden.tensor_check.shape) });
    const emb = res.embeddings!.data as Float32Array;
    t.ok(
      cosine(emb, golden.tensor_check.embedding) >= TOL.textCos,
      `tensor_check cosine ${cosine(emb, golden.tensor_check.embedding)}`,
    );
    t.ok(
      maxAbsDiff(emb, golden.tensor_check.embedding) <= TOL.textMaxAbs,
      `tensor_check max|Δ| ${maxAbsDiff(emb, golden.tensor_check.embedding)}`,
    );

    // The same image twice in one batch gives the same vector twice.
    const twice = new Float32Array(input.length * 2);
    twice.set(input);
    twice.set(input, input.length);
    const res2 = await image.run({
      pixel_values: new ort.Tensor('float32', twice, [2, ...golden.tensor_check.shape.slice(1)]),
    });
    const e2 = res2.embeddings!.data as Float32Array;
    t.ok(cosine(e2.subarray(emb.length), golden.tensor_check.embedding) >= TOL.textCos, 'batched image matches');

    const text = await ort.InferenceSession.create(join(out, 'text.onnx'));
    for (const mode of ['pre_caption', 'raw'] as const) {
      const cases = golden.texts.map((g) => g[mode]);
      // one at a time
      for (const c of cases) {
        const [e] = await runText(text, [c.ids]);
        const cos = cosine(e!, c.embedding);
        const diff = maxAbsDiff(e!, c.embedding);
        t.ok(
          cos >= TOL.textCos && diff <= TOL.textMaxAbs,
          `${mode} ${JSON.stringify(c.input).slice(0, 40)}: cos ${cos.toFixed(7)} max|Δ| ${diff.toExponential(2)}`,
        );
      }
      // all together, padded to the longest with attention_mask 0
      const batched = await runText(
        text,
        cases.map((c) => c.ids),
      );
      const worst = Math.min(...batched.map((e, i) => cosine(e, cases[i]!.embedding)));
      const worstDiff = Math.max(...batched.map((e, i) => maxAbsDiff(e, cases[i]!.embedding)));
      t.ok(
        worst >= TOL.textCos && worstDiff <= TOL.textMaxAbs,
        `${mode} padded batch of ${cases.length}: worst cos ${worst.toFixed(7)}, max|Δ| ${worstDiff.toExponential(2)}`,
      );
    }
  });
}
