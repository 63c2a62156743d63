// The collection store's contract (what the CLI, the HTTP routes and the searcher build on) and the
// pieces both stores share: validation of names, items and filters, and the exact float64 re-scoring
// that makes search scores independent of each database's float32 arithmetic.
//
// Two implementations: LanceStore (an embedded LanceDB directory) and PgStore (PostgreSQL + pgvector);
// openStore() in open-store.ts picks one from the `--store` value.
//
// Semantics every implementation keeps:
// - `add` is exactly-once per id, also with many processes writing the same collection at once:
//   ids already present (or repeated within the batch) are skipped, never duplicated or overwritten.
// - `search` returns cosine similarities (not distances) re-computed in float64 from the stored float32
//   vectors, best first, ties by id ascending. `exact: true` (or no ANN index) gives the exact top k;
//   otherwise the ANN index proposes candidates, re-scored the same way.
// - `filter` is equality on top-level metadata fields (string, number, boolean; several = AND), applied
//   before the top k: a selective filter still returns k hits when k items match.
// - Every failure to reach the store surfaces as StoreUnavailableError (503 `store_unavailable`);
//   a store that comes back works again on the next call.

import { BadRequestError, InvalidFilterError } from '../core/errors.js';

export type Modality = 'image' | 'text';

/** What a collection is: fixed at creation. */
export interface CollectionSpec {
  /** `^[a-z0-9][a-z0-9_-]{0,62}$` (it names tables). */
  name: string;
  /** The model's name (e.g. `albef_4m`). */
  model: string;
  /** sha256 (hex) of the tower file that made the vectors; the caller compares before searching. */
  modelSha256: string;
  modality: Modality;
  /** Vector length (256 for the real models). */
  dim: number;
  /** Images only: the folder that relative `source` paths are under. */
  root?: string;
}

export interface CollectionInfo extends CollectionSpec {
  count: number;
  /** `none` (exact search only), `ivf_pq`, `ivf_hnsw_sq`, `ivf_flat` (LanceDB) or `hnsw` (pgvector). */
  index: string;
  /** The store, described without secrets (what `GET /v1/collections` shows). */
  store: string;
  /** ISO 8601. */
  createdAt: string;
  /** Top-level metadata field names seen in added items, sorted. */
  metadataFields: string[];
}

export interface StoredItem {
  id: string;
  /** Image: a path relative to the collection's root, or a URL. Text: the text itself. */
  source: string;
  /** A JSON object (not an array, not null). */
  metadata?: Record<string, unknown>;
  /** `dim` floats. */
  vector: Float32Array;
}

export interface Hit {
  id: string;
  source: string;
  metadata?: Record<string, unknown>;
  /** Cosine similarity, float64, from the stored float32 vectors. */
  score: number;
  /** Only with `withVectors`. */
  vector?: Float32Array;
}

export type FilterValue = string | number | boolean;

export interface SearchOptions {
  /** How many hits (1..MAX_K). */
  k: number;
  /** Equality on top-level metadata fields, all must hold. A field no item has → 400 `invalid_filter`. */
  filter?: Record<string, FilterValue>;
  /** true: exact top k even where an ANN index exists. Default: ANN where an index exists, else exact. */
  exact?: boolean;
  withVectors?: boolean;
}

export interface AddResult {
  added: number;
  skipped: number;
}

export interface CollectionStore {
  /** Which store this is, without secrets (`lancedb:/data/collections`, `postgresql://user@host:5432/db`). */
  readonly description: string;
  /** Resolves when the store answers; rejects with StoreUnavailableError. For `/readyz`. */
  ping(): Promise<void>;
  list(): Promise<CollectionInfo[]>;
  /** Throws CollectionNotFoundError. */
  info(name: string): Promise<CollectionInfo>;
  /** What the collection is, without counting or inspecting it (what a search needs; cheap). */
  spec(name: string): Promise<CollectionSpec>;
  /** Idempotent for the same spec; another spec under the same name → CollectionConflictError (409). */
  create(spec: CollectionSpec): Promise<CollectionInfo>;
  /** Throws CollectionNotFoundError when there is none. */
  drop(name: string): Promise<void>;
  /** Which of these ids are stored already (for resuming). */
  present(name: string, ids: string[]): Promise<Set<string>>;
  /** Adds the items whose ids are not stored yet; validates every item first (400 on a bad one). */
  add(name: string, items: StoredItem[]): Promise<AddResult>;
  /** The stored items with these ids (unknown ids are left out), in the order asked. */
  get(name: string, ids: string[], withVectors?: boolean): Promise<StoredItem[]>;
  search(name: string, vector: Float32Array, options: SearchOptions): Promise<Hit[]>;
  /** Builds (or refreshes) the ANN index, compacts; returns the new info. */
  optimize(name: string): Promise<CollectionInfo>;
  /** Every item, with its vector, in batches of at most batchSize, ordered by id (for export). */
  scan(name: string, batchSize: number): AsyncIterable<StoredItem[]>;
  close(): Promise<void>;
}

export interface StoreOptions {
  /**
   * `add` builds the ANN index once a collection without one reaches this many items (`optimize`
   * builds it at any size). 0 turns the automatic build off.
   */
  autoIndexThreshold?: number;
}

/** Where exact search stops being cheap enough (see docs/stores.md for the measurement). */
export const DEFAULT_AUTO_INDEX_THRESHOLD = 20_000;
export const MAX_K = 10_000;

const NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export function checkName(name: string): void {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new BadRequestError(
      `invalid collection name ${JSON.stringify(name)}: 1-63 characters of a-z, 0-9, _ and -, starting with a letter or digit`,
      undefined,
      'invalid_collection_name',
      'collection',
    );
  }
}

export function checkSpec(spec: CollectionSpec): void {
  checkName(spec.name);
  if (typeof spec.model !== 'string' || spec.model === '') throw new BadRequestError('the model name is empty');
  if (typeof spec.modelSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(spec.modelSha256)) {
    throw new BadRequestError('modelSha256 must be 64 lowercase hex digits');
  }
  if (spec.modality !== 'image' && spec.modality !== 'text') {
    throw new BadRequestError(`modality must be image or text, not ${JSON.stringify(spec.modality)}`);
  }
  if (!Number.isInteger(spec.dim) || spec.dim < 1 || spec.dim > 16_000) {
    throw new BadRequestError(`dim must be an integer in 1..16000, not ${String(spec.dim)}`);
  }
  if (spec.root !== undefined && typeof spec.root !== 'string') throw new BadRequestError('root must be a string');
}

/** The fields of a spec that must agree for `create` to be idempotent; null when they agree. */
export function specDifference(a: CollectionSpec, b: CollectionSpec): string | null {
  for (const key of ['model', 'modelSha256', 'modality', 'dim', 'root'] as const) {
    if ((a[key] ?? null) !== (b[key] ?? null)) {
      return `collection ${JSON.stringify(a.name)} exists with ${key} ${JSON.stringify(a[key] ?? null)}, not ${JSON.stringify(b[key] ?? null)}`;
    }
  }
  return null;
}

export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Validates a batch (400 naming the item's index on the first bad one) and drops repeated ids
 * within it (the first wins), so a store only has to skip ids stored before.
 */
export function checkItems(items: StoredItem[], dim: number): StoredItem[] {
  const seen = new Set<string>();
  const unique: StoredItem[] = [];
  items.forEach((item, i) => {
    if (typeof item.id !== 'string' || item.id === '') {
      throw new BadRequestError('an item id must be a non-empty string', i, 'invalid_item', 'id');
    }
    if (typeof item.source !== 'string') {
      throw new BadRequestError(
        `item ${JSON.stringify(item.id)}: source must be a string`,
        i,
        'invalid_item',
        'source',
      );
    }
    if (item.metadata !== undefined && !isJsonObject(item.metadata)) {
      throw new BadRequestError(
        `item ${JSON.stringify(item.id)}: metadata must be a JSON object`,
        i,
        'invalid_metadata',
        'metadata',
      );
    }
    if (item.metadata !== undefined) {
      try {
        JSON.stringify(item.metadata);
      } catch (cause) {
        throw new BadRequestError(
          `item ${JSON.stringify(item.id)}: metadata is not serialisable JSON (${String(cause)})`,
          i,
          'invalid_metadata',
          'metadata',
        );
      }
    }
    if (!(item.vector instanceof Float32Array) || item.vector.length !== dim) {
      throw new BadRequestError(
        `item ${JSON.stringify(item.id)}: the vector must be a Float32Array of ${dim} floats`,
        i,
        'dimension_mismatch',
        'vector',
      );
    }
    if (!item.vector.every(Number.isFinite)) {
      throw new BadRequestError(
        `item ${JSON.stringify(item.id)}: the vector is not finite`,
        i,
        'invalid_item',
        'vector',
      );
    }
    if (seen.has(item.id)) return;
    seen.add(item.id);
    unique.push(item);
  });
  return unique;
}

export function checkQuery(vector: Float32Array, dim: number, options: SearchOptions): void {
  if (!(vector instanceof Float32Array) || vector.length !== dim) {
    throw new BadRequestError(`the query vector must have ${dim} floats`, undefined, 'dimension_mismatch', 'query');
  }
  if (!vector.every(Number.isFinite)) throw new BadRequestError('the query vector is not finite');
  if (!Number.isInteger(options.k) || options.k < 1 || options.k > MAX_K) {
    throw new BadRequestError(`k must be an integer in 1..${MAX_K}`, undefined, 'bad_request', 'top_k');
  }
  checkFilter(options.filter);
}

/** The filter's shape: an object of string, finite number or boolean values. */
export function checkFilter(filter: unknown): asserts filter is Record<string, FilterValue> | undefined {
  if (filter === undefined) return;
  if (!isJsonObject(filter)) throw new InvalidFilterError('filter must be an object of metadata field → value');
  for (const [field, value] of Object.entries(filter)) {
    const ok =
      typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && isFinite(value));
    if (!ok) {
      throw new InvalidFilterError(
        `filter ${JSON.stringify(field)}: a value must be a string, a finite number or a boolean`,
      );
    }
  }
}

export function unknownFieldError(fields: string[]): InvalidFilterError {
  return new InvalidFilterError(
    `filter on ${fields.map((f) => JSON.stringify(f)).join(', ')}: no item of the collection has that metadata field`,
  );
}

/** Cosine similarity in float64 of two float32 vectors (0 when either is all zeros). */
export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/** Best first, ties by id ascending (code-unit order, as PostgreSQL's "C" collation and Arrow sort). */
export function byScoreThenId(a: Hit, b: Hit): number {
  return b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * A bound on how far a database's float32 cosine distance can be from the float64 one, for vectors of
 * `dim` floats: the float32 dot product's rounding error is at most about dim × 2⁻²⁴ relative, doubled
 * for the norms; exact search fetches candidates until the next unfetched one is provably worse than
 * the k-th by more than this.
 */
export function float32Slack(dim: number): number {
  return 4 * dim * 2 ** -24 + 1e-6;
}

/**
 * Exact top k from a store's own (float32) ordering: `fetch(n)` returns the n nearest by the store's
 * distance (1 − cosine), nearest first, with their stored vectors. Re-scores in float64 and asks for
 * more candidates until no unfetched item can still belong to the top k (or ties it).
 */
export async function exactTopK<T extends { item: Hit; distance: number; vector: Float32Array }>(
  query: Float32Array,
  k: number,
  fetch: (n: number) => Promise<T[]>,
): Promise<Hit[]> {
  const slack = float32Slack(query.length);
  for (let n = Math.max(k + 16, Math.ceil(k * 1.25)); ; n *= 4) {
    const rows = await fetch(n);
    const hits = rows.map((r) => ({ ...r.item, score: cosine(query, r.vector) }));
    hits.sort(byScoreThenId);
    if (rows.length < n) return hits.slice(0, k);
    const kth = hits[k - 1]!.score;
    const bestUnfetched = 1 - rows[rows.length - 1]!.distance + slack;
    if (kth > bestUnfetched) return hits.slice(0, k);
  }
}

/** Re-scores ANN candidates in float64 and keeps the best k. */
export function rescore(query: Float32Array, rows: { item: Hit; vector: Float32Array }[], k: number): Hit[] {
  const hits = rows.map((r) => ({ ...r.item, score: cosine(query, r.vector) }));
  hits.sort(byScoreThenId);
  return hits.slice(0, k);
}

/** The top-level keys of a batch's metadata, sorted. */
export function metadataKeys(items: StoredItem[]): string[] {
  const keys = new Set<string>();
  for (const item of items) for (const key of Object.keys(item.metadata ?? {})) keys.add(key);
  return [...keys].sort();
}
