// What a loaded model should tell its operator: today, int8 weights that this CPU's integer kernel
// cannot multiply exactly (full-range weights of converters before 1.2.0 on CPUs without VNNI/AMX).
// Shown in GET /models and logged at start.

import { SAFE_INT8_WEIGHT_MAX, type CpuFeatures } from '../core/cpu-features.js';
import { PRESETS } from '../convert/arch.js';
import type { ModelManifest } from '../core/model-manifest.js';

/** Converters before 1.2.0 did not record their quantization and stored weights up to ±127. */
const LEGACY_WEIGHT_MAX = 127;

export function modelWarnings(manifest: ModelManifest, dir: string, cpu: CpuFeatures): string[] {
  if (manifest.precision !== 'int8') return [];
  const weightMax = manifest.quantization?.weight_max ?? LEGACY_WEIGHT_MAX;
  if (weightMax <= SAFE_INT8_WEIGHT_MAX || !cpu.int8PairsSaturate) return [];
  const redo = reconvertCommand(manifest, dir);
  return [
    `int8 weights up to ±${weightMax} (converter ${manifest.converter_version}): this CPU's integer kernel (${cpu.int8Kernel}, no VNNI) ` +
      `saturates on them, so the vectors drift from the official ones (cosine ≈ 0.98 measured). Reconvert with this version: ${redo}`,
  ];
}

/** Whether the recorded architecture is the official one (both presets share it). */
function officialArchitecture(a: ModelManifest['architecture']): boolean {
  const o = PRESETS.albef_4m;
  const same = (x: object, y: object): boolean =>
    Object.entries(y).every(([k, v]) => (x as Record<string, unknown>)[k] === v);
  return a.embed_dim === o.embed_dim && same(a.vision, o.vision) && same(a.text, o.text);
}

/** The command that writes this model directory again with the current converter, under the same name and resolution. */
export function reconvertCommand(manifest: ModelManifest, dir: string): string {
  const arch = officialArchitecture(manifest.architecture) ? '' : ' --arch ARCH.json';
  const keep = `${arch} --image-res ${manifest.image_res} --precision ${manifest.precision} --name ${manifest.name}`;
  const seed = manifest.source.seed !== undefined ? ` --seed ${manifest.source.seed}` : '';
  const [command, more] = manifest.source.synthetic
    ? ['synth', seed]
    : [`convert --checkpoint ${manifest.source.file ?? 'CHECKPOINT.pth'}`, ''];
  return `albef-embed ${command}${keep}${more} --out ${dir} --force`;
}
