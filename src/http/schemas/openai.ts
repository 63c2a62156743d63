// /v1/embeddings and /v1/models: OpenAI's shapes, plus what this service adds (image items,
// modalities, dimensions).

import Type, { type Static } from 'typebox';
import { EncodingFormat, Embedding, ModelName, ref } from './common.js';

export const OpenAITextItem = Type.Object(
  { text: Type.String() },
  { $id: 'OpenAITextItem', additionalProperties: false, description: 'a text (as a plain string is)' },
);
export const OpenAIImageItem = Type.Object(
  { image: Type.String({ description: 'an image: http(s) URL, data: URI or base64 bytes' }) },
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
