// The JSON error body, by path: native routes answer {"error": {code, message, index?, request_id}};
// everything under /v1/ (the OpenAI-compatible routes, today's and any added later) answers OpenAI's
// {"error": {message, type, code, param}} plus those native fields, so that OpenAI SDKs' error
// classes carry the message and the body stays a superset of the native one. The app's error and
// not-found handlers and its onRoute hook (documented error schemas) all decide here, by prefix.

import type { FastifySchema } from 'fastify';
import Type, { type Static } from 'typebox';
import type { ErrorResponse, OpenAIErrorResponse } from './schemas.js';

export const OPENAI_PREFIX = '/v1/';

export const isOpenAIPath = (url: string): boolean => url.startsWith(OPENAI_PREFIX);

/** The request field an item's `index` points into, per /v1/ route. */
const ITEM_PARAM: Record<string, string> = { '/v1/embeddings': 'input', '/v1/rerank': 'documents' };

export interface ErrorShape {
  status: number;
  code: string;
  message: string;
  index?: number;
  /** The request field at fault (OpenAI's `param`). */
  param?: string;
}

/** OpenAI's error `type` for a status. */
export function openAIErrorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

type NativeBody = Static<typeof ErrorResponse>;
type OpenAIBody = Static<typeof OpenAIErrorResponse>;

/** The body for an error on `url` (a path, with or without a query). */
export function errorBody(e: ErrorShape, url: string, requestId: string): NativeBody | OpenAIBody {
  const index = e.index !== undefined ? { index: e.index } : {};
  if (!isOpenAIPath(url)) return { error: { code: e.code, message: e.message, ...index, request_id: requestId } };
  const param = e.param ?? (e.index !== undefined ? (ITEM_PARAM[url.split('?')[0]!] ?? 'input') : null);
  return {
    error: {
      message: e.message,
      type: openAIErrorType(e.status),
      code: e.code,
      param,
      ...index,
      request_id: requestId,
    },
  };
}

/** A /v1/ route's documented error responses name OpenAIError instead of Error. */
export function withOpenAIErrorSchemas(response: FastifySchema['response']): FastifySchema['response'] {
  if (!response || typeof response !== 'object') return response;
  return Object.fromEntries(
    Object.entries(response).map(([status, schema]) => [
      status,
      Number(status) >= 400
        ? Type.Ref('OpenAIError', { description: (schema as { description?: string }).description })
        : schema,
    ]),
  );
}
