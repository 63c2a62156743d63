// POST /embed/image: multipart files, JSON (url/urls/image/images as base64 or data URIs), or a raw
// image/* body → ALBEF image embeddings in input order.

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type { ImageInput } from '../../sources/image-value.js';
import { BadRequestError } from '../../core/errors.js';
import { EncodingFormat, ref, TimingHeaders, withHeaders } from '../schemas/common.js';
import { EmbedResponse, ImageJsonRequest, ImageMultipartRequest, type ImageJsonRequestT } from '../schemas/embed.js';
import { errorResponses } from '../errors.js';
import { notOneOf } from '../validation.js';
import { jsonImages, lastField, readImageParts } from '../image-parts.js';
import { clientGone, encodeVectors, newTiming, setTimingHeaders, type EncodingFormat as Format } from '../reply.js';

interface ParsedImages {
  inputs: ImageInput[];
  model?: string;
  format?: Format;
}

async function readMultipart(
  req: FastifyRequest,
  limits: { maxItems: number; maxImageBytes: number },
): Promise<ParsedImages> {
  const parts = await readImageParts(req, limits);
  const format = lastField(parts, 'encoding_format');
  if (format !== undefined && format !== 'float' && format !== 'base64')
    throw new BadRequestError(
      notOneOf('encoding_format', ['float', 'base64'], format),
      undefined,
      'bad_request',
      'encoding_format',
    );
  return { inputs: parts.inputs, model: lastField(parts, 'model'), format: format };
}

function readJson(body: ImageJsonRequestT, maxBytes: number): ParsedImages {
  return { inputs: jsonImages(body, maxBytes), model: body.model, format: body.encoding_format };
}

export const embedImageRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { maxItems, maxImageBytes } = app.service.config;
  app.post(
    '/embed/image',
    {
      schema: {
        operationId: 'embedImage',
        summary: 'Embed images',
        description:
          'Images → 256-d ALBEF image embeddings (L2-normalised), in input order. Send multipart/form-data (each file part one image, optional `model` and `encoding_format` fields), JSON with `url`/`urls`/`image`/`images`, or one raw image body with an image/* content type.',
        tags: ['embeddings'],
        body: {
          content: {
            'application/json': { schema: ref(ImageJsonRequest) },
            'multipart/form-data': { schema: ref(ImageMultipartRequest) },
            'image/*': { schema: { type: 'string', format: 'binary' } },
          },
        } as never,
        querystring: {
          type: 'object',
          properties: { model: { type: 'string' }, encoding_format: EncodingFormat },
          additionalProperties: false,
        } as never,
        response: {
          200: withHeaders(ref(EmbedResponse), TimingHeaders),
          ...errorResponses(400, 401, 404, 413, 415, 422, 500, 502, 503, 504),
        },
      },
      // Multipart parts are streamed in the handler; the schema only documents them.
      preValidation: async (req) => {
        if (req.isMultipart()) req.body = {};
      },
    },
    async (req, reply) => {
      const query = req.query as { model?: string; encoding_format?: Format };
      let parsed: ParsedImages;
      if (req.isMultipart()) parsed = await readMultipart(req, { maxItems, maxImageBytes });
      else if (Buffer.isBuffer(req.body)) parsed = { inputs: [{ bytes: req.body }] };
      else parsed = readJson(req.body as ImageJsonRequestT, maxImageBytes);
      const embedder = app.service.requireEmbedder();
      const model = embedder.model(parsed.model ?? query.model);
      const timing = newTiming();
      const vectors = await embedder.embedImages(model, parsed.inputs, { signal: clientGone(reply), timing });
      setTimingHeaders(reply, timing, true);
      return {
        model: model.name,
        modality: 'image' as const,
        dim: model.dim,
        embeddings: encodeVectors(vectors, parsed.format ?? query.encoding_format),
      };
    },
  );
};
