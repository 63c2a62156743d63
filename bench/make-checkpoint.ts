// Writes a full-size synthetic ALBEF checkpoint in the official pretrain layout (model weights plus
// the momentum copies and queues that the real files carry), to measure conversion time and memory:
//   node build/bench/make-checkpoint.js OUT.pth [--with-optimizer]

import { resolveArch } from '../src/convert/arch.js';
import { PRESETS } from '../src/convert/arch.js';
import { SyntheticSource } from '../src/convert/synth.js';
import { stateDictOf, writeTorchZip } from '../kit/torch-writer.js';

const out = process.argv[2];
if (!out) throw new Error('usage: make-checkpoint OUT.pth');
const arch = resolveArch(PRESETS.albef_4m, { imageRes: 256 });
const source = new SyntheticSource(arch, 7);
const grid = 16;
const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
const shapes = (await import('../src/convert/albef-weights.js')).albefTensorShapes(
  arch,
  'pretrain',
  arch.vision.mlp,
  grid,
);
for (const [key, shape] of shapes) {
  const data = await source.read(key);
  tensors.set(key, { shape, data });
  // momentum encoders: same shapes under *_m names, as in the official files
  const m = key.replace(/^(visual_encoder|text_encoder|vision_proj|text_proj)/, '$1_m');
  if (m !== key) tensors.set(m, { shape, data });
}
tensors.set('image_queue', { shape: [256, 65536], data: new Float32Array(256 * 65536) });
tensors.set('text_queue', { shape: [256, 65536], data: new Float32Array(256 * 65536) });
tensors.set('temp', { shape: [], data: new Float32Array([0.07]) });
const { dict, storages } = stateDictOf(tensors);
await writeTorchZip(
  out,
  new Map<unknown, unknown>([
    ['model', dict],
    ['epoch', 29],
    ['config', new Map([['image_res', 256]])],
  ]),
  storages,
  'ALBEF_4M',
);
console.log(`wrote ${out}: ${tensors.size} tensors`);
