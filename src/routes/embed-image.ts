// POST /embed/image: multipart files, JSON (url/urls/image/images as base64 or data URIs), or a raw
// image/* body → ALBEF image embeddings in input order.

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type { ImageInput } from '../embedder.js';
import { AppError, BadRequestError, PayloadTooLargeError } from '../errors.js';
import { EmbedResponse, EncodingFormat, errors, ImageJsonRequest, ImageMultipartRequest, ref, TimingHeaders, withHeaders, type ImageJsonRequestT } from '../schemas.js';
import { decodeInlineImage } from '../sources/data-uri.js';
import { clientGone, encodeVectors, exactlyOne, newTiming, setTimingHeaders, type EncodingFormat as Format } from './shared.js';

interface ParsedImages {
  inputs: ImageInput[];
  model?: string;
  format?: Format;
}

async function readMultipart(req: FastifyRequest, maxItems: number): Promise<ParsedImages> {
  const inputs: ImageInput[] = [];
  const fields: Record<string, string> = {};
  try {
    for await (const part of req.parts()) {
      if (part.type === 'file') {
        if (inputs.length >= maxItems) throw new PayloadTooLargeError(`more than ${maxItems} images in one request`, inputs.length, 'too_many_items');
        try {
          // toBuffer() streams with the configured fileSize cap and throws past it.
          inputs.push({ bytes: await part.toBuffer() });
        } catch (e) {
          if ((e as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE') throw new PayloadTooLargeError(`item ${inputs.length}: image over the size limit`, inputs.length, 'image_too_large');
          throw e;
        }
      } else {
        fields[part.fieldname] = String(part.value);
      }
    }
  } catch (e) {
    if (e instanceof AppError || String((e as { code?: string }).code).startsWith('FST_')) throw e;
    // busboy's parse errors (truncated body, bad boundary) carry no status: they are the client's.
    throw new BadRequestError(`malformed multipart body: ${(e as Error).message}`, undefined, 'invalid_multipart');
  }
  const format = fields.encoding_format;
  if (format !== undefined && format !== 'float' && format !== 'base64') throw new BadRequestError('encoding_format must be "float" or "base64"');
  return { inputs, model: fields.model, format: format as Format | undefined };
}

function readJson(body: ImageJsonRequestT, maxBytes: number): ParsedImages {
  const which = exactlyOne(body, ['url', 'urls', 'image', 'images']);
  const inputs: ImageInput[] =
    which === 'url'
      ? [{ url: body.url! }]
      : which === 'urls'
        ? body.urls!.map((url) => ({ url }))
        : (which === 'image' ? [body.image!] : body.images!).map((v, i) => ({ bytes: decodeInlineImage(v, i, maxBytes) }));
  return { inputs, model: body.model, format: body.encoding_format };
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
        querystring: { type: 'object', properties: { model: { type: 'string' }, encoding_format: EncodingFormat }, additionalProperties: false } as never,
        response: { 200: withHeaders(ref(EmbedResponse), TimingHeaders), ...errors(400, 401, 404, 413, 415, 422, 500, 502, 503, 504) },
      },
      // Multipart parts are streamed in the handler; the schema only documents them.
      preValidation: async (req) => {
        if (req.isMultipart()) req.body = {} as never;
      },
    },
    async (req, reply) => {
      const query = req.query as { model?: string; encoding_format?: Format };
      let parsed: ParsedImages;
      if (req.isMultipart()) parsed = await readMultipart(req, maxItems);
      else if (Buffer.isBuffer(req.body)) parsed = { inputs: [{ bytes: req.body }] };
      else parsed = readJson(req.body as ImageJsonRequestT, maxImageBytes);
      const embedder = app.service.requireEmbedder();
      const model = embedder.model(parsed.model ?? query.model);
      const timing = newTiming();
      const vectors = await embedder.embedImages(model, parsed.inputs, { signal: clientGone(reply), timing });
      setTimingHeaders(reply, timing, true);
      return { model: model.name, modality: 'image' as const, dim: model.dim, embeddings: encodeVectors(vectors, parsed.format ?? query.encoding_format) };
    },
  );
};
