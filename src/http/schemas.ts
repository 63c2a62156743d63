// Request and response schemas: written once, used by Fastify to validate and serialise, by the type
// provider for handler types, and by @fastify/swagger for the OpenAPI document. Every body has an $id:
// the app adds them all (SHARED_SCHEMAS) and routes point at them with ref(), so the document names
// each one as a component that client generators turn into a type of that name. Vectors in the
// examples are shortened to three numbers.

import Type, { type Static, type TSchema } from 'typebox';

/** A $ref to a named schema, typed as the schema itself (so handlers keep its static type). */
export function ref<T extends TSchema>(schema: T): T {
  const id = (schema as { $id?: string }).$id;
  if (!id) throw new Error('ref() needs a schema with an $id');
  return Type.Ref(id) as unknown as T;
}

export const EncodingFormat = Type.Union([Type.Literal('float'), Type.Literal('base64')], {
  description: '`float`: arrays of numbers; `base64`: each vector as base64 of little-endian float32',
  default: 'float',
});

const ModelName = Type.String({
  description: 'model name (GET /models); the first loaded model when omitted',
  minLength: 1,
  maxLength: 200,
});

export const ErrorResponse = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'stable machine-readable code' }),
      message: Type.String(),
      index: Type.Optional(Type.Integer({ description: 'position of the offending item in the request' })),
      request_id: Type.Optional(Type.String()),
    }),
  },
  {
    $id: 'Error',
    description: 'every error has this shape',
    example: {
      error: { code: 'model_not_found', message: 'unknown model "nope"; loaded: albef_4m', request_id: 'req-1' },
    },
  },
);

export const OpenAIErrorResponse = Type.Object(
  {
    error: Type.Object({
      message: Type.String(),
      type: Type.String({
        description:
          "OpenAI's error class: invalid_request_error, authentication_error, permission_error, rate_limit_error or server_error",
      }),
      code: Type.String({ description: 'stable machine-readable code (as in Error)' }),
      param: Type.Unsafe<string | null>({
        type: 'string',
        nullable: true,
        description: 'the request field at fault, or null',
      }),
      index: Type.Optional(Type.Integer({ description: 'position of the offending item in `input`' })),
      request_id: Type.Optional(Type.String()),
    }),
  },
  {
    $id: 'OpenAIError',
    description: "errors under /v1/: OpenAI's shape, a superset of Error",
    example: {
      error: {
        message: 'unknown model "nope"; loaded: albef_4m',
        type: 'invalid_request_error',
        code: 'model_not_found',
        param: 'model',
        request_id: 'req-1',
      },
    },
  },
);

export const Embedding = Type.Union(
  [Type.Array(Type.Number()), Type.String({ description: 'base64 of little-endian float32' })],
  {
    $id: 'Embedding',
    description: 'one L2-normalised vector: numbers (`float`) or base64 of little-endian float32 (`base64`)',
  },
);

export const EmbedResponse = Type.Object(
  {
    model: Type.String(),
    modality: Type.Union([Type.Literal('text'), Type.Literal('image')]),
    dim: Type.Integer(),
    embeddings: Type.Array(ref(Embedding), { description: 'L2-normalised vectors, in input order' }),
  },
  {
    $id: 'EmbeddingResponse',
    description: 'the vectors, in input order',
    example: { model: 'albef_4m', modality: 'text', dim: 256, embeddings: [[0.0213, -0.0478, 0.0051]] },
  },
);
export type EmbedResponseT = Static<typeof EmbedResponse>;

export const TextRequest = Type.Object(
  {
    text: Type.Optional(Type.String({ description: 'one text' })),
    texts: Type.Optional(Type.Array(Type.String(), { description: 'several texts', minItems: 1 })),
    model: Type.Optional(ModelName),
    caption_cleanup: Type.Optional(
      Type.Boolean({
        default: true,
        description: "ALBEF's pre_caption clean-up (lowercase, drop punctuation, ≤ 30 words)",
      }),
    ),
    encoding_format: Type.Optional(EncodingFormat),
  },
  {
    $id: 'EmbedTextRequest',
    additionalProperties: false,
    description: 'give exactly one of `text` or `texts`',
    example: { texts: ['a dog on a skateboard', 'two people at the beach'] },
  },
);
export type TextRequestT = Static<typeof TextRequest>;

const ImageValue = Type.String({
  description: 'base64 image bytes or a data: URI (JPEG, PNG, WebP, GIF, TIFF, BMP, AVIF/HEIF)',
});

export const ImageJsonRequest = Type.Object(
  {
    url: Type.Optional(Type.String({ description: 'http(s) URL of one image' })),
    urls: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
    image: Type.Optional(ImageValue),
    images: Type.Optional(Type.Array(ImageValue, { minItems: 1 })),
    model: Type.Optional(ModelName),
    encoding_format: Type.Optional(EncodingFormat),
  },
  {
    $id: 'EmbedImageRequest',
    additionalProperties: false,
    description: 'give exactly one of `url`, `urls`, `image`, `images`',
    example: { urls: ['https://example.com/cat.jpg'] },
  },
);
export type ImageJsonRequestT = Static<typeof ImageJsonRequest>;

export const ImageMultipartRequest = Type.Object(
  {
    file: Type.Optional(
      Type.Array(Type.String({ format: 'binary' }), {
        description: 'image files, one per part, embedded in order (any part name)',
      }),
    ),
    model: Type.Optional(ModelName),
    encoding_format: Type.Optional(EncodingFormat),
  },
  { $id: 'EmbedImageMultipartRequest', description: 'multipart/form-data: each file part is one image' },
);

export const OpenAITextItem = Type.Object(
  { text: Type.String() },
  { $id: 'OpenAITextItem', additionalProperties: false, description: 'a text (as a plain string is)' },
);
export const OpenAIImageItem = Type.Object(
  { image: Type.String({ description: 'http(s) URL or data: URI' }) },
  {
    $id: 'OpenAIImageItem',
    additionalProperties: false,
    description: 'an image, embedded into the same space as the texts',
  },
);

// Named, not inline: a union inside an array inside a union is where generators lose the array
// (openapi-typescript-codegen types an inline one as `string`).
export const OpenAIInputItem = Type.Union([Type.String(), ref(OpenAITextItem), ref(OpenAIImageItem)], {
  $id: 'OpenAIInputItem',
  description: 'a text (a string or {"text"}) or an image',
});

export const OpenAIRequest = Type.Object(
  {
    input: Type.Union([Type.String(), Type.Array(ref(OpenAIInputItem), { minItems: 1 })], {
      description: 'a string, or an array of strings, {"text"} and {"image"} items (mixed freely)',
    }),
    model: Type.Optional(ModelName),
    encoding_format: Type.Optional(EncodingFormat),
    dimensions: Type.Optional(
      Type.Integer({
        minimum: 1,
        description: "must equal the model's dimension when given: ALBEF was not trained for truncated vectors",
      }),
    ),
    user: Type.Optional(Type.String({ description: 'accepted and ignored' })),
  },
  {
    $id: 'OpenAIEmbeddingRequest',
    additionalProperties: false,
    example: { model: 'albef_4m', input: ['a dog on a skateboard', { image: 'https://example.com/dog.jpg' }] },
  },
);
export type OpenAIRequestT = Static<typeof OpenAIRequest>;

export const OpenAIEmbedding = Type.Object(
  {
    object: Type.Literal('embedding'),
    index: Type.Integer({ description: 'position in `input`' }),
    embedding: ref(Embedding),
  },
  { $id: 'OpenAIEmbedding', description: 'the vector of one input item' },
);

export const OpenAIUsage = Type.Object(
  {
    prompt_tokens: Type.Integer({ description: 'token ids fed to the text tower, [CLS] included' }),
    total_tokens: Type.Integer(),
  },
  { $id: 'OpenAIUsage', description: 'tokens the request used (images count none)' },
);

export const OpenAIResponse = Type.Object(
  {
    object: Type.Literal('list'),
    data: Type.Array(ref(OpenAIEmbedding)),
    model: Type.String(),
    usage: ref(OpenAIUsage),
  },
  {
    $id: 'OpenAIEmbeddingResponse',
    description: "the vectors in OpenAI's shape: `data[i]` answers `input[i]`",
    example: {
      object: 'list',
      data: [{ object: 'embedding', index: 0, embedding: [0.0213, -0.0478, 0.0051] }],
      model: 'albef_4m',
      usage: { prompt_tokens: 7, total_tokens: 7 },
    },
  },
);

const SkippedProvider = Type.Object({ provider: Type.String(), reason: Type.String() });

export const ModelInfo = Type.Object(
  {
    name: Type.String(),
    dim: Type.Integer(),
    image_res: Type.Integer(),
    precision: Type.String(),
    provider: Type.Object(
      { image: Type.String(), text: Type.String() },
      { description: 'execution provider each tower runs on: cpu, cuda or webgpu' },
    ),
    provider_skipped: Type.Object(
      { image: Type.Array(SkippedProvider), text: Type.Array(SkippedProvider) },
      {
        description:
          'providers tried before the one each tower got (--provider auto, or default where CUDA is installed), with the reason each was passed over',
      },
    ),
    max_batch: Type.Object(
      { image: Type.Integer(), text: Type.Integer() },
      { description: 'largest batch per inference of each tower (by provider unless configured)' },
    ),
    sessions: Type.Object(
      { image: Type.Integer(), text: Type.Integer() },
      { description: 'ONNX Runtime sessions per tower, running batches side by side' },
    ),
    max_length: Type.Integer(),
    capabilities: Type.Array(Type.Union([Type.Literal('embed'), Type.Literal('rerank'), Type.Literal('classify')]), {
      description:
        'embed: /embed/*, /v1/embeddings; rerank: /v1/rerank and /classify with itm (the fusion part is loaded); classify: /classify',
    }),
    temp: Type.Optional(
      Type.Number({ description: "ALBEF's learned temperature (zero-shot scores use it clamped to [0.001, 0.5])" }),
    ),
    warnings: Type.Array(Type.String(), {
      description:
        'what the operator should know about this model here, e.g. int8 weights this CPU cannot multiply exactly (with the command that reconverts them)',
    }),
  },
  { $id: 'ModelInfo', description: 'one loaded model' },
);

export const ModelsResponse = Type.Object(
  { default: Type.String(), models: Type.Array(ref(ModelInfo)) },
  {
    $id: 'ModelsResponse',
    description: 'the loaded models; `default` answers requests that name none',
    example: {
      default: 'albef_4m',
      models: [
        {
          name: 'albef_4m',
          dim: 256,
          image_res: 384,
          precision: 'fp32',
          provider: { image: 'cpu', text: 'cpu' },
          provider_skipped: { image: [], text: [] },
          max_batch: { image: 2, text: 64 },
          sessions: { image: 1, text: 1 },
          max_length: 30,
          capabilities: ['embed', 'rerank', 'classify'],
          temp: 0.0504,
          warnings: [],
        },
      ],
    },
  },
);

export const OpenAIModel = Type.Object(
  {
    id: Type.String({ description: 'the model name to pass as `model`' }),
    object: Type.Literal('model'),
    created: Type.Integer({ description: 'when the model directory was converted (Unix seconds)' }),
    owned_by: Type.String(),
    modalities: Type.Array(Type.Union([Type.Literal('text'), Type.Literal('image')]), {
      description: 'what it embeds, into one shared space',
    }),
    dimensions: Type.Integer({ description: 'length of its vectors, the only `dimensions` it accepts' }),
  },
  {
    $id: 'OpenAIModel',
    description: "a loaded model, in OpenAI's shape plus what it embeds",
    example: {
      id: 'albef_4m',
      object: 'model',
      created: 1764201600,
      owned_by: 'albef-embed',
      modalities: ['text', 'image'],
      dimensions: 256,
    },
  },
);
export type OpenAIModelT = Static<typeof OpenAIModel>;

export const OpenAIModelList = Type.Object(
  { object: Type.Literal('list'), data: Type.Array(ref(OpenAIModel)) },
  { $id: 'OpenAIModelList', description: "the loaded models, in OpenAI's list shape" },
);

const Millis = (description: string) =>
  Type.String({ description: `${description}, in ms`, pattern: '^[0-9]+(\\.[0-9]+)?$', example: '1.250' });

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
  return { ...schema, headers };
}

export const RerankTextItem = Type.Object(
  { text: Type.String() },
  { $id: 'RerankTextItem', additionalProperties: false, description: 'a text' },
);
export const RerankImageItem = Type.Object(
  { image: Type.String({ description: 'http(s) URL, data: URI or base64 image bytes' }) },
  { $id: 'RerankImageItem', additionalProperties: false, description: 'an image' },
);
export const RerankItem = Type.Union(
  [Type.String({ description: 'a text' }), ref(RerankTextItem), ref(RerankImageItem)],
  { $id: 'RerankItem', description: 'a text (a string or `{"text"}`) or an image (`{"image"}`)' },
);

export const RerankRequest = Type.Object(
  {
    model: Type.Optional(ModelName),
    query: ref(RerankItem),
    documents: Type.Array(ref(RerankItem), {
      minItems: 1,
      description: 'texts for an image query, images for a text query',
    }),
    top_n: Type.Optional(Type.Integer({ minimum: 1, description: 'keep the n best results' })),
    return_documents: Type.Optional(
      Type.Boolean({ default: false, description: 'add each document, as given, to its result' }),
    ),
    caption_cleanup: Type.Optional(
      Type.Boolean({ default: true, description: "ALBEF's pre_caption clean-up of the texts" }),
    ),
  },
  {
    $id: 'RerankRequest',
    additionalProperties: false,
    description: 'every (query, document) pair must be one text and one image',
    example: {
      query: 'a dog on a skateboard',
      documents: [{ image: 'https://example.com/1.jpg' }, { image: 'https://example.com/2.jpg' }],
      top_n: 1,
    },
  },
);
export type RerankRequestT = Static<typeof RerankRequest>;

export const RerankResult = Type.Object(
  {
    index: Type.Integer({ description: 'position of the document in the request' }),
    relevance_score: Type.Number({ description: "match probability from ALBEF's ITM head: softmax(itm_logits)[1]" }),
    itm_logits: Type.Array(Type.Number(), {
      minItems: 2,
      maxItems: 2,
      description: 'ITM head logits (no-match, match)',
    }),
    itc: Type.Number({ description: 'cosine of the query and document embeddings (the first-stage score)' }),
    document: Type.Optional(ref(RerankItem)),
  },
  { $id: 'RerankResult', description: 'one document scored against the query' },
);

export const RerankResponse = Type.Object(
  {
    id: Type.String({ description: 'the request id' }),
    model: Type.String(),
    results: Type.Array(ref(RerankResult), { description: 'by relevance_score, best first (ties by index)' }),
    usage: Type.Object(
      { texts: Type.Integer(), images: Type.Integer() },
      { description: 'texts and images in the request' },
    ),
  },
  {
    $id: 'RerankResponse',
    description: 'the documents scored by the image–text matching head',
    example: {
      id: 'req-7',
      model: 'albef_4m',
      results: [{ index: 1, relevance_score: 0.93, itm_logits: [-1.31, 1.29], itc: 0.41 }],
      usage: { texts: 1, images: 2 },
    },
  },
);

const ClassifyOptions = {
  labels: Type.Array(Type.String(), { minItems: 2, description: 'candidate labels' }),
  template: Type.Optional(
    Type.String({
      default: '{}',
      description: 'text for each label, `{}` replaced by the label (e.g. "a photo of a {}")',
    }),
  ),
  caption_cleanup: Type.Optional(
    Type.Boolean({ default: true, description: "ALBEF's pre_caption clean-up of the label texts" }),
  ),
  itm: Type.Optional(
    Type.Boolean({ default: false, description: 'add each label’s ITM match probability (runs the fusion layers)' }),
  ),
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
  {
    $id: 'ClassifyRequest',
    additionalProperties: false,
    description: 'give exactly one of `url`, `urls`, `image`, `images`, and the labels',
    example: { url: 'https://example.com/cat.jpg', labels: ['cat', 'dog', 'car'], template: 'a photo of a {}' },
  },
);
export type ClassifyJsonRequestT = Static<typeof ClassifyJsonRequest>;

export const ClassifyMultipartRequest = Type.Object(
  {
    file: Type.Optional(
      Type.Array(Type.String({ format: 'binary' }), {
        description: 'image files, one per part, in order (any part name)',
      }),
    ),
    // Documents the parts; the handler reads them (at least two `labels` fields are required).
    labels: Type.Optional(Type.Array(Type.String(), { description: 'repeated `labels` fields, at least two' })),
    template: Type.Optional(Type.String()),
    caption_cleanup: Type.Optional(Type.String({ enum: ['true', 'false'] })),
    itm: Type.Optional(Type.String({ enum: ['true', 'false'] })),
    top_k: Type.Optional(Type.String({ pattern: '^[1-9][0-9]*$' })),
    model: Type.Optional(ModelName),
  },
  { $id: 'ClassifyMultipartRequest', description: 'multipart/form-data: image file parts plus the options as fields' },
);

export const LabelScore = Type.Object(
  {
    label: Type.String(),
    score: Type.Number({
      description: 'softmax over the labels of cos(image, text) / temp (temp clamped to [0.001, 0.5], as ALBEF does)',
    }),
    itm_prob: Type.Optional(Type.Number({ description: 'ITM match probability (with `itm: true`)' })),
  },
  { $id: 'LabelScore', description: 'one label scored for one image' },
);

export const ClassifyResponse = Type.Object(
  {
    model: Type.String(),
    results: Type.Array(Type.Array(ref(LabelScore)), {
      description: 'per image, in input order: its labels by score, best first',
    }),
  },
  {
    $id: 'ClassifyResponse',
    description: 'zero-shot scores per image',
    example: {
      model: 'albef_4m',
      results: [
        [
          { label: 'cat', score: 0.91 },
          { label: 'dog', score: 0.07 },
          { label: 'car', score: 0.02 },
        ],
      ],
    },
  },
);

export const StatusResponse = Type.Object(
  { status: Type.String({ description: 'ok; or the service phase: starting, loading, ready, failed, draining' }) },
  { $id: 'StatusResponse', description: 'the service state', example: { status: 'ready' } },
);

/** Every named schema, referenced ones first: the app adds them all before the routes. */
export const SHARED_SCHEMAS: TSchema[] = [
  ErrorResponse,
  OpenAIErrorResponse,
  Embedding,
  EmbedResponse,
  TextRequest,
  ImageJsonRequest,
  ImageMultipartRequest,
  OpenAITextItem,
  OpenAIImageItem,
  OpenAIInputItem,
  OpenAIRequest,
  OpenAIEmbedding,
  OpenAIUsage,
  OpenAIResponse,
  ModelInfo,
  ModelsResponse,
  OpenAIModel,
  OpenAIModelList,
  RerankTextItem,
  RerankImageItem,
  RerankItem,
  RerankRequest,
  RerankResult,
  RerankResponse,
  ClassifyJsonRequest,
  ClassifyMultipartRequest,
  LabelScore,
  ClassifyResponse,
  StatusResponse,
];

/** What each error status means, for the document's response descriptions. */
const ERROR_WHEN: Record<number, string> = {
  400: 'malformed or invalid request',
  401: 'API keys are configured and none or a wrong one was given',
  404: 'unknown model (or route)',
  413: 'over a size or count limit',
  415: 'unsupported image type or request content type',
  422: 'an image that cannot be decoded',
  500: 'inference failed',
  502: 'an image URL could not be fetched',
  503: 'queue full (with Retry-After), models not loaded yet, or shutting down',
  504: 'an item waited past the request deadline',
};

/** The error responses a route can give, for its schema. */
export function errors(...statuses: number[]): Record<number, typeof ErrorResponse> {
  return Object.fromEntries(
    statuses.map((s) => [s, Type.Ref('Error', { description: ERROR_WHEN[s] }) as unknown as typeof ErrorResponse]),
  );
}
