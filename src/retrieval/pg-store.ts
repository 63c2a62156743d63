// The server store: PostgreSQL with pgvector, for those who run one.
//
// - A catalog table (albef_collections) names each collection and its spec; items live in
//   albef_items_<n> (n from the catalog, so names never hit identifier limits or quoting), with
//   `embedding vector(dim)`, `metadata jsonb`, and `id` as primary key: many writers insert with
//   ON CONFLICT DO NOTHING and every id lands exactly once.
// - ANN: an HNSW index with vector_cosine_ops (cosine distance `<=>`); searched with iterative scans so
//   a filter still finds k rows. Exact search orders by an expression the index cannot serve.
// - Vectors travel as pgvector's text literal '[x,y,…]' instead of through the `pgvector` package: the
//   literal is three lines, needs no per-connection type registration, and is exact both ways (a
//   float32 printed as its shortest double reads back as the same float32 in pgvector's strtof).

import pg from 'pg';

import {
  AppError,
  BadRequestError,
  CollectionConflictError,
  CollectionNotFoundError,
  StoreUnavailableError,
} from '../core/errors.js';
import {
  checkItems,
  checkName,
  checkQuery,
  checkSpec,
  DEFAULT_AUTO_INDEX_THRESHOLD,
  exactTopK,
  metadataKeys,
  rescore,
  specDifference,
  unknownFieldError,
  type AddResult,
  type CollectionInfo,
  type CollectionSpec,
  type CollectionStore,
  type FilterValue,
  type Hit,
  type SearchOptions,
  type StoredItem,
  type StoreOptions,
} from './store.js';

/** Below this many rows no index is built: exact search is as fast. */
export const PG_MIN_ANN_ROWS = 1024;

/** HNSW settings: see docs/stores.md for the recall and latency behind them. */
export const PG_ANN = { m: 16, efConstruction: 128, efSearch: 400 };

export interface PgStoreOptions extends StoreOptions {
  /** Connections in the pool (default 4). */
  poolSize?: number;
}

interface CatalogRow {
  name: string;
  table_id: string;
  model: string;
  model_sha256: string;
  modality: 'image' | 'text';
  dim: number;
  root: string | null;
  created_at: Date;
  fields: string[];
}

interface ItemRow {
  id: string;
  source: string;
  metadata: Record<string, unknown> | null;
  v?: string;
  d?: number;
}

const CATALOG = 'albef_collections';

export function vectorLiteral(v: Float32Array): string {
  return `[${Array.from(v).join(',')}]`;
}

export function parseVector(text: string): Float32Array {
  const body = text.slice(1, -1);
  return body === '' ? new Float32Array(0) : Float32Array.from(body.split(','), Number);
}

/** The URL without its password (and without query parameters, which may carry one). */
export function describePg(url: string): string {
  try {
    const u = new URL(url);
    const user = u.username ? `${decodeURIComponent(u.username)}@` : '';
    return `${u.protocol}//${user}${u.host}${u.pathname}`;
  } catch {
    return 'postgresql://(unparsable URL)';
  }
}

export class PgStore implements CollectionStore {
  readonly description: string;
  private readonly pool: pg.Pool;
  private readonly autoIndexThreshold: number;
  private bootstrap?: Promise<void>;

  constructor(url: string, options: PgStoreOptions = {}) {
    this.description = describePg(url);
    this.autoIndexThreshold = options.autoIndexThreshold ?? DEFAULT_AUTO_INDEX_THRESHOLD;
    this.pool = new pg.Pool({
      connectionString: url,
      max: options.poolSize ?? 4,
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 10_000,
    });
    // An idle connection that dies (server restart) emits 'error' on the pool: without a listener that
    // would crash the process. The pool drops the client and the next query opens a fresh one.
    this.pool.on('error', () => {});
  }

  async ping(): Promise<void> {
    await this.query('SELECT 1');
  }

  async list(): Promise<CollectionInfo[]> {
    await this.ready();
    const { rows } = await this.query<CatalogRow>(`SELECT * FROM ${CATALOG} ORDER BY name`);
    return Promise.all(rows.map((row) => this.describe(row)));
  }

  async info(name: string): Promise<CollectionInfo> {
    return this.describe(await this.catalog(name));
  }

  async create(spec: CollectionSpec): Promise<CollectionInfo> {
    checkSpec(spec);
    await this.ready();
    await this.transaction(async (client) => {
      // Blocks on a concurrent insert of the same name until it commits, then does nothing.
      const inserted = await client.query<{ table_id: string }>(
        `INSERT INTO ${CATALOG} (name, model, model_sha256, modality, dim, root) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (name) DO NOTHING RETURNING table_id`,
        [spec.name, spec.model, spec.modelSha256, spec.modality, spec.dim, spec.root ?? null],
      );
      const id = inserted.rows[0]?.table_id;
      if (id === undefined) return;
      await client.query(
        `CREATE TABLE ${items(id)} (id text COLLATE "C" PRIMARY KEY, source text NOT NULL, metadata jsonb,
         embedding vector(${spec.dim}) NOT NULL)`,
      );
    });
    const info = await this.info(spec.name);
    const difference = specDifference(info, spec);
    if (difference) throw new CollectionConflictError(difference);
    return info;
  }

  async drop(name: string): Promise<void> {
    checkName(name);
    await this.ready();
    await this.transaction(async (client) => {
      const { rows } = await client.query<{ table_id: string }>(
        `DELETE FROM ${CATALOG} WHERE name = $1 RETURNING table_id`,
        [name],
      );
      if (!rows[0]) throw new CollectionNotFoundError(name);
      await client.query(`DROP TABLE IF EXISTS ${items(rows[0].table_id)}`);
    });
  }

  async present(name: string, ids: string[]): Promise<Set<string>> {
    const row = await this.catalog(name);
    const { rows } = await this.query<{ id: string }>(
      `SELECT id FROM ${items(row.table_id)} WHERE id = ANY($1::text[])`,
      [ids],
    );
    return new Set(rows.map((r) => r.id));
  }

  async add(name: string, batch: StoredItem[]): Promise<AddResult> {
    const row = await this.catalog(name);
    const unique = checkItems(batch, row.dim);
    if (unique.length === 0) return { added: 0, skipped: batch.length };
    const result = await this.query(
      `INSERT INTO ${items(row.table_id)} (id, source, metadata, embedding)
       SELECT i, s, m, e::vector FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::text[]) AS u(i, s, m, e)
       ON CONFLICT (id) DO NOTHING`,
      [
        unique.map((i) => i.id),
        unique.map((i) => i.source),
        unique.map((i) => (i.metadata === undefined ? null : JSON.stringify(i.metadata))),
        unique.map((i) => vectorLiteral(i.vector)),
      ],
    );
    const added = result.rowCount ?? 0;
    const fresh = metadataKeys(unique).filter((k) => !row.fields.includes(k));
    if (fresh.length) {
      // The row lock orders concurrent writers; each re-reads the array it extends.
      await this.query(
        `UPDATE ${CATALOG} SET fields = ARRAY(SELECT DISTINCT f FROM unnest(fields || $2::text[]) AS f ORDER BY f)
         WHERE name = $1`,
        [name, fresh],
      );
    }
    if (this.autoIndexThreshold > 0) await this.autoIndex(row);
    return { added, skipped: batch.length - added };
  }

  async get(name: string, ids: string[], withVectors = true): Promise<StoredItem[]> {
    const row = await this.catalog(name);
    const { rows } = await this.query<ItemRow>(
      `SELECT id, source, metadata${withVectors ? ', embedding::text AS v' : ''} FROM ${items(row.table_id)}
       WHERE id = ANY($1::text[])`,
      [ids],
    );
    const byId = new Map(rows.map((r) => [r.id, toItem(r)]));
    return ids.flatMap((id) => {
      const item = byId.get(id);
      return item ? [item] : [];
    });
  }

  async search(name: string, vector: Float32Array, options: SearchOptions): Promise<Hit[]> {
    const row = await this.catalog(name);
    checkQuery(vector, row.dim, options);
    const params: unknown[] = [vectorLiteral(vector)];
    let where = '';
    if (options.filter && Object.keys(options.filter).length) {
      await this.checkFilterFields(row, options.filter);
      where = `WHERE ${pgFilter(options.filter, params)}`;
    }
    const table = items(row.table_id);
    const withVectors = options.withVectors ?? false;
    const finish = (hits: Hit[]): Hit[] => (withVectors ? hits : hits.map(({ vector: _v, ...hit }) => hit));
    const select = `SELECT id, source, metadata, embedding::text AS v, embedding <=> $1::vector AS d FROM ${table} ${where}`;
    if (!options.exact && (await this.hasIndex(row.table_id))) {
      const limit = params.length + 1;
      const efSearch = Math.min(1000, Math.max(PG_ANN.efSearch, options.k));
      const rows = await this.transaction(async (client) => {
        await client.query(
          `SELECT set_config('hnsw.ef_search', $1, true), set_config('hnsw.iterative_scan', 'relaxed_order', true)`,
          [String(efSearch)],
        );
        return (
          await client.query<ItemRow>(`${select} ORDER BY embedding <=> $1::vector LIMIT $${limit}`, [
            ...params,
            options.k,
          ])
        ).rows;
      });
      // Iterative scans stop at hnsw.max_scan_tuples: a very selective filter falls back to exact.
      if (rows.length >= options.k || !where) return finish(rescore(vector, rows.map(toRow), options.k));
    }
    const limit = params.length + 1;
    const hits = await exactTopK(vector, options.k, async (n) => {
      // `+ 0`: an ORDER BY the HNSW index cannot serve, so PostgreSQL computes every distance.
      const { rows } = await this.query<ItemRow>(`${select} ORDER BY (embedding <=> $1::vector) + 0 LIMIT $${limit}`, [
        ...params,
        n,
      ]);
      return rows.map(toRow);
    });
    return finish(hits);
  }

  async optimize(name: string): Promise<CollectionInfo> {
    const row = await this.catalog(name);
    const { rows } = await this.query<{ n: string }>(`SELECT count(*) AS n FROM ${items(row.table_id)}`);
    if (Number(rows[0]?.n ?? 0) >= PG_MIN_ANN_ROWS) await this.buildIndex(row.table_id);
    await this.query(`VACUUM ANALYZE ${items(row.table_id)}`);
    return this.info(name);
  }

  async *scan(name: string, batchSize: number): AsyncIterable<StoredItem[]> {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new BadRequestError('batchSize must be ≥ 1');
    const row = await this.catalog(name);
    // Keyset pages in id order: each item once, even while writers add more.
    let after: string | null = null;
    for (;;) {
      const page: pg.QueryResult<ItemRow> = await this.query<ItemRow>(
        `SELECT id, source, metadata, embedding::text AS v FROM ${items(row.table_id)}
         WHERE $1::text IS NULL OR id > $1::text ORDER BY id LIMIT $2`,
        [after, batchSize],
      );
      if (page.rows.length === 0) return;
      yield page.rows.map(toItem);
      if (page.rows.length < batchSize) return;
      after = page.rows[page.rows.length - 1]!.id;
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  // ---- internals ----

  private ready(): Promise<void> {
    this.bootstrap ??= this.transaction(async (client) => {
      // One creator at a time: CREATE ... IF NOT EXISTS races on the system catalogs otherwise.
      await client.query(`SELECT pg_advisory_xact_lock(hashtext('albef_embed.catalog'))`);
      await client.query('CREATE EXTENSION IF NOT EXISTS vector');
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${CATALOG} (
           name text PRIMARY KEY,
           table_id bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
           model text NOT NULL, model_sha256 text NOT NULL, modality text NOT NULL, dim integer NOT NULL,
           root text, created_at timestamptz NOT NULL DEFAULT now(), fields text[] NOT NULL DEFAULT '{}')`,
      );
    }).catch((err: unknown) => {
      this.bootstrap = undefined; // try again on the next call
      throw err;
    });
    return this.bootstrap;
  }

  private async catalog(name: string): Promise<CatalogRow> {
    checkName(name);
    await this.ready();
    const { rows } = await this.query<CatalogRow>(`SELECT * FROM ${CATALOG} WHERE name = $1`, [name]);
    if (!rows[0]) throw new CollectionNotFoundError(name);
    return rows[0];
  }

  async spec(name: string): Promise<CollectionSpec> {
    return specOfRow(await this.catalog(name));
  }

  private async describe(row: CatalogRow): Promise<CollectionInfo> {
    const [{ rows }, indexed] = await Promise.all([
      this.query<{ n: string }>(`SELECT count(*) AS n FROM ${items(row.table_id)}`),
      this.hasIndex(row.table_id),
    ]);
    return {
      ...specOfRow(row),
      count: Number(rows[0]?.n ?? 0),
      index: indexed ? 'hnsw' : 'none',
      store: this.description,
      createdAt: row.created_at.toISOString(),
      metadataFields: row.fields,
    };
  }

  private async hasIndex(tableId: string): Promise<boolean> {
    const { rows } = await this.query<{ r: string | null }>(`SELECT to_regclass($1) AS r`, [indexName(tableId)]);
    return rows[0]?.r != null;
  }

  private async buildIndex(tableId: string): Promise<void> {
    await this.query(
      `CREATE INDEX IF NOT EXISTS ${indexName(tableId)} ON ${items(tableId)}
       USING hnsw (embedding vector_cosine_ops) WITH (m = ${PG_ANN.m}, ef_construction = ${PG_ANN.efConstruction})`,
    );
  }

  private async autoIndex(row: CatalogRow): Promise<void> {
    if (await this.hasIndex(row.table_id)) return;
    // A count that stops at the threshold: cheap below it, and never a scan of a big table.
    const threshold = Math.max(this.autoIndexThreshold, PG_MIN_ANN_ROWS);
    const { rows } = await this.query<{ n: string }>(
      `SELECT count(*) AS n FROM (SELECT 1 FROM ${items(row.table_id)} LIMIT $1) AS s`,
      [threshold],
    );
    if (Number(rows[0]?.n ?? 0) < threshold) return;
    await this.buildIndex(row.table_id);
  }

  private async checkFilterFields(row: CatalogRow, filter: Record<string, FilterValue>): Promise<void> {
    const missing: string[] = [];
    for (const field of Object.keys(filter)) {
      if (row.fields.includes(field)) continue;
      const { rows } = await this.query(`SELECT 1 FROM ${items(row.table_id)} WHERE metadata ? $1 LIMIT 1`, [field]);
      if (rows.length === 0) missing.push(field);
    }
    if (missing.length) throw unknownFieldError(missing);
  }

  private async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(text, values);
    } catch (err) {
      throw this.translate(err);
    }
  }

  private async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw this.translate(err);
    }
    let broken: unknown;
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      broken = err;
      await client.query('ROLLBACK').catch(() => {});
      throw this.translate(err);
    } finally {
      // A connection that failed mid-transaction is not given back to the pool.
      client.release(broken !== undefined && !(broken instanceof AppError) ? true : undefined);
    }
  }

  private translate(err: unknown): unknown {
    if (err instanceof AppError) return err;
    const code = (err as { code?: unknown }).code;
    const text = err instanceof Error ? err.message : String(err);
    const connection =
      (typeof code === 'string' && (/^(08|57P|53)/.test(code) || /^E[A-Z]+$/.test(code))) ||
      /Connection terminated|timeout exceeded when trying to connect|connection error|not queryable|ECONNREFUSED/i.test(
        text,
      );
    if (connection) return new StoreUnavailableError(this.description, text, { cause: err });
    if (code === '22P02' || code === '22P05' || code === '22021') {
      return new BadRequestError(`PostgreSQL refused a value: ${text}`, undefined, 'invalid_item');
    }
    return err;
  }
}

const items = (tableId: string): string => `albef_items_${BigInt(tableId).toString()}`;
const indexName = (tableId: string): string => `${items(tableId)}_hnsw`;

/** `metadata -> 'field' = '<JSON>'::jsonb` per field: JSON equality, so "3" ≠ 3 but 3 = 3.0. */
export function pgFilter(filter: Record<string, FilterValue>, params: unknown[]): string {
  return Object.entries(filter)
    .map(([field, value]) => {
      params.push(field, JSON.stringify(value));
      return `metadata -> $${params.length - 1}::text = $${params.length}::jsonb`;
    })
    .join(' AND ');
}

function toItem(row: ItemRow): StoredItem {
  return {
    id: row.id,
    source: row.source,
    ...(row.metadata !== null ? { metadata: row.metadata } : {}),
    vector: row.v !== undefined ? parseVector(row.v) : new Float32Array(0),
  };
}

function toRow(row: ItemRow): { item: Hit; distance: number; vector: Float32Array } {
  const vector = parseVector(row.v ?? '[]');
  return {
    item: {
      id: row.id,
      source: row.source,
      ...(row.metadata !== null ? { metadata: row.metadata } : {}),
      score: 0,
      vector,
    },
    distance: Number(row.d),
    vector,
  };
}

function specOfRow(row: CatalogRow): CollectionSpec {
  return {
    name: row.name,
    model: row.model,
    modelSha256: row.model_sha256,
    modality: row.modality,
    dim: row.dim,
    ...(row.root !== null ? { root: row.root } : {}),
  };
}
