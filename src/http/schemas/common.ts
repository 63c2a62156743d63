// Schemas every route family shares: the error bodies, vectors, model names, timing headers, and ref(),
// which points at a named schema so that the OpenAPI document names each body as a component.
// Every body schema has an $id: the app adds them all (index.ts) and routes point at them with ref().

import Type, { type TSchema } from 'typebox';

/** A $ref to a named schema, typed as the schema itself (so handlers keep its static type). */
export function ref<T extends TSchema>(schema: T): T {
  const id = (schema as { $id?: string }).$id;
  if (!id) throw new Error('ref() needs a schema with an $id');
  return Type.Ref(id) as unknown as T;
}

export const EncodingFormat = Type.Union([Type.Literal('float'), Type.Literal('base64')], {
  description: '`float`: arrays of numbers; `base64`: each vector as base64 of little-endian float32',
  default: 'float',
});

export const ModelName = Type.String({
  description: 'model name (GET /models); the first loaded model when omitted',
  minLength: 1,
  maxLength: 200,
});

export const ErrorResponse = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'stable machine-readable code' }),
      message: Type.String(),
      index: Type.Optional(Type.Integer({ description: 'position of the offending item in the request' })),
      request_id: Type.Optional(Type.String()),
    }),
  },
  {
    $id: 'Error',
    description: 'every error has this shape',
    example: {
      error: { code: 'model_not_found', message: 'unknown model "nope"; loaded: albef_4m', request_id: 'req-1' },
    },
  },
);

export const OpenAIErrorResponse = Type.Object(
  {
    error: Type.Object({
      message: Type.String(),
      type: Type.String({
        description:
          "OpenAI's error class: invalid_request_error, authentication_error, permission_error, rate_limit_error or server_error",
      }),
      code: Type.String({ description: 'stable machine-readable code (as in Error)' }),
      param: Type.Unsafe<string | null>({
        type: 'string',
        nullable: true,
        description: 'the request field at fault, or null',
      }),
      index: Type.Optional(Type.Integer({ description: 'position of the offending item in `input`' })),
      request_id: Type.Optional(Type.String()),
    }),
  },
  {
    $id: 'OpenAIError',
    description: "errors under /v1/: OpenAI's shape, a superset of Error",
    example: {
      error: {
        message: 'unknown model "nope"; loaded: albef_4m',
        type: 'invalid_request_error',
        code: 'model_not_found',
        param: 'model',
        request_id: 'req-1',
      },
    },
  },
);

export const Embedding = Type.Union(
  [Type.Array(Type.Number()), Type.String({ description: 'base64 of little-endian float32' })],
  {
    $id: 'Embedding',
    description: 'one L2-normalised vector: numbers (`float`) or base64 of little-endian float32 (`base64`)',
  },
);

const Millis = (description: string) =>
  Type.String({ description: `${description}, in ms`, pattern: '^[0-9]+(\\.[0-9]+)?$', example: '1.250' });

/** Response headers of the embedding routes (as TEI sends them); each is the longest among the request's items. */
export const TimingHeaders = {
  'x-queue-time': Millis('time an item waited in the batch queue before its batch started'),
  'x-inference-time': Millis("run time of the item's batch"),
  'x-decode-time': Millis('time to decode and resize an image (only when the request has images)'),
  'x-total-time': Millis('time from the request arriving until its vectors were ready'),
};
const { 'x-decode-time': _decode, ...textTiming } = TimingHeaders;
export const TextTimingHeaders = textTiming;

/** A response schema with documented headers (@fastify/swagger reads `headers`; serialisation ignores it). */
export function withHeaders<T extends object>(schema: T, headers: Record<string, unknown>): T {
  return { ...schema, headers };
}

export const StatusResponse = Type.Object(
  {
    status: Type.String({
      description: 'ok; or the service phase: starting, loading, ready, failed, draining, closed; or store_unavailable',
    }),
    reason: Type.Optional(
      Type.String({
        description: 'why: the models failed to load (`failed`), or the store cannot be reached (`store_unavailable`)',
      }),
    ),
  },
  { $id: 'StatusResponse', description: 'the service state', example: { status: 'ready' } },
);
