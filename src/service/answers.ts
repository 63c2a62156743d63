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
