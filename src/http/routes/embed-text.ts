// POST /embed/text: {"text"} or {"texts": [...]} → ALBEF text embeddings.

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ref, TextTimingHeaders, withHeaders } from '../schemas/common.js';
import { EmbedResponse, TextRequest } from '../schemas/embed.js';
import { errorResponses } from '../errors.js';
import { clientLeft, encodeVectors, exactlyOne, newTiming, setTimingHeaders } from '../reply.js';

export const embedTextRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/embed/text',
    {
      schema: {
        operationId: 'embedText',
        summary: 'Embed texts',
        description:
          "Texts → 256-d ALBEF text embeddings (L2-normalised), in input order. Caption clean-up follows ALBEF's pre_caption unless turned off.",
        tags: ['embeddings'],
        body: ref(TextRequest),
        response: {
          200: withHeaders(ref(EmbedResponse), TextTimingHeaders),
          ...errorResponses(400, 401, 404, 413, 415, 500, 503, 504),
        },
      },
    },
    async (req, reply) => {
      const body = req.body;
      const texts = exactlyOne(body, ['text', 'texts']) === 'text' ? [body.text!] : body.texts!;
      const embedder = app.service.requireEmbedder();
      const model = embedder.model(body.model);
      const timing = newTiming();
      const { vectors } = await embedder.embedTexts(model, texts, body.caption_cleanup ?? true, {
        signal: clientLeft(reply),
        timing,
      });
      setTimingHeaders(reply, timing, false);
      return {
        model: model.name,
        modality: 'text' as const,
        dim: model.dim,
        embeddings: encodeVectors(vectors, body.encoding_format),
      };
    },
  );
};
