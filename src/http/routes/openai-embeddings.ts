// POST /v1/embeddings: the OpenAI embeddings API shape, so OpenAI clients work unchanged. Strings and
// {"text"} items are texts (ALBEF caption clean-up on); {"image"} items are URLs or data URIs. What
// ALBEF cannot do (truncated `dimensions`, token-id input) is refused in one sentence saying why.

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ImageInput } from '../../sources/image-value.js';
import { checkCount, relabel } from '../../service/intake.js';
import { BadRequestError } from '../../core/errors.js';
import { ref, TimingHeaders, withHeaders } from '../schemas/common.js';
import { OpenAIRequest, OpenAIResponse } from '../schemas/openai.js';
import { errorResponses } from '../errors.js';
import { imageValue } from '../../sources/image-value.js';
import { clientGone, clientLeft, encodeVectors, newTiming, setTimingHeaders } from '../reply.js';

type Item = { text: string } | { image: string };

/** What LangChain's OpenAIEmbeddings and others send after tokenizing with tiktoken: number[] or number[][]. */
const isTokenIds = (input: unknown): boolean =>
  Array.isArray(input) && input.some((x) => typeof x === 'number' || Array.isArray(x));

const TOKEN_IDS_REFUSED =
  "input holds token ids, which this server cannot use: ALBEF reads text through its own BERT WordPiece tokenizer, not OpenAI's, so send the texts as strings (LangChain: OpenAIEmbeddings(check_embedding_ctx_length=False))";

export const openaiEmbeddingRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { maxImageBytes } = app.service.config;
  app.post(
    '/v1/embeddings',
    {
      schema: {
        operationId: 'createEmbedding',
        summary: 'OpenAI-compatible embeddings',
        description:
          'Texts and images in one call; `data[i]` answers `input[i]`. Text and image vectors share one space, so cosine(text, image) ranks matches.',
        tags: ['embeddings'],
        body: ref(OpenAIRequest),
        response: {
          200: withHeaders(ref(OpenAIResponse), TimingHeaders),
          ...errorResponses(400, 401, 404, 413, 415, 422, 500, 502, 503, 504),
        },
      },
      // Before the schema, which would answer token ids with one message per alternative it tried.
      preValidation: async (req) => {
        if (isTokenIds((req.body as { input?: unknown } | undefined)?.input))
          throw new BadRequestError(TOKEN_IDS_REFUSED, undefined, 'token_ids_not_supported', 'input');
      },
    },
    async (req, reply) => {
      const body = req.body;
      const items: Item[] = (typeof body.input === 'string' ? [body.input] : body.input).map((x) =>
        typeof x === 'string' ? { text: x } : x,
      );
      const embedder = app.service.requireEmbedder();
      const model = embedder.model(body.model);
      const kinds = new Set(items.map((it) => ('text' in it ? 'texts' : 'images')));
      checkCount(embedder.limits, items.length, kinds.size === 1 ? [...kinds][0]! : 'items'); // texts and images together
      if (body.dimensions !== undefined && body.dimensions !== model.dim) {
        throw new BadRequestError(
          `dimensions ${body.dimensions} is not available: ${model.name} gives ${model.dim}-d vectors only, because ALBEF was not trained for truncated vectors (a shortened one is not a valid embedding); leave dimensions out or set it to ${model.dim}`,
          undefined,
          'unsupported_dimensions',
          'dimensions',
        );
      }
      const textIdx: number[] = [];
      const imageIdx: number[] = [];
      const texts: string[] = [];
      const images: ImageInput[] = [];
      // Item errors name the item's place in `input` (texts and images are embedded apart).
      const at = (positions?: number[]) => (j: number) => {
        const i = positions ? positions[j]! : j;
        return { label: typeof body.input === 'string' ? 'input' : `input[${i}]`, index: i };
      };
      try {
        items.forEach((it, i) => {
          if ('text' in it) {
            textIdx.push(i);
            texts.push(it.text);
          } else {
            imageIdx.push(i);
            images.push(imageValue(it.image, i, maxImageBytes));
          }
        });
      } catch (e) {
        relabel(e, at());
      }
      // Image preparation waits on the signal's events; texts alone only need the socket check.
      const signal = images.length ? clientGone(reply) : undefined;
      const timing = newTiming();
      const [t, imgs] = await Promise.all([
        texts.length
          ? embedder
              .embedTexts(model, texts, true, { signal: signal ?? clientLeft(reply), timing })
              .catch((e: unknown) => relabel(e, at(textIdx)))
          : undefined,
        images.length
          ? embedder.embedImages(model, images, { signal, timing }).catch((e: unknown) => relabel(e, at(imageIdx)))
          : undefined,
      ]);
      setTimingHeaders(reply, timing, images.length > 0);
      const vectors = new Array<Float32Array>(items.length);
      textIdx.forEach((i, j) => (vectors[i] = t!.vectors[j]!));
      imageIdx.forEach((i, j) => (vectors[i] = imgs![j]!));
      const encoded = encodeVectors(vectors, body.encoding_format);
      const tokens = t?.tokens ?? 0;
      return {
        object: 'list' as const,
        data: encoded.map((embedding, index) => ({ object: 'embedding' as const, index, embedding })),
        model: model.name,
        usage: { prompt_tokens: tokens, total_tokens: tokens },
      };
    },
  );
};
