// What the matcher answers with, as schemas: the HTTP routes name and validate them
// (src/http/schemas/matching.ts) and the command line prints them, so the shape is written once and
// the TypeScript types are derived from it.

import Type, { type Static } from 'typebox';

/** One document scored against the query. */
export const PairScore = Type.Object({
  index: Type.Integer({ description: 'position of the document in the request' }),
  relevance_score: Type.Number({ description: "match probability from ALBEF's ITM head: softmax(itm_logits)[1]" }),
  itm_logits: Type.Array(Type.Number(), {
    minItems: 2,
    maxItems: 2,
    description: 'ITM head logits (no-match, match)',
  }),
  itc: Type.Number({ description: 'cosine of the query and document embeddings (the first-stage score)' }),
});
export type PairScore = Static<typeof PairScore>;

/** One label scored for one image. */
export const LabelScore = Type.Object({
  label: Type.String(),
  score: Type.Number({
    description: 'softmax over the labels of cos(image, text) / temp (temp clamped to [0.001, 0.5], as ALBEF does)',
  }),
  itm_prob: Type.Optional(Type.Number({ description: 'ITM match probability (with `itm: true`)' })),
});
export type LabelScore = Static<typeof LabelScore>;

/** One item of a collection found for a query. */
export const SearchHit = Type.Object({
  id: Type.String(),
  score: Type.Number({
    description: 'what the order is by: the ITM match logit itm_logits[1] for re-ranked items, else itc',
  }),
  itc: Type.Number({ description: 'cosine of the query and item embeddings (the first stage)' }),
  itm_logits: Type.Optional(
    Type.Array(Type.Number(), { minItems: 2, maxItems: 2, description: 'ITM head logits (no-match, match)' }),
  ),
  itm_prob: Type.Optional(Type.Number({ description: 'match probability, softmax(itm_logits)[1]' })),
  source: Type.Optional(
    Type.String({ description: "image: its path under the collection's root, or its URL; text: the text" }),
  ),
  metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'what was indexed with it' })),
});
export type SearchHit = Static<typeof SearchHit>;
