// Every error the project raises on purpose, in one place. Each carries a stable machine code and,
// for the service, the HTTP status it maps to; routes never invent status codes inline.

export class AppError extends Error {
  /** The request field at fault, when one is (OpenAI's `param`). */
  readonly param?: string;

  constructor(
    readonly code: string,
    message: string,
    readonly status = 500,
    readonly index?: number,
    options?: { cause?: unknown; param?: string },
  ) {
    super(message, options);
    this.name = new.target.name;
    this.param = options?.param;
  }
}

// ---- model conversion (src/convert) ----

/** The checkpoint file cannot be read: not a PyTorch file, truncated, corrupt, or missing a tensor. */
export class CheckpointError extends AppError {
  constructor(
    code: 'not_a_checkpoint' | 'truncated' | 'corrupt' | 'unsupported',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, 422, undefined, options);
  }
}

/** The checkpoint was readable but does not hold the weights the architecture needs. */
export class WeightsError extends AppError {
  constructor(code: 'missing_tensor' | 'shape_mismatch' | 'bad_arch', message: string) {
    super(code, message, 422);
  }
}

// ---- the service ----

export class BadRequestError extends AppError {
  constructor(message: string, index?: number, code = 'bad_request', param?: string) {
    super(code, message, 400, index, { param });
  }
}

export class UnauthorizedError extends AppError {
  constructor(message = 'missing or invalid API key') {
    super('unauthorized', message, 401);
  }
}

export class ModelNotFoundError extends AppError {
  constructor(name: string, known: string[]) {
    super(
      'model_not_found',
      `unknown model ${JSON.stringify(name)}; loaded: ${known.join(', ') || 'none'}`,
      404,
      undefined,
      { param: 'model' },
    );
  }
}

export class PayloadTooLargeError extends AppError {
  constructor(message: string, index?: number, code = 'too_large') {
    super(code, message, 413, index);
  }
}

export class UnsupportedMediaError extends AppError {
  constructor(message: string, index?: number) {
    super('unsupported_media_type', message, 415, index);
  }
}

export class UndecodableImageError extends AppError {
  constructor(message: string, index?: number) {
    super('undecodable_image', message, 422, index);
  }
}

/** The queue for a model tower is full: the client should retry after `retryAfterS`. */
export class OverloadedError extends AppError {
  constructor(
    message: string,
    readonly retryAfterS: number,
    status: 429 | 503 = 503,
  ) {
    super('overloaded', message, status);
  }
}

export class DeadlineError extends AppError {
  constructor(message = 'the request waited past its deadline') {
    super('deadline_exceeded', message, 504);
  }
}

export class UpstreamFetchError extends AppError {
  constructor(message: string, index?: number, code = 'url_fetch_failed') {
    super(code, message, 502, index);
  }
}

export class NotReadyError extends AppError {
  constructor(message = 'the service is not ready') {
    super('not_ready', message, 503);
  }
}

export class InferenceError extends AppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('inference_failed', message, 500, undefined, options);
  }
}

// ---- collections (src/retrieval) ----

export class CollectionNotFoundError extends AppError {
  constructor(name: string) {
    super('collection_not_found', `no collection named ${JSON.stringify(name)}`, 404, undefined, {
      param: 'collection',
    });
  }
}

/** A collection of that name exists with another model, modality, dim or root. */
export class CollectionConflictError extends AppError {
  constructor(message: string) {
    super('collection_conflict', message, 409, undefined, { param: 'collection' });
  }
}

export class InvalidFilterError extends AppError {
  constructor(message: string) {
    super('invalid_filter', message, 400, undefined, { param: 'filter' });
  }
}

/** The store (PostgreSQL, the LanceDB directory) cannot be reached; `store` names it without secrets. */
export class StoreUnavailableError extends AppError {
  constructor(
    readonly store: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('store_unavailable', `store ${store} is unavailable: ${message}`, 503, undefined, options);
  }
}
