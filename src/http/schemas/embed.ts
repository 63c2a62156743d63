// /embed/text and /embed/image: requests and the vectors they answer with.

import Type, { type Static } from 'typebox';
import { Embedding, EncodingFormat, ModelName, ref } from './common.js';

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

export const ImageValue = Type.String({
  description: 'an image: base64 bytes, a data: URI or an http(s) URL (JPEG, PNG, WebP, GIF, TIFF, BMP, AVIF/HEIF)',
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
