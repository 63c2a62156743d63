// The checkpoint reader: both torch formats, dtypes, strides, offsets, shared storages, and its
// safety and error behaviour on hostile or damaged files.

import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import t from 'tap';
import { Checkpoint } from '../../src/convert/checkpoint.js';
import { convertCheckpoint } from '../../src/convert/convert.js';
import { PickleObject, unpickle } from '../../src/convert/pickle.js';
import { interpolatePosEmbed } from '../../src/convert/pos-embed.js';
import { float32ToFloat16 } from '../../src/convert/tensor-data.js';
import { CheckpointError } from '../../src/core/errors.js';
import { cosine, golden, tensorInput, TINY_ARCH, TINY_CHECKPOINT, TOL } from '../../kit/golden.js';
import {
  Call,
  OrderedDict,
  pickle,
  stateDictOf,
  TensorSpec,
  writeTorchLegacy,
  writeTorchZip,
  type StorageBytes,
} from '../../kit/torch-writer.js';

const dir = await mkdtemp(join(tmpdir(), 'albef-ckpt-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

/** Every tensor of the fixture checkpoint, read with the project's own reader. */
async function fixtureTensors(): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const ckpt = await Checkpoint.open(TINY_CHECKPOINT);
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, ref] of ckpt.tensors)
    if (ref.storage.dtype?.startsWith('float')) out.set(k, { shape: ref.shape, data: await ckpt.read(k) });
  await ckpt.close();
  return out;
}
const tensors = await fixtureTensors();

t.test('reads the official pretrain layout: tensors, shapes, shared MLM/word-embedding storage', async (t) => {
  const ckpt = await Checkpoint.open(TINY_CHECKPOINT);
  t.teardown(() => ckpt.close());
  t.equal(ckpt.format, 'zip');
  t.same(ckpt.shape('visual_encoder.pos_embed'), [1, 17, 48]);
  t.same(ckpt.shape('text_encoder.bert.embeddings.word_embeddings.weight'), [30522, 32]);
  const tied = [...ckpt.tensors.entries()].filter(
    ([, r]) => r.storage.key === ckpt.tensors.get('text_encoder.bert.embeddings.word_embeddings.weight')!.storage.key,
  );
  t.ok(tied.length >= 2, `word embeddings share their storage with ${tied.map(([k]) => k).join(', ')}`);
});

t.test('legacy format, derived fine-tuned layout, strided/offset/shared storages → golden outputs', async (t) => {
  // The fine-tuned retrieval layout: no `bert.`, no momentum copies or queues, pos_embed at 96 px.
  const renamed = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, v] of tensors) {
    if (/_m\.|_queue|queue_ptr|^temp$|position_ids/.test(k)) continue;
    renamed.set(k.replace('text_encoder.bert.', 'text_encoder.'), v);
  }
  const pos = renamed.get('visual_encoder.pos_embed')!;
  renamed.set('visual_encoder.pos_embed', { shape: [1, 37, 48], data: interpolatePosEmbed(pos.data, 48, 4, 6) });
  const { dict, storages } = stateDictOf(renamed);
  const entries = new Map(dict.entries as [string, TensorSpec][]);

  // text_proj.weight stored transposed (stride [1, 32]) as a non-contiguous view.
  const tp = renamed.get('text_proj.weight')!;
  const tpT = new Float32Array(32 * 32);
  for (let r = 0; r < 32; r++) for (let c = 0; c < 32; c++) tpT[c * 32 + r] = tp.data[r * 32 + c]!;
  storages.set('tp_t', { dtype: 'float32', bytes: new Uint8Array(tpT.buffer) });
  entries.set('text_proj.weight', new TensorSpec('tp_t', 'float32', 1024, 0, [32, 32], [1, 32]));

  // vision_proj weight and bias in one storage; the bias at an element offset.
  const vw = renamed.get('vision_proj.weight')!.data;
  const vb = renamed.get('vision_proj.bias')!.data;
  const packed = new Float32Array(7 + vw.length + vb.length);
  packed.set(vw, 7);
  packed.set(vb, 7 + vw.length);
  storages.set('vp', { dtype: 'float32', bytes: new Uint8Array(packed.buffer) });
  entries.set('vision_proj.weight', new TensorSpec('vp', 'float32', packed.length, 7, [32, 48], [48, 1]));
  entries.set('vision_proj.bias', new TensorSpec('vp', 'float32', packed.length, 7 + vw.length, [32], [1]));

  // A tied copy (as the MLM decoder ties to the word embeddings).
  entries.set(
    'text_encoder.cls.predictions.decoder.weight',
    entries.get('text_encoder.embeddings.word_embeddings.weight')!,
  );

  // torch lists only the storages some tensor uses
  const used = new Set([...entries.values()].map((e) => e.storageKey));
  for (const k of storages.keys()) if (!used.has(k)) storages.delete(k);
  const file = join(dir, 'legacy-finetuned.pth');
  await writeTorchLegacy(file, new OrderedDict([...entries.entries()]), storages);
  const ckpt = await Checkpoint.open(file);
  t.equal(ckpt.format, 'legacy');
  t.same(await ckpt.read('text_proj.weight'), tp.data, 'strided view reads back in logical order');
  t.same(await ckpt.read('vision_proj.bias'), vb, 'offset view reads back');
  await ckpt.close();

  const out = join(dir, 'legacy-model');
  const manifest = await convertCheckpoint({ checkpoint: file, out, archFile: TINY_ARCH, name: 'legacy' });
  t.equal(manifest.architecture.layout, 'finetuned');
  t.ok(
    manifest.fusion && manifest.fusion.temp === undefined,
    'fusion layers converted; no temp in this file, so none recorded',
  );
  const image = await ort.InferenceSession.create(join(out, 'image.onnx'));
  const res = await image.run({ pixel_values: new ort.Tensor('float32', tensorInput(), golden.tensor_check.shape) });
  t.ok(
    cosine(res.embeddings!.data as Float32Array, golden.tensor_check.embedding) >= TOL.textCos,
    'image tower matches golden',
  );
  const text = await ort.InferenceSession.create(join(out, 'text.onnx'));
  const g = golden.texts[0]!.pre_caption;
  const ids = new ort.Tensor('int64', BigInt64Array.from(g.ids.map(BigInt)), [1, g.ids.length]);
  const mask = new ort.Tensor('int64', new BigInt64Array(g.ids.length).fill(1n), [1, g.ids.length]);
  const tr = await text.run({ input_ids: ids, attention_mask: mask });
  t.ok(cosine(tr.embeddings!.data as Float32Array, g.embedding) >= TOL.textCos, 'text tower matches golden');
});

t.test('float16, bfloat16, float64 and int64 storages decode to float32', async (t) => {
  const values = [0, 1, -2.5, 0.333251953125, 65504, -1e-3];
  const f16 = Uint16Array.from(values.map(float32ToFloat16));
  const bf16 = Uint16Array.from(values.map((v) => new Uint32Array(new Float32Array([v]).buffer)[0]! >>> 16));
  const f64 = Float64Array.from(values);
  const i64 = BigInt64Array.from([3n, -4n, 5n]);
  const storages = new Map<string, StorageBytes>([
    ['h', { dtype: 'float16', bytes: new Uint8Array(f16.buffer) }],
    ['b', { dtype: 'bfloat16', bytes: new Uint8Array(bf16.buffer) }],
    ['d', { dtype: 'float64', bytes: new Uint8Array(f64.buffer) }],
    ['l', { dtype: 'int64', bytes: new Uint8Array(i64.buffer) }],
  ]);
  const n = values.length;
  const root = new Map<unknown, unknown>([
    ['h', new TensorSpec('h', 'float16', n, 0, [n], [1])],
    ['b', new TensorSpec('b', 'bfloat16', n, 0, [n], [1])],
    ['d', new TensorSpec('d', 'float64', n, 0, [2, 3], [3, 1])],
    ['l', new TensorSpec('l', 'int64', 3, 0, [3], [1])],
  ]);
  const file = join(dir, 'dtypes.pth');
  await writeTorchZip(file, root, storages);
  const ckpt = await Checkpoint.open(file);
  t.teardown(() => ckpt.close());
  const close = (a: Float32Array, tol: number) =>
    a.every((v, i) => Math.abs(v - values[i]!) <= tol * Math.max(1, Math.abs(values[i]!)));
  t.ok(close(await ckpt.read('h'), 1e-3), 'float16');
  t.ok(close(await ckpt.read('b'), 1e-2), 'bfloat16');
  t.ok(close(await ckpt.read('d'), 1e-7), 'float64');
  t.same([...(await ckpt.read('l'))], [3, -4, 5], 'int64');
});

t.test('hostile globals are read as inert placeholders and never run', async (t) => {
  const canary = join(dir, 'pwned');
  const evil = new Map<unknown, unknown>([
    ['system', new Call('os', 'system', [`touch ${canary}`])],
    ['eval', new Call('builtins', 'eval', [`__import__('os').system('touch ${canary}')`])],
    ['exec', new Call('builtins', 'exec', ['import os'])],
    ['bare', new Call('subprocess', 'Popen')],
  ]);
  const value = unpickle(pickle(evil)) as Map<string, unknown>;
  const sys = value.get('system');
  t.ok(sys instanceof PickleObject && sys.callee.qualified === 'os.system', 'os.system becomes a placeholder');
  t.ok(value.get('eval') instanceof PickleObject, 'builtins.eval becomes a placeholder');

  // The same inside a real checkpoint next to the model: the checkpoint still converts.
  const { dict, storages } = stateDictOf(tensors);
  const root = new Map<unknown, unknown>([
    ['model', dict],
    ['config', evil],
    ['optimizer', new Call('torch.optim', 'AdamW', [1, 2])],
  ]);
  const file = join(dir, 'hostile.pth');
  await writeTorchZip(file, root, storages);
  const out = join(dir, 'hostile-model');
  await convertCheckpoint({ checkpoint: file, out, archFile: TINY_ARCH });
  t.ok(existsSync(join(out, 'image.onnx')), 'converted');
  t.notOk(existsSync(canary), 'nothing was executed');
});

t.test('damaged and wrong files give clear errors and write nothing', async (t) => {
  const whole = await readFile(TINY_CHECKPOINT);
  const cases: [string, Buffer, string][] = [
    ['truncated zip', whole.subarray(0, Math.floor(whole.length / 2)), 'truncated'],
    ['bad magic', Buffer.from('this is not a checkpoint\n'), 'not_a_checkpoint'],
    ['empty file', Buffer.alloc(0), 'not_a_checkpoint'],
    ['plain pickle', pickle(new Map([['a', 1]])), 'not_a_checkpoint'],
  ];
  for (const [label, bytes, code] of cases) {
    const file = join(dir, `${label.replace(/ /g, '-')}.pth`);
    await writeFile(file, bytes);
    const out = join(dir, `${label}-model`);
    await t.rejects(
      convertCheckpoint({ checkpoint: file, out, archFile: TINY_ARCH }),
      { name: 'CheckpointError', code },
      label,
    );
    t.notOk(existsSync(out), `${label}: no model directory`);
  }
  // A legacy file cut inside its storages.
  const { dict, storages } = stateDictOf(tensors);
  const legacy = join(dir, 'cut-legacy.pth');
  await writeTorchLegacy(legacy, dict, storages);
  const full = await readFile(legacy);
  await writeFile(legacy, full.subarray(0, full.length - 1000));
  await t.rejects(Checkpoint.open(legacy), { name: 'CheckpointError', code: 'truncated' }, 'legacy file cut short');
  t.ok(new CheckpointError('corrupt', 'x') instanceof Error);
});

t.test('a missing tensor or a wrong shape names the key', async (t) => {
  const without = new Map(tensors);
  without.delete('vision_proj.weight');
  const a = stateDictOf(without);
  const missing = join(dir, 'missing.pth');
  await writeTorchZip(missing, new Map([['model', a.dict]]), a.storages);
  await t.rejects(convertCheckpoint({ checkpoint: missing, out: join(dir, 'm1'), archFile: TINY_ARCH }), {
    name: 'WeightsError',
    code: 'missing_tensor',
    message: /"vision_proj\.weight"/,
  });
  t.notOk(existsSync(join(dir, 'm1')));

  const reshaped = new Map(tensors);
  reshaped.set('text_proj.weight', { shape: [16, 64], data: tensors.get('text_proj.weight')!.data });
  const b = stateDictOf(reshaped);
  const wrong = join(dir, 'wrong-shape.pth');
  await writeTorchZip(wrong, new Map([['model', b.dict]]), b.storages);
  await t.rejects(convertCheckpoint({ checkpoint: wrong, out: join(dir, 'm2'), archFile: TINY_ARCH }), {
    name: 'WeightsError',
    code: 'shape_mismatch',
    message: /"text_proj\.weight" has shape \[16,64\], expected \[32,32\]/,
  });

  // A storage entry shorter than its tensor: found when reading, named, and nothing is left behind.
  const c = stateDictOf(tensors);
  const key = [...c.storages.keys()].find(
    (k) => (c.dict.entries.find(([, s]) => (s as TensorSpec).storageKey === k)![0] as string) === 'text_proj.bias',
  )!;
  c.storages.set(key, { dtype: 'float32', bytes: new Uint8Array(8) });
  const short = join(dir, 'short-storage.pth');
  await writeTorchZip(short, new Map([['model', c.dict]]), c.storages);
  await t.rejects(convertCheckpoint({ checkpoint: short, out: join(dir, 'm3'), archFile: TINY_ARCH }), {
    code: 'corrupt',
  });
  t.notOk(existsSync(join(dir, 'm3')));
});
