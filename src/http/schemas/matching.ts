// /v1/rerank and /classify: image–text matching requests and their scores.

import Type, { type Static } from 'typebox';
import { ModelName, ref } from './common.js';
import { ImageValue } from './embed.js';
import { LabelScore as LabelScoreFields, PairScore } from '../../service/answers.js';

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
  { ...PairScore.properties, document: Type.Optional(ref(RerankItem)) },
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

export const LabelScore = Type.Object(LabelScoreFields.properties, {
  $id: 'LabelScore',
  description: 'one label scored for one image',
});

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
