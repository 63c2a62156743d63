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

export const OpenAIErrorResponse = Type.Object(
  {
    error: Type.Object({
      message: Type.String(),
      type: Type.String({ description: "OpenAI's error class: invalid_request_error, authentication_error, permission_error, rate_limit_error or server_error" }),
      code: Type.String({ description: 'stable machine-readable code (as in Error)' }),
      param: Type.Unsafe<string | null>({ type: 'string', nullable: true, description: 'the request field at fault, or null' }),
      index: Type.Optional(Type.Integer({ description: 'position of the offending item in `input`' })),
      request_id: Type.Optional(Type.String()),
    }),
  },
  { $id: 'OpenAIError', description: "errors under /v1/: OpenAI's shape, a superset of Error" },
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

const ImageValue = Type.String({ description: 'base64 image bytes or a data: URI (JPEG, PNG, WebP, GIF, TIFF, AVIF/HEIF)' });

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
    dimensions: Type.Optional(Type.Integer({ minimum: 1, description: "must equal the model's dimension when given: ALBEF was not trained for truncated vectors" })),
    user: Type.Optional(Type.String({ description: 'accepted and ignored' })),
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

export const ModelsResponse = Type.Object({
  default: Type.String(),
  models: Type.Array(
    Type.Object({
      name: Type.String(),
      dim: Type.Integer(),
      image_res: Type.Integer(),
      precision: Type.String(),
      provider: Type.Object({ image: Type.String(), text: Type.String() }),
      sessions: Type.Object({ image: Type.Integer(), text: Type.Integer() }, { description: 'ONNX Runtime sessions per tower, running batches side by side' }),
      max_length: Type.Integer(),
    }),
  ),
});

export const OpenAIModel = Type.Object({
  id: Type.String({ description: 'the model name to pass as `model`' }),
  object: Type.Literal('model'),
  created: Type.Integer({ description: 'when the model directory was converted (Unix seconds)' }),
  owned_by: Type.String(),
  modalities: Type.Array(Type.Union([Type.Literal('text'), Type.Literal('image')]), { description: 'what it embeds, into one shared space' }),
  dimensions: Type.Integer({ description: 'length of its vectors, the only `dimensions` it accepts' }),
});
export type OpenAIModelT = Static<typeof OpenAIModel>;

export const OpenAIModelList = Type.Object({ object: Type.Literal('list'), data: Type.Array(OpenAIModel) });

const Millis = (description: string) => Type.String({ description: `${description}, in ms`, pattern: '^[0-9]+(\\.[0-9]+)?$', example: '1.250' });

/** Response headers of the embedding routes (as TEI sends them); each is the longest among the request's items. */
export const TimingHeaders = {
  'x-queue-time': Millis('time an item waited in the batch queue before its batch started'),
  'x-inference-time': Millis("run time of the item's batch"),
  'x-decode-time': Millis('time to decode and resize an image (only when the request has images)'),
  'x-total-time': Millis('time from the request arriving until its vectors were ready'),
};
const { 'x-decode-time': _decode, ...textTiming } = TimingHeaders;
export const TextTimingHeaders = textTiming;

/** A response schema with documented headers (@fastify/swagger reads `headers`; serialisation ignores it). */
export function withHeaders<T extends object>(schema: T, headers: Record<string, unknown>): T {
  return { ...schema, headers } as T;
}

export const StatusResponse = Type.Object({ status: Type.String() });

/** The error responses a route can give, for its schema. */
export function errors(...statuses: number[]): Record<number, typeof ErrorResponse> {
  return Object.fromEntries(statuses.map((s) => [s, Type.Ref('Error') as unknown as typeof ErrorResponse]));
}
