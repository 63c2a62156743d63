// Request and response schemas: written once, used by Fastify to validate and serialise, by the type
// provider for handler types, and by @fastify/swagger for the OpenAPI document.

import Type, { type Static } from 'typebox';

export const EncodingFormat = Type.Union([Type.Literal('float'), Type.Literal('base64')], {
  description: '`float`: arrays of numbers; `base64`: each vector as base64 of little-endian float32',
  default: 'float',
});

const ModelName = Type.String({ description: 'model name (GET /models); the first loaded model when omitted', minLength: 1, maxLength: 200 });

export const ErrorResponse = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'stable machine-readable code' }),
      message: Type.String(),
      index: Type.Optional(Type.Integer({ description: 'position of the offending item in the request' })),
      request_id: Type.Optional(Type.String()),
    }),
  },
  { $id: 'Error', description: 'every error has this shape' },
);

export const Embedding = Type.Union([Type.Array(Type.Number()), Type.String({ description: 'base64 of little-endian float32' })]);

export const EmbedResponse = Type.Object(
  {
    model: Type.String(),
    modality: Type.Union([Type.Literal('text'), Type.Literal('image')]),
    dim: Type.Integer(),
    embeddings: Type.Array(Embedding, { description: 'L2-normalised vectors, in input order' }),
  },
  { $id: 'EmbedResponse' },
);
export type EmbedResponseT = Static<typeof EmbedResponse>;

export const TextRequest = Type.Object(
  {
    text: Type.Optional(Type.String({ description: 'one text' })),
    texts: Type.Optional(Type.Array(Type.String(), { description: 'several texts', minItems: 1 })),
    model: Type.Optional(ModelName),
    caption_cleanup: Type.Optional(Type.Boolean({ default: true, description: "ALBEF's pre_caption clean-up (lowercase, drop punctuation, ≤ 30 words)" })),
    encoding_format: Type.Optional(EncodingFormat),
  },
  { additionalProperties: false, description: 'give exactly one of `text` or `texts`' },
);
export type TextRequestT = Static<typeof TextRequest>;

const ImageValue = Type.String({ description: 'base64 image bytes or a data: URI (JPEG, PNG, WebP, GIF, TIFF, BMP, AVIF/HEIF)' });

export const ImageJsonRequest = Type.Object(
  {
    url: Type.Optional(Type.String({ description: 'http(s) URL of one image' })),
    urls: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
    image: Type.Optional(ImageValue),
    images: Type.Optional(Type.Array(ImageValue, { minItems: 1 })),
    model: Type.Optional(ModelName),
    encoding_format: Type.Optional(EncodingFormat),
  },
  { additionalProperties: false, description: 'give exactly one of `url`, `urls`, `image`, `images`' },
);
export type ImageJsonRequestT = Static<typeof ImageJsonRequest>;

export const ImageMultipartRequest = Type.Object(
  {
    file: Type.Optional(Type.Array(Type.String({ format: 'binary' }), { description: 'image files, one per part, embedded in order (any part name)' })),
    model: Type.Optional(ModelName),
    encoding_format: Type.Optional(EncodingFormat),
  },
  { description: 'multipart/form-data: each file part is one image' },
);

const OpenAIInputItem = Type.Union([
  Type.Object({ text: Type.String() }, { additionalProperties: false }),
  Type.Object({ image: Type.String({ description: 'http(s) URL or data: URI' }) }, { additionalProperties: false }),
]);

export const OpenAIRequest = Type.Object(
  {
    input: Type.Union([Type.String(), Type.Array(Type.Union([Type.String(), OpenAIInputItem]), { minItems: 1 })], {
      description: 'a string, or an array of strings, {"text"} and {"image"} items (mixed freely)',
    }),
    model: Type.Optional(ModelName),
    encoding_format: Type.Optional(EncodingFormat),
    user: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
export type OpenAIRequestT = Static<typeof OpenAIRequest>;

export const OpenAIResponse = Type.Object({
  object: Type.Literal('list'),
  data: Type.Array(Type.Object({ object: Type.Literal('embedding'), index: Type.Integer(), embedding: Embedding })),
  model: Type.String(),
  usage: Type.Object({ prompt_tokens: Type.Integer(), total_tokens: Type.Integer() }),
});

const SkippedProvider = Type.Object({ provider: Type.String(), reason: Type.String() });

export const ModelsResponse = Type.Object({
  default: Type.String(),
  models: Type.Array(
    Type.Object({
      name: Type.String(),
      dim: Type.Integer(),
      image_res: Type.Integer(),
      precision: Type.String(),
      provider: Type.Object({ image: Type.String(), text: Type.String() }, { description: 'execution provider each tower runs on: cpu, cuda or webgpu' }),
      provider_skipped: Type.Object(
        { image: Type.Array(SkippedProvider), text: Type.Array(SkippedProvider) },
        { description: 'providers tried before the one each tower got (--provider auto), with the reason each was passed over' },
      ),
      max_batch: Type.Object({ image: Type.Integer(), text: Type.Integer() }, { description: 'largest batch per inference of each tower (by provider unless configured)' }),
      sessions: Type.Object({ image: Type.Integer(), text: Type.Integer() }, { description: 'ONNX Runtime sessions per tower, running batches side by side' }),
      max_length: Type.Integer(),
      capabilities: Type.Array(Type.Union([Type.Literal('embed'), Type.Literal('rerank'), Type.Literal('classify')]), {
        description: 'embed: /embed/*, /v1/embeddings; rerank: /v1/rerank and /classify with itm (the fusion part is loaded); classify: /classify',
      }),
      temp: Type.Optional(Type.Number({ description: "ALBEF's learned temperature (zero-shot scores use it clamped to [0.001, 0.5])" })),
      warnings: Type.Array(Type.String(), { description: 'what the operator should know about this model here, e.g. int8 weights this CPU cannot multiply exactly (with the command that reconverts them)' }),
    }),
  ),
});

const MatchText = Type.Object({ text: Type.String() }, { additionalProperties: false });
const MatchImage = Type.Object({ image: Type.String({ description: 'http(s) URL, data: URI or base64 image bytes' }) }, { additionalProperties: false });
const MatchItem = Type.Union([Type.String({ description: 'a text' }), MatchText, MatchImage]);

export const RerankRequest = Type.Object(
  {
    model: Type.Optional(ModelName),
    query: MatchItem,
    documents: Type.Array(MatchItem, { minItems: 1, description: 'texts for an image query, images for a text query' }),
    top_n: Type.Optional(Type.Integer({ minimum: 1, description: 'keep the n best results' })),
    return_documents: Type.Optional(Type.Boolean({ default: false, description: 'add each document, as given, to its result' })),
    caption_cleanup: Type.Optional(Type.Boolean({ default: true, description: "ALBEF's pre_caption clean-up of the texts" })),
  },
  { additionalProperties: false, description: 'every (query, document) pair must be one text and one image' },
);
export type RerankRequestT = Static<typeof RerankRequest>;

export const RerankResponse = Type.Object({
  id: Type.String({ description: 'the request id' }),
  model: Type.String(),
  results: Type.Array(
    Type.Object({
      index: Type.Integer({ description: 'position of the document in the request' }),
      relevance_score: Type.Number({ description: "match probability from ALBEF's ITM head: softmax(itm_logits)[1]" }),
      itm_logits: Type.Array(Type.Number(), { minItems: 2, maxItems: 2, description: 'ITM head logits (no-match, match)' }),
      itc: Type.Number({ description: 'cosine of the query and document embeddings (the first-stage score)' }),
      document: Type.Optional(MatchItem),
    }),
    { description: 'by relevance_score, best first (ties by index)' },
  ),
  usage: Type.Object({ texts: Type.Integer(), images: Type.Integer() }),
});

const ClassifyOptions = {
  labels: Type.Array(Type.String(), { minItems: 2, description: 'candidate labels' }),
  template: Type.Optional(Type.String({ default: '{}', description: 'text for each label, `{}` replaced by the label (e.g. "a photo of a {}")' })),
  caption_cleanup: Type.Optional(Type.Boolean({ default: true, description: "ALBEF's pre_caption clean-up of the label texts" })),
  itm: Type.Optional(Type.Boolean({ default: false, description: 'add each label’s ITM match probability (runs the fusion layers)' })),
  top_k: Type.Optional(Type.Integer({ minimum: 1, description: 'keep the k best labels per image' })),
  model: Type.Optional(ModelName),
};

export const ClassifyJsonRequest = Type.Object(
  {
    url: Type.Optional(Type.String({ description: 'http(s) URL of one image' })),
    urls: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
    image: Type.Optional(ImageValue),
    images: Type.Optional(Type.Array(ImageValue, { minItems: 1 })),
    ...ClassifyOptions,
  },
  { additionalProperties: false, description: 'give exactly one of `url`, `urls`, `image`, `images`, and the labels' },
);
export type ClassifyJsonRequestT = Static<typeof ClassifyJsonRequest>;

export const ClassifyMultipartRequest = Type.Object(
  {
    file: Type.Optional(Type.Array(Type.String({ format: 'binary' }), { description: 'image files, one per part, in order (any part name)' })),
    // Documents the parts; the handler reads them (at least two `labels` fields are required).
    labels: Type.Optional(Type.Array(Type.String(), { description: 'repeated `labels` fields, at least two' })),
    template: Type.Optional(Type.String()),
    caption_cleanup: Type.Optional(Type.String({ enum: ['true', 'false'] })),
    itm: Type.Optional(Type.String({ enum: ['true', 'false'] })),
    top_k: Type.Optional(Type.String({ pattern: '^[1-9][0-9]*$' })),
    model: Type.Optional(ModelName),
  },
  { description: 'multipart/form-data: image file parts plus the options as fields' },
);

export const ClassifyResponse = Type.Object({
  model: Type.String(),
  results: Type.Array(
    Type.Array(
      Type.Object({
        label: Type.String(),
        score: Type.Number({ description: 'softmax over the labels of cos(image, text) / temp (temp clamped to [0.001, 0.5], as ALBEF does)' }),
        itm_prob: Type.Optional(Type.Number({ description: 'ITM match probability (with `itm: true`)' })),
      }),
    ),
    { description: 'per image, in input order: its labels by score, best first' },
  ),
});

export const StatusResponse = Type.Object({ status: Type.String() });

/** The error responses a route can give, for its schema. */
export function errors(...statuses: number[]): Record<number, typeof ErrorResponse> {
  return Object.fromEntries(statuses.map((s) => [s, Type.Ref('Error') as unknown as typeof ErrorResponse]));
}
