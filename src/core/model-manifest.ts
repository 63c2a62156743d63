// model.json: the contract between the converter (which writes a model directory) and the service
// (which loads it). One schema, used for writing, validating on load, and typing both sides.

import Type, { type Static } from 'typebox';
import Value from 'typebox/value';

export const MANIFEST_FORMAT = 'albef-embed/model@1';

/** CLIP/ALBEF normalisation constants (ALBEF's retrieval transform). */
export const IMAGE_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const IMAGE_STD = [0.26862954, 0.26130258, 0.27577711] as const;

const FileInfo = Type.Object({ bytes: Type.Integer(), sha256: Type.String() });

/** The graphs of image–text matching, by role (model directories from converters before 1.2.0 have none). */
export const FUSION_GRAPHS = {
  image_states: 'image_states.onnx',
  text_states: 'text_states.onnx',
  fusion: 'fusion.onnx',
} as const;

export const ManifestSchema = Type.Object({
  format: Type.Literal(MANIFEST_FORMAT),
  name: Type.String({ minLength: 1 }),
  converter_version: Type.String(),
  created: Type.String(),
  precision: Type.Union([Type.Literal('fp32'), Type.Literal('fp16'), Type.Literal('int8')]),
  embed_dim: Type.Integer({ minimum: 1 }),
  image_res: Type.Integer({ minimum: 1 }),
  architecture: Type.Object({
    layout: Type.Union([Type.Literal('pretrain'), Type.Literal('finetuned')]),
    vision: Type.Object({
      patch: Type.Integer(),
      dim: Type.Integer(),
      depth: Type.Integer(),
      heads: Type.Integer(),
      mlp: Type.Integer(),
      ln_eps: Type.Number(),
    }),
    text: Type.Object({
      vocab_size: Type.Integer(),
      dim: Type.Integer(),
      layers: Type.Integer(),
      fusion_layer: Type.Integer(),
      heads: Type.Integer(),
      intermediate: Type.Integer(),
      max_pos: Type.Integer(),
      ln_eps: Type.Number(),
    }),
    embed_dim: Type.Integer(),
    checkpoint_image_res: Type.Integer(),
    image_res: Type.Integer(),
    max_length: Type.Integer(),
    max_words: Type.Integer(),
  }),
  preprocessing: Type.Object({
    image: Type.Object({
      size: Type.Integer({ minimum: 1 }),
      resample: Type.Literal('pil-bicubic'),
      mean: Type.Array(Type.Number(), { minItems: 3, maxItems: 3 }),
      std: Type.Array(Type.Number(), { minItems: 3, maxItems: 3 }),
    }),
    text: Type.Object({
      caption_cleanup_default: Type.Boolean(),
      max_words: Type.Integer({ minimum: 1 }),
      max_length: Type.Integer({ minimum: 2 }),
      cls_token_id: Type.Integer(),
      pad_token_id: Type.Integer(),
      add_sep: Type.Boolean(),
      lowercase: Type.Boolean(),
    }),
  }),
  /** Image–text matching (Retrieval.py's ITM re-rank): ALBEF's learned temperature and the graphs; absent = embeddings only. */
  fusion: Type.Optional(
    Type.Object({
      temp: Type.Optional(
        Type.Number({
          description: "the checkpoint's temp, unclamped (absent when the checkpoint has none: no zero-shot scores)",
        }),
      ),
      graphs: Type.Object({ image_states: Type.String(), text_states: Type.String(), fusion: Type.String() }),
    }),
  ),
  /** int8 models: how the weights were quantized (absent from models of converters before 1.2.0, whose weights use ±127). */
  quantization: Type.Optional(
    Type.Object({
      scheme: Type.Literal('symmetric-per-output-channel'),
      weight_max: Type.Integer({ minimum: 1, maximum: 127, description: 'largest |int8 weight| stored' }),
    }),
  ),
  source: Type.Object({
    file: Type.Optional(Type.String()),
    bytes: Type.Optional(Type.Integer()),
    sha256: Type.Optional(Type.String()),
    synthetic: Type.Optional(Type.Boolean()),
    seed: Type.Optional(Type.Integer()),
  }),
  files: Type.Record(Type.String(), FileInfo),
});

export type ModelManifest = Static<typeof ManifestSchema>;

export function checkManifest(value: unknown): string[] {
  if (Value.Check(ManifestSchema, value)) return [];
  return [...Value.Errors(ManifestSchema, value)].slice(0, 5).map((e) => `${e.instancePath || '/'} ${e.message}`);
}

/**
 * What identifies the vectors a tower makes: the sha256 of its weights file (the graph's external
 * data, or the graph itself when it has none), as model.json records it. Another checkpoint,
 * precision or resolution changes it; a converter that only rewrites the graph around the same
 * weights does not.
 */
export function towerFingerprint(manifest: ModelManifest, modality: 'image' | 'text'): string {
  const graph = modality === 'image' ? 'image.onnx' : 'text.onnx';
  const file = manifest.files[`${graph}.data`] ?? manifest.files[graph];
  if (!file) throw new Error(`model.json lists no ${graph}`);
  return file.sha256;
}
