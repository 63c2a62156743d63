// How images arrive in a request, for /embed/image and /classify: multipart/form-data whose file parts
// are images (in order) and whose other parts are fields (a field may repeat, e.g. `labels`), or JSON
// with exactly one of `url`, `urls`, `image`, `images` (base64 or data URIs).

import type { FastifyRequest } from 'fastify';
import { AppError, BadRequestError, PayloadTooLargeError } from '../core/errors.js';
import { imageValue, type ImageInput } from '../sources/image-value.js';
import { exactlyOne } from './reply.js';

export interface ImageParts {
  inputs: ImageInput[];
  /** Every value of every non-file field, in order. */
  fields: Map<string, string[]>;
}

export async function readImageParts(
  req: FastifyRequest,
  { maxItems, maxImageBytes }: { maxItems: number; maxImageBytes: number },
): Promise<ImageParts> {
  const inputs: ImageInput[] = [];
  const fields = new Map<string, string[]>();
  try {
    for await (const part of req.parts()) {
      if (part.type === 'file') {
        if (inputs.length >= maxItems)
          throw new PayloadTooLargeError(
            `more than ${maxItems} images in one request`,
            inputs.length,
            'too_many_items',
          );
        try {
          // toBuffer() streams with the configured fileSize cap and throws past it.
          inputs.push({ bytes: await part.toBuffer() });
        } catch (e) {
          if ((e as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE')
            throw new PayloadTooLargeError(
              `item ${inputs.length}: image over the limit of ${maxImageBytes} bytes`,
              inputs.length,
              'image_too_large',
            );
          throw e;
        }
      } else {
        const values = fields.get(part.fieldname) ?? [];
        values.push(String(part.value));
        fields.set(part.fieldname, values);
      }
    }
  } catch (e) {
    if (e instanceof AppError || String((e as { code?: string }).code).startsWith('FST_')) throw e;
    // busboy's parse errors (truncated body, bad boundary) carry no status: they are the client's.
    throw new BadRequestError(`malformed multipart body: ${(e as Error).message}`, undefined, 'invalid_multipart');
  }
  return { inputs, fields };
}

/** The last value of a field, if given. */
export function lastField(parts: ImageParts, name: string): string | undefined {
  return parts.fields.get(name)?.at(-1);
}

export interface JsonImages {
  url?: string;
  urls?: string[];
  image?: string;
  images?: string[];
}

/** The images of a JSON body: exactly one of url, urls, image, images. */
export function jsonImages(body: JsonImages, maxBytes: number): ImageInput[] {
  const which = exactlyOne(body, ['url', 'urls', 'image', 'images']);
  if (which === 'url') return [{ url: body.url! }];
  if (which === 'urls') return body.urls!.map((url) => ({ url }));
  return (which === 'image' ? [body.image!] : body.images!).map((v, i) => imageValue(v, i, maxBytes));
}
