// One rule, on every route and command, for what an image value may be: a data: URI or plain
// base64 (the bytes inline), or a URL — anything with a scheme, of which only http(s) is fetched
// (url-fetcher.ts refuses the others by name).

import { decodeInlineImage } from './data-uri.js';

/** An image as a request gives it: its bytes, or where to fetch them. */
export type ImageInput = { bytes: Uint8Array } | { url: string };

/** Base64 never holds a colon, so a leading `scheme:` is unambiguous. */
const SCHEME = /^[a-z][a-z0-9+.-]*:/i;

export function imageValue(value: string, index: number, maxBytes: number): ImageInput {
  if (/^data:/i.test(value) || !SCHEME.test(value)) return { bytes: decodeInlineImage(value, index, maxBytes) };
  return { url: value };
}
