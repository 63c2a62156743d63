// The embedded store: one LanceDB table per collection in a local directory, nothing to run.
//
// - The collection's spec lives in the table's schema metadata, written atomically with the table, so
//   creating the same collection from two processes cannot leave half a collection.
// - Exactly-once across processes: `id` is the table's unenforced primary key (set in the schema at
//   creation) and items go in by merge-insert on `id`. Measured on LanceDB 0.31: without the key,
//   concurrent merge-inserts from three processes duplicated hundreds of ids; with it, Lance detects
//   the conflicting commits and retries them, and every id lands once.
// - Metadata is a JSON column (LanceDB's `arrow.json` type); filters are `json_extract(...) = '<JSON>'`,
//   which compares the JSON text of the value, so "3" and 3 differ as in JSON (and as in PostgreSQL).
// - The metadata field names seen so far are kept as keys of the metadata column's field metadata.

import { mkdir, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';

import * as lancedb from '@lancedb/lancedb';

import {
  AppError,
  CollectionConflictError,
  CollectionNotFoundError,
  StoreUnavailableError,
  BadRequestError,
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

// LanceDB is CommonJS and checks `instanceof` against its own apache-arrow; the ES module build of
// apache-arrow is another copy of the classes, so tables built from it are rejected.
const arrow = createRequire(import.meta.url)('apache-arrow') as typeof import('apache-arrow');

const SPEC_KEY = 'albef.collection';
const FIELD_PREFIX = 'albef.field:';
const PRIMARY_KEY = 'lance-schema:unenforced-primary-key:position';
/** Below this many rows an ANN index is not built (training needs data; flat search is fast). */
export const MIN_ANN_ROWS = 1024;
const IN_CHUNK = 1000;

/** ANN settings: see docs/stores.md for the recall and latency behind them. */
export interface LanceAnnSettings {
  /** ivf_pq: product-quantised codes, re-ranked on the full vectors; ivf_flat: full vectors per partition. */
  index: 'ivf_pq' | 'ivf_flat';
  /** IVF partitions for n rows. */
  partitions(n: number): number;
  subVectors(dim: number): number;
  nprobes: number;
  refineFactor: number;
}

export const LANCE_ANN: LanceAnnSettings = {
  index: 'ivf_pq',
  partitions: (n) => Math.max(1, Math.min(4096, Math.round(Math.sqrt(n)))),
  subVectors: (dim) => (dim % 8 === 0 ? dim / 8 : dim % 4 === 0 ? dim / 4 : 1),
  nprobes: 48,
  refineFactor: 40,
};

interface StoredSpec {
  model: string;
  modelSha256: string;
  modality: 'image' | 'text';
  dim: number;
  root?: string;
  createdAt: string;
}

type Row = { item: Hit; distance: number; vector: Float32Array };

const sql = (s: string): string => `'${s.replaceAll("'", "''")}'`;
const jsonPath = (field: string): string => sql(`$[${JSON.stringify(field)}]`);

export function lanceFilter(filter: Record<string, FilterValue>): string | undefined {
  const terms = Object.entries(filter).map(
    ([field, value]) => `json_extract(metadata, ${jsonPath(field)}) = ${sql(JSON.stringify(value))}`,
  );
  return terms.length ? terms.join(' AND ') : undefined;
}

function idIn(ids: string[]): string {
  return `id IN (${ids.map(sql).join(', ')})`;
}

export class LanceStore implements CollectionStore {
  readonly description: string;
  private readonly tables = new Map<string, lancedb.Table>();
  private readonly autoIndexThreshold: number;

  private constructor(
    private readonly dir: string,
    private readonly db: lancedb.Connection,
    options: StoreOptions,
  ) {
    this.description = `lancedb:${dir}`;
    this.autoIndexThreshold = options.autoIndexThreshold ?? DEFAULT_AUTO_INDEX_THRESHOLD;
  }

  static async open(dir: string, options: StoreOptions = {}): Promise<LanceStore> {
    const abs = path.resolve(dir);
    try {
      await mkdir(abs, { recursive: true });
      // Interval 0: every read sees the other processes' commits (resume and serving replicas need it).
      const db = await lancedb.connect(abs, { readConsistencyInterval: 0 });
      return new LanceStore(abs, db, options);
    } catch (cause) {
      throw new StoreUnavailableError(`lancedb:${abs}`, errorText(cause), { cause });
    }
  }

  async ping(): Promise<void> {
    await this.checkDir();
    await this.guard(() => this.db.tableNames());
  }

  async list(): Promise<CollectionInfo[]> {
    await this.checkDir();
    const names = await this.guard(() => this.db.tableNames());
    const infos: CollectionInfo[] = [];
    for (const name of names.filter((n) => /^[a-z0-9][a-z0-9_-]{0,62}$/.test(n)).sort()) {
      try {
        infos.push(await this.info(name));
      } catch (err) {
        if (!(err instanceof CollectionNotFoundError)) throw err; // dropped meanwhile
      }
    }
    return infos;
  }

  async spec(name: string): Promise<CollectionSpec> {
    const { spec } = await this.specOf(await this.table(name), name);
    return collectionSpec(name, spec);
  }

  async info(name: string): Promise<CollectionInfo> {
    const table = await this.table(name);
    return this.guard(async () => {
      const schema = await table.schema();
      const spec = readSpec(name, schema);
      const [count, indices] = await Promise.all([table.countRows(), table.listIndices()]);
      const vectorIndex = indices.find((i) => i.columns.includes('vector'));
      const metadataField = schema.fields.find((f) => f.name === 'metadata');
      const fields = [...(metadataField?.metadata.keys() ?? [])]
        .filter((k) => k.startsWith(FIELD_PREFIX))
        .map((k) => k.slice(FIELD_PREFIX.length))
        .sort();
      return {
        ...collectionSpec(name, spec),
        count,
        index: vectorIndex ? snake(vectorIndex.indexType) : 'none',
        store: this.description,
        createdAt: spec.createdAt,
        metadataFields: fields,
      };
    }, name);
  }

  async create(spec: CollectionSpec): Promise<CollectionInfo> {
    checkSpec(spec);
    const stored: StoredSpec = {
      model: spec.model,
      modelSha256: spec.modelSha256,
      modality: spec.modality,
      dim: spec.dim,
      ...(spec.root !== undefined ? { root: spec.root } : {}),
      createdAt: new Date().toISOString(),
    };
    const schema = new arrow.Schema(
      [
        new arrow.Field('id', new arrow.Utf8(), false, new Map([[PRIMARY_KEY, '1']])),
        new arrow.Field('source', new arrow.Utf8(), false),
        new arrow.Field('metadata', new arrow.Utf8(), true, new Map([['ARROW:extension:name', 'arrow.json']])),
        new arrow.Field('vector', vectorType(spec.dim), false),
      ],
      new Map([[SPEC_KEY, JSON.stringify(stored)]]),
    );
    await this.checkDir();
    try {
      const table = await this.db.createEmptyTable(spec.name, schema, { mode: 'create', existOk: false });
      this.tables.set(spec.name, table);
    } catch (err) {
      if (!/already exists/i.test(errorText(err))) throw this.unavailable(err);
    }
    const info = await this.info(spec.name);
    const difference = specDifference(info, spec);
    if (difference) throw new CollectionConflictError(difference);
    return info;
  }

  async drop(name: string): Promise<void> {
    checkName(name);
    await this.checkDir();
    this.forget(name);
    try {
      await this.db.dropTable(name);
    } catch (err) {
      if (/not found|does not exist/i.test(errorText(err))) throw new CollectionNotFoundError(name);
      throw this.unavailable(err);
    }
  }

  async present(name: string, ids: string[]): Promise<Set<string>> {
    const table = await this.table(name);
    const found = new Set<string>();
    for (let i = 0; i < ids.length; i += IN_CHUNK) {
      const chunk = ids.slice(i, i + IN_CHUNK);
      const result = await this.guard(() => table.query().where(idIn(chunk)).select(['id']).toArrow(), name);
      const col = result.getChild('id');
      for (let r = 0; r < result.numRows; r++) found.add(String(col?.get(r)));
    }
    return found;
  }

  async add(name: string, items: StoredItem[]): Promise<AddResult> {
    const table = await this.table(name);
    const { schema, spec } = await this.specOf(table, name);
    const unique = checkItems(items, spec.dim);
    if (unique.length === 0) return { added: 0, skipped: items.length };
    const data = toArrow(unique, spec.dim, schema);
    // Lance retries conflicting commits itself for up to 30 s; under heavier contention the batch is
    // simply offered again (merge-insert of the same ids is idempotent).
    const result = await this.guard(async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await table.mergeInsert('id').whenNotMatchedInsertAll().execute(data);
        } catch (err) {
          if (attempt >= 5 || !/conflict|retr|timed? ?out|too many concurrent/i.test(errorText(err))) throw err;
        }
      }
    }, name);
    const added = result.numInsertedRows;
    await this.recordFields(table, schema, unique, name);
    if (this.autoIndexThreshold > 0) await this.autoIndex(table, name);
    return { added, skipped: items.length - added };
  }

  async get(name: string, ids: string[], withVectors = true): Promise<StoredItem[]> {
    const table = await this.table(name);
    const byId = new Map<string, StoredItem>();
    const columns = withVectors ? ['id', 'source', 'metadata', 'vector'] : ['id', 'source', 'metadata'];
    for (let i = 0; i < ids.length; i += IN_CHUNK) {
      const chunk = ids.slice(i, i + IN_CHUNK);
      const result = await this.guard(() => table.query().where(idIn(chunk)).select(columns).toArrow(), name);
      for (const row of readRows(result)) byId.set(row.item.id, toItem(row, withVectors));
    }
    return ids.flatMap((id) => {
      const item = byId.get(id);
      return item ? [item] : [];
    });
  }

  async search(name: string, vector: Float32Array, options: SearchOptions): Promise<Hit[]> {
    const table = await this.table(name);
    const { spec, schema } = await this.specOf(table, name);
    checkQuery(vector, spec.dim, options);
    const where = options.filter ? lanceFilter(options.filter) : undefined;
    if (options.filter) await this.checkFilterFields(table, schema, options.filter, name);
    const columns = ['id', 'source', 'metadata', 'vector', '_distance'];
    const withVectors = options.withVectors ?? false;
    const finish = (hits: Hit[]): Hit[] =>
      withVectors
        ? hits
        : hits.map(({ vector: _vector, ...hit }) => {
            return hit;
          });
    const hasIndex =
      !options.exact && (await this.guard(() => table.listIndices(), name)).some((i) => i.columns.includes('vector'));
    if (hasIndex) {
      const rows = await this.guard(async () => {
        let query = table
          .query()
          .nearestTo(vector)
          .distanceType('cosine')
          .nprobes(LANCE_ANN.nprobes)
          .limit(options.k)
          .select(columns);
        if (LANCE_ANN.index === 'ivf_pq') query = query.refineFactor(LANCE_ANN.refineFactor);
        if (where) query = query.where(where);
        return readRows(await query.toArrow());
      }, name);
      // A selective filter can leave the probed partitions short of k: the exact path guarantees k.
      if (rows.length >= options.k || !where) return finish(rescore(vector, rows, options.k));
    }
    const hits = await exactTopK(vector, options.k, (n) =>
      this.guard(async () => {
        let query = table.query().nearestTo(vector).distanceType('cosine').bypassVectorIndex().limit(n).select(columns);
        if (where) query = query.where(where);
        return readRows(await query.toArrow());
      }, name),
    );
    return finish(hits);
  }

  async optimize(name: string): Promise<CollectionInfo> {
    const table = await this.table(name);
    const { spec } = await this.specOf(table, name);
    await this.guard(async () => {
      const count = await table.countRows();
      if (count >= MIN_ANN_ROWS) await this.buildIndex(table, spec.dim, count);
      await table.createIndex('id', { config: lancedb.Index.btree(), replace: true });
      await table.optimize();
    }, name);
    return this.info(name);
  }

  async *scan(name: string, batchSize: number): AsyncIterable<StoredItem[]> {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new BadRequestError('batchSize must be ≥ 1');
    const table = await this.table(name);
    // One query reads one table version: a consistent snapshot, each item once.
    const stream = table.query().select(['id', 'source', 'metadata', 'vector']);
    let pending: StoredItem[] = [];
    const iterator = stream[Symbol.asyncIterator]();
    for (;;) {
      const next = await this.guard(() => iterator.next(), name);
      if (next.done) break;
      for (const row of readRows(new arrow.Table([next.value]))) {
        pending.push(toItem(row, true));
        if (pending.length === batchSize) {
          yield pending;
          pending = [];
        }
      }
    }
    if (pending.length) yield pending;
  }

  async close(): Promise<void> {
    for (const table of this.tables.values()) table.close();
    this.tables.clear();
    this.db.close();
  }

  // ---- internals ----

  private async buildIndex(table: lancedb.Table, dim: number, count: number): Promise<void> {
    const numPartitions = LANCE_ANN.partitions(count);
    const config =
      LANCE_ANN.index === 'ivf_flat'
        ? lancedb.Index.ivfFlat({ distanceType: 'cosine', numPartitions })
        : lancedb.Index.ivfPq({ distanceType: 'cosine', numPartitions, numSubVectors: LANCE_ANN.subVectors(dim) });
    await table.createIndex('vector', { config, replace: true });
  }

  private async autoIndex(table: lancedb.Table, name: string): Promise<void> {
    await this.guard(async () => {
      const indices = await table.listIndices();
      if (indices.some((i) => i.columns.includes('vector'))) return;
      const count = await table.countRows();
      if (count < Math.max(this.autoIndexThreshold, MIN_ANN_ROWS)) return;
      const { spec } = await this.specOf(table, name);
      await this.buildIndex(table, spec.dim, count);
      await table.createIndex('id', { config: lancedb.Index.btree(), replace: true });
    }, name);
  }

  private async recordFields(
    table: lancedb.Table,
    schema: import('apache-arrow').Schema,
    items: StoredItem[],
    name: string,
  ): Promise<void> {
    const known = schema.fields.find((f) => f.name === 'metadata')?.metadata ?? new Map<string, string>();
    const fresh = metadataKeys(items).filter((k) => !known.has(FIELD_PREFIX + k));
    if (fresh.length === 0) return;
    const metadata = Object.fromEntries(fresh.map((k) => [FIELD_PREFIX + k, '1']));
    // Merged key by key into the field's metadata; a concurrent writer's keys are kept.
    await this.guard(async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          await table.updateFieldMetadata([{ path: 'metadata', metadata }]);
          return;
        } catch (err) {
          if (attempt >= 5 || !/conflict|retry/i.test(errorText(err))) throw err;
        }
      }
    }, name);
  }

  private async checkFilterFields(
    table: lancedb.Table,
    schema: import('apache-arrow').Schema,
    filter: Record<string, FilterValue>,
    name: string,
  ): Promise<void> {
    const known = schema.fields.find((f) => f.name === 'metadata')?.metadata ?? new Map<string, string>();
    const missing: string[] = [];
    for (const field of Object.keys(filter)) {
      if (known.has(FIELD_PREFIX + field)) continue;
      // Not recorded (e.g. an older writer): ask the data before calling the field unknown.
      const hit = await this.guard(
        () =>
          table
            .query()
            .where(`json_exists(metadata, ${jsonPath(field)})`)
            .select(['id'])
            .limit(1)
            .toArray(),
        name,
      );
      if (hit.length === 0) missing.push(field);
    }
    if (missing.length) throw unknownFieldError(missing);
  }

  private async specOf(
    table: lancedb.Table,
    name: string,
  ): Promise<{ schema: import('apache-arrow').Schema; spec: StoredSpec }> {
    const schema = await this.guard(() => table.schema(), name);
    return { schema, spec: readSpec(name, schema) };
  }

  private async table(name: string): Promise<lancedb.Table> {
    checkName(name);
    const cached = this.tables.get(name);
    if (cached) return cached;
    try {
      const table = await this.db.openTable(name);
      this.tables.set(name, table);
      return table;
    } catch (err) {
      await this.checkDir();
      if (/not found|does not exist/i.test(errorText(err))) throw new CollectionNotFoundError(name);
      throw this.unavailable(err);
    }
  }

  private forget(name: string): void {
    this.tables.get(name)?.close();
    this.tables.delete(name);
  }

  private async checkDir(): Promise<void> {
    let ok = false;
    try {
      ok = (await stat(this.dir)).isDirectory();
    } catch (cause) {
      throw new StoreUnavailableError(this.description, `the directory cannot be read (${errorText(cause)})`, {
        cause,
      });
    }
    if (!ok) throw new StoreUnavailableError(this.description, 'not a directory');
  }

  /** Runs a LanceDB call; errors that are not ours become 404 (table gone) or 503 (store unreachable). */
  private async guard<T>(fn: () => Promise<T>, name?: string): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof AppError) throw err;
      if (name !== undefined) this.forget(name);
      await this.checkDir();
      const text = errorText(err);
      if (name !== undefined && /was not found|not found: .*\.lance|does not exist/i.test(text)) {
        throw new CollectionNotFoundError(name);
      }
      if (/invalid user input|schema error|invalid input/i.test(text)) {
        throw new AppError('store_error', `LanceDB refused the request: ${text}`, { cause: err });
      }
      throw this.unavailable(err);
    }
  }

  private unavailable(cause: unknown): StoreUnavailableError {
    return new StoreUnavailableError(this.description, errorText(cause), { cause });
  }
}

/** LanceDB's `IvfPq` → `ivf_pq`. */
function snake(type: string): string {
  return type.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function vectorType(dim: number): import('apache-arrow').FixedSizeList {
  return new arrow.FixedSizeList(dim, new arrow.Field('item', new arrow.Float32(), true));
}

function collectionSpec(name: string, spec: StoredSpec): CollectionSpec {
  return {
    name,
    model: spec.model,
    modelSha256: spec.modelSha256,
    modality: spec.modality,
    dim: spec.dim,
    ...(spec.root !== undefined ? { root: spec.root } : {}),
  };
}

function readSpec(name: string, schema: import('apache-arrow').Schema): StoredSpec {
  const text = schema.metadata.get(SPEC_KEY);
  if (text === undefined) throw new CollectionNotFoundError(name); // a LanceDB table, not a collection
  return JSON.parse(text) as StoredSpec;
}

/** Items → an Arrow table in the collection's own schema (the vectors copied into one buffer). */
function toArrow(
  items: StoredItem[],
  dim: number,
  stored: import('apache-arrow').Schema,
): import('apache-arrow').Table {
  const schema = new arrow.Schema(
    stored.fields.map((f) =>
      f.name === 'metadata'
        ? new arrow.Field('metadata', new arrow.Utf8(), true, new Map([['ARROW:extension:name', 'arrow.json']]))
        : f.name === 'id'
          ? new arrow.Field('id', new arrow.Utf8(), false)
          : f,
    ),
  );
  const floats = new Float32Array(items.length * dim);
  items.forEach((item, i) => floats.set(item.vector, i * dim));
  const children = schema.fields.map((f) => {
    switch (f.name) {
      case 'id':
        return arrow.vectorFromArray(
          items.map((i) => i.id),
          new arrow.Utf8(),
        ).data[0]!;
      case 'source':
        return arrow.vectorFromArray(
          items.map((i) => i.source),
          new arrow.Utf8(),
        ).data[0]!;
      case 'metadata':
        return arrow.vectorFromArray(
          items.map((i) => (i.metadata === undefined ? null : JSON.stringify(i.metadata))),
          new arrow.Utf8(),
        ).data[0]!;
      default: {
        const child = arrow.makeData({ type: new arrow.Float32(), length: floats.length, data: floats });
        return arrow.makeData({ type: vectorType(dim), length: items.length, nullCount: 0, child });
      }
    }
  });
  const struct = arrow.makeData({
    type: new arrow.Struct(schema.fields),
    length: items.length,
    nullCount: 0,
    children,
  });
  return new arrow.Table([new arrow.RecordBatch(schema, struct)]);
}

/** Arrow rows → items with their vectors (copied out of the batch) and `_distance` where present. */
function readRows(table: import('apache-arrow').Table): Row[] {
  const rows: Row[] = [];
  for (const batch of table.batches) {
    const ids = batch.getChild('id');
    const sources = batch.getChild('source');
    const metadata = batch.getChild('metadata');
    const distances = batch.getChild('_distance');
    const vectors = batch.getChild('vector');
    const data = vectors?.data[0];
    const child = data?.children[0];
    const dim = data ? (data.type as import('apache-arrow').FixedSizeList).listSize : 0;
    for (let i = 0; i < batch.numRows; i++) {
      const meta = metadata?.get(i) as string | null | undefined;
      let vector = new Float32Array(0);
      if (data && child) {
        const start = child.offset + (data.offset + i) * dim;
        vector = (child.values as Float32Array).slice(start, start + dim);
      }
      rows.push({
        item: {
          id: String(ids?.get(i)),
          source: String(sources?.get(i) ?? ''),
          ...(meta != null ? { metadata: JSON.parse(meta) as Record<string, unknown> } : {}),
          score: 0,
          vector,
        },
        distance: Number(distances?.get(i) ?? 0),
        vector,
      });
    }
  }
  return rows;
}

function toItem(row: Row, withVector: boolean): StoredItem {
  const { id, source, metadata } = row.item;
  return { id, source, ...(metadata ? { metadata } : {}), vector: withVector ? row.vector : new Float32Array(0) };
}
