// /v1/collections and /v1/search: the collections of the store, and search over one of them (ITC,
// then the ITM re-rank of the first K).

import Type, { type Static } from 'typebox';
import { SearchHit as SearchHitFields } from '../../service/answers.js';
import { MAX_RERANK } from '../../service/searcher.js';
import { ModelName, ref } from './common.js';

export const CollectionInfo = Type.Object(
  {
    name: Type.String(),
    model: Type.String({ description: 'the model that made its vectors: the one that searches it' }),
    modality: Type.Union([Type.Literal('image'), Type.Literal('text')]),
    count: Type.Integer({ description: 'items stored' }),
    dim: Type.Integer(),
    index: Type.String({ description: 'none (exact search), or the ANN index: ivf_pq (LanceDB), hnsw (pgvector)' }),
    store: Type.String({ description: 'where it lives, without secrets' }),
    metadata_fields: Type.Array(Type.String(), { description: 'top-level metadata fields items have (for filter)' }),
  },
  { $id: 'CollectionInfo', description: 'one collection of the store' },
);
export type CollectionInfoT = Static<typeof CollectionInfo>;

export const CollectionList = Type.Array(ref(CollectionInfo), {
  $id: 'CollectionList',
  description: 'every collection of the store (none without one)',
});

export const SearchTextQuery = Type.Object(
  { text: Type.String() },
  { $id: 'SearchTextQuery', additionalProperties: false, description: 'a text' },
);
export const SearchImageQuery = Type.Object(
  { image: Type.String({ description: 'an image: http(s) URL, data: URI or base64 bytes' }) },
  { $id: 'SearchImageQuery', additionalProperties: false, description: 'an image' },
);
export const SearchIdQuery = Type.Object(
  { id: Type.String({ description: 'an item of this collection: more like it (itself left out)' }) },
  { $id: 'SearchIdQuery', additionalProperties: false, description: 'an item of the collection' },
);
export const SearchQuery = Type.Union(
  [Type.String({ description: 'a text' }), ref(SearchTextQuery), ref(SearchImageQuery), ref(SearchIdQuery)],
  { $id: 'SearchQuery', description: 'a text (a string or `{"text"}`), an image (`{"image"}`) or an item (`{"id"}`)' },
);

export const SearchRequest = Type.Object(
  {
    collection: Type.String({ minLength: 1, maxLength: 63 }),
    query: ref(SearchQuery),
    top_k: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 10, description: 'results to return' })),
    rerank: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: MAX_RERANK,
        default: 0,
        description:
          "re-rank the ITC top K by the ITM match logit, as ALBEF's Retrieval.py does (text query against images, or image query against texts); 0 = ITC only",
      }),
    ),
    filter: Type.Optional(
      Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean()]), {
        description: 'metadata fields that must equal these values (all of them), applied before the top k',
      }),
    ),
    include: Type.Optional(
      Type.Array(Type.Union([Type.Literal('source'), Type.Literal('metadata')]), {
        default: ['source', 'metadata'],
        description: 'what each result carries besides its scores',
      }),
    ),
    caption_cleanup: Type.Optional(
      Type.Boolean({ default: true, description: "ALBEF's pre_caption clean-up of a text query" }),
    ),
    model: Type.Optional(ModelName),
  },
  {
    $id: 'SearchRequest',
    additionalProperties: false,
    example: { collection: 'photos', query: 'a dog on a skateboard', top_k: 10, rerank: 16 },
  },
);
export type SearchRequestT = Static<typeof SearchRequest>;

export const SearchHit = Type.Object(SearchHitFields.properties, {
  $id: 'SearchHit',
  description: 'one item found: ranked by score (the match logit where re-ranked, else itc)',
});

export const SearchResponse = Type.Object(
  {
    collection: Type.String(),
    model: Type.String(),
    results: Type.Array(ref(SearchHit), { description: 'best first; ties by id' }),
    usage: Type.Object(
      { texts: Type.Integer(), images: Type.Integer(), pairs: Type.Integer() },
      { description: 'texts and images through a tower, and image–text pairs through the ITM head' },
    ),
  },
  {
    $id: 'SearchResponse',
    example: {
      collection: 'photos',
      model: 'albef_4m',
      results: [
        {
          id: 'beach/dog.jpg',
          score: 3.21,
          itc: 0.41,
          itm_logits: [-2.9, 3.21],
          itm_prob: 0.998,
          source: 'beach/dog.jpg',
        },
      ],
      usage: { texts: 1, images: 16, pairs: 16 },
    },
  },
);
