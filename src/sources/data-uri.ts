// Images given inline in JSON: plain base64 or a data: URI (RFC 2397) with base64 payload.

import { BadRequestError, PayloadTooLargeError } from '../core/errors.js';

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

export function decodeInlineImage(value: string, index: number, maxBytes: number): Buffer {
  let payload = value;
  if (value.startsWith('data:')) {
    const comma = value.indexOf(',');
    if (comma < 0)
      throw new BadRequestError(`item ${index}: malformed data URI (no comma)`, index, 'invalid_image_data');
    const meta = value.slice(5, comma);
    if (!/;base64$/i.test(meta))
      throw new BadRequestError(`item ${index}: data URIs must be base64-encoded`, index, 'invalid_image_data');
    payload = value.slice(comma + 1);
  }
  payload = payload.replace(/\s+/g, '');
  if (payload.length === 0) throw new BadRequestError(`item ${index}: empty image data`, index, 'invalid_image_data');
  // 4 base64 chars carry 3 bytes: refuse oversize input before decoding it.
  if (Math.floor((payload.length * 3) / 4) - 2 > maxBytes) {
    throw new PayloadTooLargeError(
      `item ${index}: image data over the limit of ${maxBytes} bytes`,
      index,
      'image_too_large',
    );
  }
  if (payload.length % 4 === 1 || !BASE64.test(payload))
    throw new BadRequestError(`item ${index}: invalid base64 image data`, index, 'invalid_image_data');
  const bytes = Buffer.from(payload, payload.includes('-') || payload.includes('_') ? 'base64url' : 'base64');
  if (bytes.length > maxBytes)
    throw new PayloadTooLargeError(
      `item ${index}: image data over the limit of ${maxBytes} bytes`,
      index,
      'image_too_large',
    );
  return bytes;
}
