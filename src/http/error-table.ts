// The one table from error code to HTTP status and meaning. The error handler answers with it, the
// OpenAPI document describes each route's error statuses from it, and docs/errors.md is generated
// from it (a test fails when the page drifts).

import type { ServiceErrorCode } from '../core/errors.js';

export interface ErrorEntry {
  status: number;
  /** When a client gets it, in a few words. */
  when: string;
}

export const ERROR_TABLE: Record<ServiceErrorCode, ErrorEntry> = {
  invalid_request: {
    status: 400,
    when: 'the body does not match its schema: a field missing, unknown or of the wrong type',
  },
  bad_request: { status: 400, when: 'fields that contradict each other, or a value the route cannot use' },
  invalid_json: { status: 400, when: 'the body is not valid JSON' },
  invalid_multipart: { status: 400, when: 'the multipart body cannot be parsed (truncated, bad boundary)' },
  empty_image: { status: 400, when: 'an image item has no bytes' },
  invalid_image_data: { status: 400, when: 'an inline image is neither a data: URI nor base64' },
  invalid_url: { status: 400, when: 'an image URL that does not parse, or is longer than 8192 characters' },
  url_not_allowed: {
    status: 400,
    when: 'an image URL of a scheme other than http(s), with credentials, or reaching a private, loopback, link-local or metadata address (see --allow-private-urls)',
  },
  modality_mismatch: { status: 400, when: 'a rerank pair is not one text and one image' },
  token_ids_not_supported: { status: 400, when: '/v1/embeddings input holds token ids instead of texts' },
  unsupported_dimensions: { status: 400, when: "`dimensions` differs from the model's own" },
  fusion_unavailable: {
    status: 400,
    when: 'the model cannot re-rank or classify: no matching part (reconvert it), --no-fusion, or no temperature',
  },
  unauthorized: { status: 401, when: 'API keys are configured and none or a wrong one was given' },
  model_not_found: { status: 404, when: 'no loaded model has that name' },
  not_found: { status: 404, when: 'no such route' },
  body_too_large: { status: 413, when: 'the request body is over --body-limit-bytes' },
  image_too_large: { status: 413, when: 'an image is over --max-image-bytes, or over --max-image-pixels decoded' },
  too_many_items: { status: 413, when: 'more items than --max-items, or than a whole queue holds' },
  too_many_fields: { status: 413, when: 'too many fields in a multipart body' },
  text_too_long: { status: 413, when: 'a text is over --max-text-chars' },
  url_too_large: { status: 413, when: 'an image URL answers with more than --url-max-bytes' },
  unsupported_media_type: {
    status: 415,
    when: 'an image of a format not decoded here, or a request content type the route does not take',
  },
  undecodable_image: { status: 422, when: 'an image of a known format that cannot be decoded' },
  client_closed_request: { status: 499, when: 'the client went away before its answer (only logged)' },
  url_fetch_failed: { status: 502, when: 'an image URL cannot be fetched (DNS, connection, HTTP status)' },
  url_timeout: { status: 502, when: 'an image URL did not answer within --url-timeout-ms' },
  url_too_many_redirects: { status: 502, when: 'an image URL redirects more than --url-max-redirects times' },
  internal_error: { status: 500, when: 'a bug: the log has the details' },
  inference_failed: { status: 500, when: 'ONNX Runtime failed on a batch' },
  overloaded: { status: 503, when: 'a queue is full; retry after the Retry-After header' },
  not_ready: { status: 503, when: 'models are still loading, failed to load, or the service is shutting down' },
  deadline_exceeded: { status: 504, when: 'an item waited past --request-timeout-ms' },
  invalid_annotations: {
    status: 400,
    when: "an annotation file in ALBEF's format that cannot be used (the entry and field are named)",
  },
  model_mismatch: {
    status: 409,
    when: 'a collection searched with another model (or another conversion of it) than the one that made its vectors',
  },
  rerank_unavailable: {
    status: 400,
    when: "rerank asked for a query of the collection's own modality, or of a model without the matching part",
  },
  item_not_found: { status: 404, when: 'a query by id names an item the collection does not hold' },
  source_unavailable: {
    status: 502,
    when: "a re-rank candidate's image cannot be read from the collection's root (moved or deleted since indexing)",
  },
  collection_not_found: { status: 404, when: 'no collection of that name in the store' },
  collection_conflict: {
    status: 409,
    when: 'a collection of that name exists with another model, modality, dimension or root',
  },
  invalid_collection_name: { status: 400, when: 'a collection name outside 1–63 characters of a-z, 0-9, _ and -' },
  invalid_item: {
    status: 400,
    when: 'an item to index without a string id or source, or with a vector of another length',
  },
  dimension_mismatch: { status: 400, when: "a vector whose length is not the collection's" },
  invalid_metadata: { status: 400, when: 'metadata that is not a JSON object' },
  invalid_filter: {
    status: 400,
    when: 'a search filter that is not field → string, number or boolean, or names a field no item has',
  },
  store_unavailable: { status: 503, when: 'the collection store cannot be reached (the message names it)' },
  store_error: { status: 500, when: 'the store refused a request it should have taken: the log has the details' },
  path_outside_root: { status: 400, when: "a relative path that would leave its root (a collection's image folder)" },
};

/** The codes a status stands for, for the OpenAPI document's response descriptions. */
export function describeStatus(status: number): string {
  const codes = Object.entries(ERROR_TABLE).filter(([, e]) => e.status === status);
  return codes.map(([code, e]) => `${code}: ${e.when}`).join('; ');
}
