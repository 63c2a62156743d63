// POST /classify: zero-shot classification of images against labels (docs/api.md): softmax over the labels
// of ALBEF's contrastive similarity at its learned temperature, optionally with each pair's ITM match
// probability. JSON (the image fields of /embed/image) or multipart (image parts, repeated `labels`).

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { BadRequestError } from '../../core/errors.js';
import { ref } from '../schemas/common.js';
import {
  ClassifyJsonRequest,
  ClassifyMultipartRequest,
  ClassifyResponse,
  type ClassifyJsonRequestT,
} from '../schemas/matching.js';
import { errorResponses } from '../errors.js';
import { notOneOf } from '../validation.js';
import type { ImageInput } from '../../sources/image-value.js';
import { jsonImages, lastField, readImageParts } from '../image-parts.js';
import { clientGone } from '../reply.js';
import { relabel } from '../../service/intake.js';
import { imageAt } from '../../service/matcher.js';

interface ClassifyInput {
  images: ImageInput[];
  labels: string[];
  template: string;
  captionCleanup: boolean;
  itm: boolean;
  topK?: number;
  model?: string;
}

function flag(value: string | undefined, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (value !== 'true' && value !== 'false')
    throw new BadRequestError(notOneOf(name, ['true', 'false'], value), undefined, 'bad_request', name);
  return value === 'true';
}

/**
 * The repeated `labels` fields. Fewer than two gets a message on how multipart carries a list, for
 * the usual first tries: one comma-separated field (kept as one label: a label may hold a comma) or
 * fields named `label`.
 */
function multipartLabels(fields: Map<string, string[]>): string[] {
  const labels = fields.get('labels') ?? [];
  if (labels.length >= 2) return labels;
  const hints = [
    ...labels.filter((l) => l.includes(',')).map((l) => `${JSON.stringify(l)} is one label`),
    ...(fields.has('label') ? ['the field is "labels", not "label"'] : []),
  ];
  throw new BadRequestError(
    `give at least two labels (got ${labels.length}): repeat the "labels" field once per label (-F labels=dog -F labels=cat)${hints.length ? `; ${hints.join('; ')}` : ''}`,
    undefined,
    'invalid_request',
    'labels',
  );
}

export const classifyRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { maxItems, maxImageBytes } = app.service.config;
  app.post(
    '/classify',
    {
      schema: {
        operationId: 'classify',
        summary: 'Zero-shot classification of images against labels',
        description:
          'For each image, every label scored as softmax over the labels of cos(image, text(template(label))) / temp, ALBEF’s learned temperature clamped to [0.001, 0.5]; with `itm: true` also each pair’s match probability from the ITM head. JSON with `url`/`urls`/`image`/`images` and `labels`, or multipart/form-data with image file parts and repeated `labels` fields.',
        tags: ['matching'],
        body: {
          content: {
            'application/json': { schema: ref(ClassifyJsonRequest) },
            'multipart/form-data': { schema: ref(ClassifyMultipartRequest) },
          },
        } as never,
        response: { 200: ref(ClassifyResponse), ...errorResponses(400, 401, 404, 413, 415, 422, 500, 502, 503, 504) },
      },
      config: {
        mediaHint:
          'images go as file parts next to repeated labels fields (multipart), or in url, urls, image or images next to labels (JSON); a raw image body has no room for the labels',
      },
      // Multipart parts are streamed in the handler; the schema only documents them.
      preValidation: async (req) => {
        if (req.isMultipart()) req.body = {};
      },
    },
    async (req, reply) => {
      let input: ClassifyInput;
      if (req.isMultipart()) {
        const parts = await readImageParts(req, { maxItems, maxImageBytes });
        const topK = lastField(parts, 'top_k');
        if (topK !== undefined && !/^[1-9]\d*$/.test(topK))
          throw new BadRequestError('top_k must be a whole number ≥ 1');
        input = {
          images: parts.inputs,
          labels: multipartLabels(parts.fields),
          template: lastField(parts, 'template') ?? '{}',
          captionCleanup: flag(lastField(parts, 'caption_cleanup'), 'caption_cleanup', true),
          itm: flag(lastField(parts, 'itm'), 'itm', false),
          topK: topK === undefined ? undefined : Number(topK),
          model: lastField(parts, 'model'),
        };
      } else {
        const body = req.body as ClassifyJsonRequestT;
        let images: ImageInput[];
        try {
          images = jsonImages(body, maxImageBytes);
        } catch (e) {
          relabel(e, imageAt);
        }
        input = {
          images,
          labels: body.labels,
          template: body.template ?? '{}',
          captionCleanup: body.caption_cleanup ?? true,
          itm: body.itm ?? false,
          topK: body.top_k,
          model: body.model,
        };
      }
      const matcher = app.service.requireMatcher();
      const model = app.service.requireEmbedder().model(input.model);
      const scores = await matcher.classify(model, input.images, input.labels, { ...input, signal: clientGone(reply) });
      return {
        model: model.name,
        results: scores.map((perImage) => perImage.slice(0, input.topK)),
      };
    },
  );
};
