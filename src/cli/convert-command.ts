// `albef-embed convert` (a checkpoint into a model directory) and `albef-embed synth` (random weights
// of the same shape): their arguments checked before the work, then src/convert.

import { PRESET_NAMES } from '../convert/arch.js';
import { convertCheckpoint, loadArch } from '../convert/convert.js';
import { synthesizeModel } from '../convert/synth.js';
import { inputFile, intOption, log, oneOf, parse } from './args.js';
import { UsageError } from '../core/errors.js';

const PRECISIONS = ['fp32', 'int8', 'fp16'] as const;

export const CONVERT_USAGE = `
Usage: albef-embed convert --checkpoint FILE.pth --out DIR [options]

Converts an ALBEF checkpoint (official pretrain or fine-tuned retrieval file) into a model directory:
model.json, the towers image.onnx and text.onnx with their weights (image.onnx.data, text.onnx.data),
the image–text matching graphs image_states.onnx and text_states.onnx (sharing the towers' weights)
and fusion.onnx (+ fusion.onnx.data), and vocab.txt. No Python needed; the file's pickle code is
never run.

Options:
  --checkpoint FILE   PyTorch checkpoint (.pth)
  --out DIR           model directory to write (atomically)
  --preset NAME       albef_4m | albef_14m (default albef_4m)
  --arch FILE         arch.json for a non-official architecture (instead of --preset)
  --image-res N       serving resolution (default 384; 256 is the checkpoints' native one)
  --precision P       fp32 (default) | int8 (CPU, quantized linear layers) | fp16 (GPUs: webgpu, cuda)
  --name NAME         model name served by the API (default: the preset or file name)
  --force             replace DIR if it exists
`;

export const SYNTH_USAGE = `
Usage: albef-embed synth --out DIR [--preset albef_4m | --arch FILE] [options]

Writes a model of the exact architecture with seeded random weights (for benchmarks and tests).

Options:
  --preset NAME       albef_4m | albef_14m (default albef_4m)
  --arch FILE         arch.json instead of a preset
  --image-res N       serving resolution (default 384)
  --precision P       fp32 | int8 | fp16
  --name NAME         model name (default: <preset>-synthetic)
  --seed N            random seed (default 1)
  --force             replace DIR if it exists
`;

const common = {
  out: { type: 'string' },
  preset: { type: 'string' },
  arch: { type: 'string' },
  'image-res': { type: 'string' },
  precision: { type: 'string' },
  name: { type: 'string' },
  force: { type: 'boolean' },
} as const;

/** --preset and --arch both name the architecture: one of them. */
function oneArchitecture(values: { preset?: string; arch?: string }, usage: string): void {
  if (values.preset !== undefined && values.arch !== undefined)
    throw new UsageError(`give either --preset or --arch, not both\n\n${usage.trim()}`);
}

export async function convertCommand(argv: string[]): Promise<void> {
  const { values } = parse(argv, { ...common, checkpoint: { type: 'string' } }, CONVERT_USAGE);
  if (!values.checkpoint || !values.out)
    throw new UsageError(`--checkpoint and --out are required\n\n${CONVERT_USAGE.trim()}`);
  oneArchitecture(values, CONVERT_USAGE);
  await inputFile(values.checkpoint, '--checkpoint');
  if (values.arch) await inputFile(values.arch, '--arch');
  const started = Date.now();
  const manifest = await convertCheckpoint({
    checkpoint: values.checkpoint,
    out: values.out,
    preset: oneOf(values.preset, '--preset', PRESET_NAMES),
    archFile: values.arch,
    imageRes: intOption(values['image-res'], '--image-res'),
    precision: oneOf(values.precision, '--precision', PRECISIONS),
    name: values.name,
    force: values.force,
    log,
  });
  log(
    `wrote ${values.out} (${manifest.name}, ${manifest.precision}, ${manifest.image_res}px) in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
}

export async function synthCommand(argv: string[]): Promise<void> {
  const { values } = parse(argv, { ...common, seed: { type: 'string' } }, SYNTH_USAGE);
  if (!values.out) throw new UsageError(`--out is required\n\n${SYNTH_USAGE.trim()}`);
  oneArchitecture(values, SYNTH_USAGE);
  if (values.arch) await inputFile(values.arch, '--arch');
  const preset = oneOf(values.preset, '--preset', PRESET_NAMES);
  const arch = await loadArch({
    preset,
    archFile: values.arch,
    imageRes: intOption(values['image-res'], '--image-res'),
  });
  const started = Date.now();
  const manifest = await synthesizeModel({
    arch,
    out: values.out,
    name: values.name ?? `${preset ?? (values.arch ? 'custom' : 'albef_4m')}-synthetic`,
    precision: oneOf(values.precision, '--precision', PRECISIONS),
    seed: intOption(values.seed, '--seed', 0),
    force: values.force,
    log,
  });
  log(
    `wrote ${values.out} (${manifest.name}, ${manifest.precision}, ${manifest.image_res}px) in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
}
