// ALBEF architectures: the official presets and the arch.json schema for anything else (docs/api.md, "arch.json").

import Type, { type Static } from 'typebox';
import Value from 'typebox/value';
import { WeightsError } from '../core/errors.js';

const PositiveInt = Type.Integer({ minimum: 1 });

export const ArchSchema = Type.Object(
  {
    layout: Type.Optional(Type.Union([Type.Literal('pretrain'), Type.Literal('finetuned')])),
    vision: Type.Object({ patch: PositiveInt, dim: PositiveInt, depth: PositiveInt, heads: PositiveInt }),
    text: Type.Object({
      vocab_size: PositiveInt,
      dim: PositiveInt,
      layers: PositiveInt,
      fusion_layer: Type.Integer({ minimum: 0 }),
      heads: PositiveInt,
      intermediate: PositiveInt,
      max_pos: PositiveInt,
    }),
    embed_dim: PositiveInt,
    checkpoint_image_res: Type.Optional(PositiveInt),
    image_res: PositiveInt,
    max_length: Type.Optional(PositiveInt),
    max_words: Type.Optional(PositiveInt),
  },
  { additionalProperties: true },
);
export type ArchJson = Static<typeof ArchSchema>;

/** A fully resolved architecture: what the graphs are built from and what model.json records. */
export interface Arch {
  layout: 'pretrain' | 'finetuned';
  vision: { patch: number; dim: number; depth: number; heads: number; mlp: number; ln_eps: number };
  text: {
    vocab_size: number;
    dim: number;
    layers: number;
    fusion_layer: number;
    heads: number;
    intermediate: number;
    max_pos: number;
    ln_eps: number;
  };
  embed_dim: number;
  checkpoint_image_res: number;
  image_res: number;
  max_length: number;
  max_words: number;
}

export const PRESET_NAMES = ['albef_4m', 'albef_14m'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

const OFFICIAL: ArchJson = {
  layout: 'pretrain',
  vision: { patch: 16, dim: 768, depth: 12, heads: 12 },
  text: { vocab_size: 30522, dim: 768, layers: 12, fusion_layer: 6, heads: 12, intermediate: 3072, max_pos: 512 },
  embed_dim: 256,
  checkpoint_image_res: 256,
  image_res: 384,
  max_length: 30,
  max_words: 30,
};

/** Both official checkpoints share one architecture; they differ in their pretraining data. */
export const PRESETS: Record<PresetName, ArchJson> = { albef_4m: OFFICIAL, albef_14m: OFFICIAL };

export function isPreset(name: string): name is PresetName {
  return (PRESET_NAMES as readonly string[]).includes(name);
}

export function parseArchJson(value: unknown, source: string): ArchJson {
  if (!Value.Check(ArchSchema, value)) {
    const errors = [...Value.Errors(ArchSchema, value)].slice(0, 5).map((e) => `${e.instancePath || '/'} ${e.message}`);
    throw new WeightsError('bad_arch', `${source}: invalid arch.json: ${errors.join('; ')}`);
  }
  return value;
}

/** Fills defaults (ViT MLP ratio 4, the official LayerNorm epsilons) and checks the head split. */
export function resolveArch(json: ArchJson, overrides: { imageRes?: number } = {}): Arch {
  const arch: Arch = {
    layout: json.layout ?? 'pretrain',
    vision: { ...json.vision, mlp: json.vision.dim * 4, ln_eps: 1e-6 },
    text: { ...json.text, ln_eps: 1e-12 },
    embed_dim: json.embed_dim,
    checkpoint_image_res: json.checkpoint_image_res ?? json.image_res,
    image_res: overrides.imageRes ?? json.image_res,
    max_length: json.max_length ?? 30,
    max_words: json.max_words ?? 30,
  };
  if (arch.vision.dim % arch.vision.heads)
    throw new WeightsError(
      'bad_arch',
      `vision.dim ${arch.vision.dim} is not divisible by vision.heads ${arch.vision.heads}`,
    );
  if (arch.text.dim % arch.text.heads)
    throw new WeightsError('bad_arch', `text.dim ${arch.text.dim} is not divisible by text.heads ${arch.text.heads}`);
  if (arch.image_res % arch.vision.patch)
    throw new WeightsError(
      'bad_arch',
      `image_res ${arch.image_res} is not a multiple of the patch size ${arch.vision.patch}`,
    );
  if (arch.text.fusion_layer < 1 || arch.text.fusion_layer > arch.text.layers) {
    throw new WeightsError(
      'bad_arch',
      `text.fusion_layer ${arch.text.fusion_layer} must be within 1..${arch.text.layers}`,
    );
  }
  return arch;
}
