// Errors over HTTP: any error → its code, status and message (the status from error-table.ts), and
// the JSON body, by path: native routes answer {"error": {code, message, index?, request_id}};
// everything under /v1/ (the OpenAI-compatible routes, today's and any added later) answers OpenAI's
// {"error": {message, type, code, param}} plus those native fields, so that OpenAI SDKs' error
// classes carry the message and the body stays a superset of the native one. Also the error
// responses each route's schema documents.

import type { FastifyError, FastifySchema } from 'fastify';
import Type, { type Static } from 'typebox';
import { AppError } from '../core/errors.js';
import { describeStatus, ERROR_TABLE } from './error-table.js';
import type { ErrorResponse, OpenAIErrorResponse } from './schemas/common.js';
import { explainValidation } from './validation.js';

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

/** Any error → its code, status and message: AppErrors by the table, Fastify's own by their codes. */
export function describeError(err: unknown): ErrorShape {
  if (err instanceof AppError) {
    // A tool's code (a model that failed to load, …) has no row: it can only be the server's fault.
    const status = (ERROR_TABLE as Partial<Record<string, { status: number }>>)[err.code]?.status ?? 500;
    return { status, code: err.code, message: err.message, index: err.index, param: err.param };
  }
  const e = err as FastifyError & { part?: unknown };
  if (e.validation)
    return { status: 400, code: 'invalid_request', ...explainValidation(e.validation, e.validationContext) };
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, code: 'body_too_large', message: 'request body is over the size limit' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, code: 'unsupported_media_type', message: e.message };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { status: 400, code: 'invalid_json', message: e.message };
    case 'FST_REQ_FILE_TOO_LARGE':
      return { status: 413, code: 'image_too_large', message: 'an uploaded image is over the size limit' };
    case 'FST_FILES_LIMIT':
    case 'FST_PARTS_LIMIT':
      return { status: 413, code: 'too_many_items', message: 'too many parts in the multipart request' };
    case 'FST_FIELDS_LIMIT':
      return { status: 413, code: 'too_many_fields', message: 'too many fields in the multipart request' };
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return { status: 415, code: 'unsupported_media_type', message: 'expected multipart/form-data' };
  }
  if (err instanceof SyntaxError) return { status: 400, code: 'invalid_json', message: err.message };
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: e.statusCode, code: (e.code ?? 'bad_request').toLowerCase(), message: e.message };
  }
  return { status: 500, code: 'internal_error', message: 'internal error' };
}

/** A route's documented error responses: each status described by the codes it stands for. */
export function errorResponses(...statuses: number[]): Record<number, typeof ErrorResponse> {
  return Object.fromEntries(
    statuses.map((s) => [s, Type.Ref('Error', { description: describeStatus(s) }) as unknown as typeof ErrorResponse]),
  );
}
