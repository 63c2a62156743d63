// Every error the project raises on purpose, in one place (as undici's lib/core/errors.js): a stable
// machine code, a message in words, and where a request's item (`index`) or field (`param`) is at
// fault. What each code means over HTTP, its status included, is the one table in
// src/http/error-table.ts; the command line exits 2 for usage errors and 1 for the others.

/** Codes a request to the service can get (each has its row in src/http/error-table.ts). */
export type ServiceErrorCode =
  | 'invalid_request'
  | 'bad_request'
  | 'invalid_json'
  | 'invalid_multipart'
  | 'empty_image'
  | 'invalid_image_data'
  | 'invalid_url'
  | 'url_not_allowed'
  | 'modality_mismatch'
  | 'token_ids_not_supported'
  | 'unsupported_dimensions'
  | 'fusion_unavailable'
  | 'unauthorized'
  | 'model_not_found'
  | 'not_found'
  | 'body_too_large'
  | 'image_too_large'
  | 'too_many_items'
  | 'too_many_fields'
  | 'text_too_long'
  | 'url_too_large'
  | 'unsupported_media_type'
  | 'undecodable_image'
  | 'client_closed_request'
  | 'internal_error'
  | 'inference_failed'
  | 'url_fetch_failed'
  | 'url_timeout'
  | 'url_too_many_redirects'
  | 'overloaded'
  | 'not_ready'
  | 'deadline_exceeded'
  | 'invalid_annotations'
  | 'path_outside_root'
  | 'collection_not_found'
  | 'collection_conflict'
  | 'invalid_collection_name'
  | 'invalid_item'
  | 'invalid_metadata'
  | 'dimension_mismatch'
  | 'invalid_filter'
  | 'store_unavailable'
  | 'store_error'
  | 'model_mismatch'
  | 'rerank_unavailable'
  | 'item_not_found'
  | 'source_unavailable';

/** Codes of the tools around the service: loading models, converting checkpoints, the command line. */
export type ToolErrorCode =
  | 'usage'
  | 'invalid_config'
  | 'no_models'
  | 'bad_model_dir'
  | 'model_load_failed'
  | 'provider_unavailable'
  | 'download_failed'
  | 'not_a_checkpoint'
  | 'truncated'
  | 'corrupt'
  | 'unsupported'
  | 'missing_tensor'
  | 'shape_mismatch'
  | 'bad_arch'
  | 'torn_line'
  | 'mixed_dims'
  | 'invalid_line'
  | 'foreign_ids'
  | 'duplicate_ids'
  | 'mixed_vectors'
  | 'already_exists'
  | 'embedding_failed';

export type ErrorCode = ServiceErrorCode | ToolErrorCode;

export interface ErrorOptions {
  /** Position of the item at fault in the request's list. */
  index?: number;
  /** The request field at fault (OpenAI's `param`). */
  param?: string;
  cause?: unknown;
}

export class AppError extends Error {
  readonly index?: number;
  readonly param?: string;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: ErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.index = options.index;
    this.param = options.param;
  }
}

// ---- requests ----

export class BadRequestError extends AppError {
  constructor(message: string, index?: number, code: ServiceErrorCode = 'bad_request', param?: string) {
    super(code, message, { index, param });
  }
}

export class UnauthorizedError extends AppError {
  constructor(message = 'missing or invalid API key') {
    super('unauthorized', message);
  }
}

export class ModelNotFoundError extends AppError {
  constructor(name: string, known: string[]) {
    super('model_not_found', `unknown model ${JSON.stringify(name)}; loaded: ${known.join(', ') || 'none'}`, {
      param: 'model',
    });
  }
}

export class PayloadTooLargeError extends AppError {
  constructor(
    message: string,
    index: number | undefined,
    code:
      'body_too_large' | 'image_too_large' | 'too_many_items' | 'too_many_fields' | 'text_too_long' | 'url_too_large',
  ) {
    super(code, message, { index });
  }
}

export class UnsupportedMediaError extends AppError {
  constructor(message: string, index?: number) {
    super('unsupported_media_type', message, { index });
  }
}

export class UndecodableImageError extends AppError {
  constructor(message: string, index?: number) {
    super('undecodable_image', message, { index });
  }
}

/** An image URL could not be fetched. */
export class UpstreamFetchError extends AppError {
  declare readonly code: 'url_fetch_failed' | 'url_timeout' | 'url_too_many_redirects';

  constructor(
    message: string,
    index?: number,
    code: 'url_fetch_failed' | 'url_timeout' | 'url_too_many_redirects' = 'url_fetch_failed',
  ) {
    super(code, message, { index });
  }
}

/** The model has no image–text matching part (or it was not loaded), or no temperature for zero-shot. */
export class FusionUnavailableError extends AppError {
  constructor(message: string) {
    super('fusion_unavailable', message);
  }
}

// ---- serving ----

/** A tower's queue is full: the client should retry after `retryAfterS`. */
export class OverloadedError extends AppError {
  constructor(
    message: string,
    readonly retryAfterS: number,
  ) {
    super('overloaded', message);
  }
}

export class DeadlineError extends AppError {
  constructor(message = 'the request waited past its deadline') {
    super('deadline_exceeded', message);
  }
}

/** The client disconnected: its queued items are dropped before they cost any inference. */
export class ClientGoneError extends AppError {
  constructor() {
    super('client_closed_request', 'the client disconnected before inference');
  }
}

export class NotReadyError extends AppError {
  constructor(message = 'the service is not ready') {
    super('not_ready', message);
  }
}

export class InferenceError extends AppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('inference_failed', message, options);
  }
}

// ---- loading models ----

export class NoModelsError extends AppError {
  constructor(paths: string[]) {
    super(
      'no_models',
      `no model found in ${paths.join(', ')}. Get one with:\n` +
        `  npx albef-embed fetch albef_4m --out models/albef_4m           # download the official checkpoint and convert it\n` +
        `  npx albef-embed convert --checkpoint ALBEF_4M.pth --out models/albef_4m   # convert a checkpoint you have\n` +
        `  npx albef-embed synth --preset albef_4m --out models/albef_4m-synthetic    # random weights, for trying it out\n` +
        `then run the service again (or point --models / ALBEF_MODELS at the model directory).`,
    );
  }
}

/** A model directory that is not what `convert` writes. */
export class ModelDirError extends AppError {
  constructor(message: string) {
    super('bad_model_dir', message);
  }
}

export class SessionLoadError extends AppError {
  constructor(message: string) {
    super('model_load_failed', message);
  }
}

/** No execution provider of the choice could run the model; the message names each and why. */
export class ProviderError extends AppError {
  constructor(
    readonly choice: string,
    readonly skipped: { provider: string; reason: string }[],
  ) {
    super(
      'provider_unavailable',
      choice === 'auto'
        ? `no execution provider could run it (--provider auto tried ${skipped.map((s) => `${s.provider}: ${s.reason}`).join('; ')})`
        : `the ${choice} execution provider (--provider ${choice}) cannot run it: ${skipped[0]?.reason ?? 'not tried'}`,
    );
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
    super(code, message, options);
  }
}

/** The pickle stream inside a checkpoint is malformed (the reader wraps it in a CheckpointError). */
export class PickleError extends AppError {
  constructor(message: string) {
    super('corrupt', message);
  }
}

/** The checkpoint was readable but does not hold the weights the architecture needs. */
export class WeightsError extends AppError {
  constructor(code: 'missing_tensor' | 'shape_mismatch' | 'bad_arch', message: string) {
    super(code, message);
  }
}

/** A download that failed for good: `reason` says why, in words. */
export class DownloadError extends AppError {
  constructor(
    readonly url: string,
    readonly reason: string,
    readonly transient = false,
  ) {
    super('download_failed', `cannot download ${url}: ${reason}`);
  }
}

// ---- the command line ----

/** A command used wrongly: the CLI prints the message (with the usage) and exits 2. */
export class UsageError extends AppError {
  constructor(message: string) {
    super('usage', message);
  }
}

/** A service option (flag or environment variable) that is not valid. */
export class ConfigError extends AppError {
  constructor(message: string) {
    super('invalid_config', message);
  }
}

// ---- retrieval (src/retrieval) ----

/** An annotation file in ALBEF's format that cannot be used; `index` is the entry at fault, `param` its field. */
export class AnnotationsError extends AppError {
  constructor(message: string, entry?: number, field?: string, options?: { cause?: unknown }) {
    super('invalid_annotations', message, { index: entry, param: field, cause: options?.cause });
  }
}

/** A relative path that would leave the root it must stay under (a collection's image root). */
export class PathOutsideRootError extends AppError {
  constructor(message: string, index?: number) {
    super('path_outside_root', message, { index });
  }
}

// ---- collections (src/retrieval) ----

export class CollectionNotFoundError extends AppError {
  constructor(name: string) {
    super('collection_not_found', `no collection named ${JSON.stringify(name)}`, { param: 'collection' });
  }
}

/** A collection of that name exists with another model, modality, dim or root. */
export class CollectionConflictError extends AppError {
  constructor(message: string) {
    super('collection_conflict', message, { param: 'collection' });
  }
}

export class InvalidFilterError extends AppError {
  constructor(message: string) {
    super('invalid_filter', message, { param: 'filter' });
  }
}

/** The store (PostgreSQL, the LanceDB directory) cannot be reached; `store` names it without secrets. */
export class StoreUnavailableError extends AppError {
  constructor(
    readonly store: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('store_unavailable', `store ${store} is unavailable: ${message}`, options);
  }
}

/** A collection searched with another model than the one that made its vectors. */
export class ModelMismatchError extends AppError {
  constructor(message: string) {
    super('model_mismatch', message, { param: 'model' });
  }
}

/** An item named by id that the collection does not hold. */
export class NotFoundError extends AppError {
  constructor(message: string, param?: string) {
    super('item_not_found', message, { param });
  }
}
