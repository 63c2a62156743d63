// POST /v1/search: a text, an image or an item against a collection of the store, ranked by ITC and,
// with `rerank`, its top K re-ranked by ALBEF's ITM match logit (src/service/searcher.ts).

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { CollectionNotFoundError } from '../../core/errors.js';
import { relabel } from '../../service/intake.js';
import type { SearchQuery } from '../../service/searcher.js';
import { imageValue } from '../../sources/image-value.js';
import { errorResponses } from '../errors.js';
import { clientGone } from '../reply.js';
import { ref } from '../schemas/common.js';
import { SearchRequest, SearchResponse, type SearchRequestT } from '../schemas/search.js';

export const searchRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { maxImageBytes } = app.service.config;
  const query = (q: SearchRequestT['query']): SearchQuery => {
    if (typeof q === 'string') return { text: q };
    if ('image' in q) {
      try {
        return { image: imageValue(q.image, 0, maxImageBytes) };
      } catch (e) {
        relabel(e, () => ({ label: 'query' }));
      }
    }
    return q;
  };
  app.post(
    '/v1/search',
    {
      schema: {
        operationId: 'search',
        summary: 'Search a collection: ITC, then the ITM re-rank of the top K',
        description:
          "A text, an image or an item of the collection against every item: the ITC cosine ranks them all (exact, or the ANN index of large collections), then with `rerank` K the first K are re-ranked by ALBEF's ITM match logit, as Retrieval.py evaluates retrieval (a text query against images, or an image query against texts).",
        tags: ['retrieval'],
        body: ref(SearchRequest),
        response: {
          200: ref(SearchResponse),
          ...errorResponses(400, 401, 404, 409, 413, 415, 422, 500, 502, 503, 504),
        },
      },
    },
    async (req, reply) => {
      const body = req.body;
      const searcher = await app.service.requireSearcher();
      if (!searcher) throw new CollectionNotFoundError(body.collection);
      return searcher.search({
        collection: body.collection,
        query: query(body.query),
        topK: body.top_k ?? 10,
        rerank: body.rerank ?? 0,
        filter: body.filter,
        include: body.include ?? ['source', 'metadata'],
        captionCleanup: body.caption_cleanup ?? true,
        model: body.model,
        signal: clientGone(reply),
      });
    },
  );
};
