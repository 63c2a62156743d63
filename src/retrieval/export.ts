// A collection out of its store, for bulk loads into other vector databases: JSON lines
// ({"id", "source", "metadata", "vector"}) or Parquet (id, source and metadata as strings, vector as a
// fixed-size list of float32; the collection's model, modality and tower fingerprint in the file's
// key-value metadata). Written a batch at a time, so a large collection never sits in memory whole.
// Parquet through parquet-wasm (arrow-rs compiled to WebAssembly): apache-arrow's JavaScript writes
// Arrow IPC only.

import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as arrow from 'apache-arrow';
import type { CollectionInfo, CollectionStore, StoredItem } from './store.js';

export type ExportFormat = 'parquet' | 'jsonl';

// The package's Node build is CommonJS with its WebAssembly loaded synchronously.
type ParquetWasm = typeof import('parquet-wasm/node');
const parquetWasm = (): ParquetWasm => createRequire(import.meta.url)('parquet-wasm/node') as ParquetWasm;

const BATCH = 8192;

/** Writes every item of `name` to `out` (atomically: a failed export leaves no partial file); returns the count. */
export async function exportCollection(
  store: CollectionStore,
  name: string,
  format: ExportFormat,
  out: string,
  onProgress?: (done: number, total: number) => void,
): Promise<number> {
  const info = await store.info(name);
  await mkdir(dirname(out), { recursive: true });
  const tmp = `${out}.part`;
  let done = 0;
  async function* batches(): AsyncGenerator<StoredItem[]> {
    for await (const batch of store.scan(name, BATCH)) {
      yield batch;
      done += batch.length;
      onProgress?.(done, info.count);
    }
  }
  try {
    if (format === 'jsonl') await writeJsonLines(batches(), tmp);
    else await writeParquet(batches(), info, tmp);
    await rename(tmp, out);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  return done;
}

async function writeJsonLines(batches: AsyncIterable<StoredItem[]>, file: string): Promise<void> {
  async function* lines(): AsyncGenerator<string> {
    for await (const batch of batches) {
      yield (
        batch
          .map((it) =>
            JSON.stringify({
              id: it.id,
              source: it.source,
              metadata: it.metadata ?? {},
              vector: Array.from(it.vector),
            }),
          )
          .join('\n') + '\n'
      );
    }
  }
  await pipeline(Readable.from(lines()), createWriteStream(file));
}

/** One Arrow record batch of items: strings, and the vectors as FixedSizeList<Float32>(dim). */
function recordBatch(items: StoredItem[], info: CollectionInfo): arrow.Table {
  const dim = info.dim;
  const flat = new Float32Array(items.length * dim);
  items.forEach((it, i) => flat.set(it.vector, i * dim));
  const child = arrow.makeData({ type: new arrow.Float32(), length: flat.length, nullCount: 0, data: flat });
  const vectorType = new arrow.FixedSizeList(dim, new arrow.Field('item', new arrow.Float32(), false));
  const vectors = arrow.makeVector(arrow.makeData({ type: vectorType, length: items.length, nullCount: 0, child }));
  const table = new arrow.Table({
    id: arrow.vectorFromArray(
      items.map((it) => it.id),
      new arrow.Utf8(),
    ),
    source: arrow.vectorFromArray(
      items.map((it) => it.source),
      new arrow.Utf8(),
    ),
    metadata: arrow.vectorFromArray(
      items.map((it) => JSON.stringify(it.metadata ?? {})),
      new arrow.Utf8(),
    ),
    vector: vectors,
  });
  const metadata = new Map([
    ['albef.collection', info.name],
    ['albef.model', info.model],
    ['albef.model_sha256', info.modelSha256],
    ['albef.modality', info.modality],
    ['albef.dim', String(dim)],
  ]);
  return new arrow.Table(new arrow.Schema(table.schema.fields, metadata), table.batches);
}

async function writeParquet(batches: AsyncIterable<StoredItem[]>, info: CollectionInfo, file: string): Promise<void> {
  const pq = parquetWasm();
  async function* wasmBatches(): AsyncGenerator<unknown> {
    let any = false;
    for await (const items of batches) {
      if (items.length === 0) continue;
      any = true;
      const ipc = arrow.tableToIPC(recordBatch(items, info), 'stream');
      for (const b of pq.Table.fromIPCStream(ipc).recordBatches()) yield b;
    }
    // An empty collection still gets a file with its schema.
    if (!any)
      for (const b of pq.Table.fromIPCStream(arrow.tableToIPC(recordBatch([], info), 'stream')).recordBatches())
        yield b;
  }
  const props = new pq.WriterPropertiesBuilder().setCompression(pq.Compression.ZSTD).build();
  const bytes = await pq.transformParquetStream(Readable.toWeb(Readable.from(wasmBatches())) as ReadableStream, props);
  await (bytes as ReadableStream<Uint8Array>).pipeTo(
    Writable.toWeb(createWriteStream(file)) as WritableStream<Uint8Array>,
  );
}
