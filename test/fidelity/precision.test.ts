// Reduced precision: int8 (7-bit weight-quantized linear layers, per output channel) stays close to the
// official fp32 outputs on the fixture goldens on every CPU class (test/fidelity/int8-kernels.test.ts checks the
// weights cannot saturate the non-VNNI kernels); fp16 (for the CUDA provider) writes a float16 graph
// whose vectors, run here by ORT's CPU provider (which computes float16 nodes through float32 casts),
// match the goldens too: that checks the fp16 files' weights and wiring, not CUDA's fp16 arithmetic.

import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import ort from 'onnxruntime-node';
import t from 'tap';
import { convertCheckpoint } from '../../src/convert/convert.js';
import { preprocessImage } from '../../src/imaging/decode.js';
import { normalizeToCHW } from '../../src/imaging/pixel-normalize.js';
import { cpuFeatures } from '../../src/core/cpu-features.js';
import { IMAGE_MEAN, IMAGE_STD } from '../../src/core/model-manifest.js';
import { cosine, golden, IMAGES_DIR, TINY_ARCH, TINY_CHECKPOINT } from '../../kit/golden.js';

const dir = await mkdtemp(join(tmpdir(), 'albef-precision-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

const cpu = cpuFeatures();
const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Cosine of a converted model's vectors to the golden fp32 ones, for every fixture text and image. */
async function goldenCosines(out: string): Promise<{ textCos: number[]; imageCos: number[] }> {
  const text = await ort.InferenceSession.create(join(out, 'text.onnx'));
  const textCos: number[] = [];
  for (const g of golden.texts) {
    const ids = g.pre_caption.ids;
    const r = await text.run({
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]),
    });
    textCos.push(cosine(r.embeddings!.data as Float32Array, g.pre_caption.embedding));
  }
  const image = await ort.InferenceSession.create(join(out, 'image.onnx'));
  const imageCos: number[] = [];
  for (const g of golden.images) {
    const p = await preprocessImage(readFileSync(join(IMAGES_DIR, g.file)), { size: 96, maxPixels: 1e8 });
    if (!p.ok) throw new Error(p.message);
    const r = await image.run({
      pixel_values: new ort.Tensor('float32', normalizeToCHW(p.rgb, 96, IMAGE_MEAN, IMAGE_STD), [1, 3, 96, 96]),
    });
    imageCos.push(cosine(r.embeddings!.data as Float32Array, g.embedding));
  }
  await Promise.all([text.release(), image.release()]);
  return { textCos, imageCos };
}

t.test('int8 against the golden fp32 vectors: mean cosine ≥ 0.999, min ≥ 0.998, on any CPU', async (t) => {
  const out = join(dir, 'int8');
  const m = await convertCheckpoint({ checkpoint: TINY_CHECKPOINT, out, archFile: TINY_ARCH, precision: 'int8' });
  t.equal(m.precision, 'int8');
  const model = onnxProto.onnx.ModelProto.decode(readFileSync(join(out, 'image.onnx')));
  t.ok(
    model.graph!.node!.some((n) => n.opType === 'DynamicQuantizeMatMul'),
    'uses the integer GEMM kernel',
  );

  const { textCos, imageCos } = await goldenCosines(out);
  for (const [what, cos] of [
    ['texts', textCos],
    ['images', imageCos],
  ] as const) {
    t.ok(
      mean(cos) >= 0.999 && Math.min(...cos) >= 0.998,
      `${what}: mean cosine ${mean(cos).toFixed(5)}, min ${Math.min(...cos).toFixed(5)} (int8 kernel: ${cpu.int8Kernel})`,
    );
  }
});

t.test('fp16 writes float16 weights with float32 inputs and outputs and gives the golden vectors', async (t) => {
  const out = join(dir, 'fp16');
  await convertCheckpoint({ checkpoint: TINY_CHECKPOINT, out, archFile: TINY_ARCH, precision: 'fp16' });
  for (const tower of ['image', 'text']) {
    const model = onnxProto.onnx.ModelProto.decode(readFileSync(join(out, `${tower}.onnx`)));
    const F16 = onnxProto.onnx.TensorProto.DataType.FLOAT16;
    const FLOAT = onnxProto.onnx.TensorProto.DataType.FLOAT;
    const big = model.graph!.initializer!.filter(
      (i) => i.dataLocation === onnxProto.onnx.TensorProto.DataLocation.EXTERNAL,
    );
    t.ok(big.length > 0 && big.every((i) => i.dataType === F16), `${tower}: every stored weight is float16`);
    t.equal(model.graph!.output![0]!.type!.tensorType!.elemType, FLOAT, `${tower}: embeddings stay float32`);
  }
  const { textCos, imageCos } = await goldenCosines(out);
  t.ok(Math.min(...textCos) >= 0.999, `texts against the goldens: min cosine ${Math.min(...textCos).toFixed(6)}`);
  t.ok(Math.min(...imageCos) >= 0.999, `images against the goldens: min cosine ${Math.min(...imageCos).toFixed(6)}`);
});

t.test('attention takes the q, k and v projections directly, with no Split pass in any precision', async (t) => {
  for (const precision of ['fp32', 'int8', 'fp16'] as const) {
    const out = join(dir, `attn-${precision}`);
    await convertCheckpoint({ checkpoint: TINY_CHECKPOINT, out, archFile: TINY_ARCH, precision });
    for (const tower of ['image', 'text']) {
      const nodes = onnxProto.onnx.ModelProto.decode(readFileSync(join(out, `${tower}.onnx`))).graph!.node!;
      const attention = nodes.filter((n) => n.opType === 'MultiHeadAttention');
      t.ok(
        attention.length > 0 && !nodes.some((n) => n.opType === 'Split'),
        `${precision} ${tower}: attention in every block, no Split`,
      );
      // Float models hand the q|k|v bias to the kernel (input 3); int8 fuses it into the projections.
      const withBias = attention.filter((a) => (a.input![3] ?? '') !== '').length;
      t.equal(
        withBias,
        precision === 'int8' ? 0 : attention.length,
        `${precision} ${tower}: q|k|v bias given to the kernel where it is not fused`,
      );
    }
  }
  const probe = await ort.InferenceSession.create(join(dir, 'attn-fp32', 'text.onnx'));
  const r = await probe.run({
    input_ids: new ort.Tensor('int64', BigInt64Array.from([101n, 2000n, 102n]), [1, 3]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(3).fill(1n), [1, 3]),
  });
  t.ok((r.embeddings!.data as Float32Array).every(Number.isFinite), 'and the float graph runs');
});
