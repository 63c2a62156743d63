// POST /v1/rerank: the Cohere/Jina rerank shape with multimodal items (docs/api.md). A text query against
// image documents or an image query against text documents, scored by ALBEF's ITM head.

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { documentAt, queryAt, type MatchItem } from '../../service/matcher.js';
import { relabel } from '../../service/intake.js';
import { ref } from '../schemas/common.js';
import { RerankRequest, RerankResponse } from '../schemas/matching.js';
import { errorResponses } from '../errors.js';
import { imageValue } from '../../sources/image-value.js';
import { clientGone } from '../reply.js';

type Given = string | { text: string } | { image: string };

export const rerankRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { maxImageBytes } = app.service.config;
  const item = (g: Given, index: number): MatchItem =>
    typeof g === 'string' ? { text: g } : 'text' in g ? g : { image: imageValue(g.image, index, maxImageBytes) };
  app.post(
    '/v1/rerank',
    {
      schema: {
        operationId: 'rerank',
        summary: 'Re-rank documents against a query with the image–text matching head',
        description:
          'A text query against image documents, or an image query against text documents (the Cohere/Jina rerank shape, with `{"image"}` items). Each pair goes through ALBEF\'s fusion layers and ITM head, as ALBEF\'s own retrieval evaluation re-ranks its embedding top-k: embed the collection, search a vector database, then re-rank the top-k here.',
        tags: ['matching'],
        body: ref(RerankRequest),
        response: { 200: ref(RerankResponse), ...errorResponses(400, 401, 404, 413, 415, 422, 500, 502, 503, 504) },
      },
    },
    async (req, reply) => {
      const body = req.body;
      const matcher = app.service.requireMatcher();
      const model = app.service.requireEmbedder().model(body.model);
      let query: MatchItem;
      try {
        query = item(body.query, 0);
      } catch (e) {
        relabel(e, queryAt);
      }
      let documents: MatchItem[];
      try {
        documents = body.documents.map(item);
      } catch (e) {
        relabel(e, documentAt);
      }
      const scores = await matcher.rerank(model, query, documents, {
        captionCleanup: body.caption_cleanup ?? true,
        signal: clientGone(reply),
      });
      const kept = body.top_n === undefined ? scores : scores.slice(0, body.top_n);
      const images = documents.filter((d) => 'image' in d).length + ('image' in query ? 1 : 0);
      return {
        id: req.id,
        model: model.name,
        results: body.return_documents ? kept.map((s) => ({ ...s, document: body.documents[s.index]! })) : kept,
        usage: { texts: documents.length + 1 - images, images },
      };
    },
  );
};
