// `albef-embed collections list | info NAME | drop NAME | optimize NAME` and `albef-embed export`:
// the collections of a store, as JSON on stdout (the shape GET /v1/collections answers), and a
// collection written out for bulk loads elsewhere.

import { UsageError } from '../core/errors.js';
import { exportCollection, type ExportFormat } from '../retrieval/export.js';
import { openStore } from '../retrieval/open-store.js';
import type { CollectionStore } from '../retrieval/store.js';
import { describeCollection } from '../http/routes/collections.js';
import { log, oneOf, outputFile, parse } from './args.js';
import { storeSpec, STORE_OPTION_HELP } from './store-option.js';

export const COLLECTIONS_USAGE = `
Usage: albef-embed collections [--store S] list | info NAME | drop NAME | optimize NAME

  list           every collection: name, model, modality, count, dim, index, store, metadata_fields (JSON)
  info NAME      one collection, with its metadata fields and root (JSON)
  drop NAME      delete it and its items
  optimize NAME  build (or refresh) its ANN index and compact it; small collections are searched
                 exactly without one, and an index is built by itself past 20 000 items

Options:
${STORE_OPTION_HELP}
`;

export const EXPORT_USAGE = `
Usage: albef-embed export --collection NAME [--store S] --format parquet|jsonl --out FILE

Writes every item of a collection for bulk loads into other vector databases: ids, sources, metadata
and vectors. Parquet: columns id, source, metadata (JSON text) and vector (a fixed-size list of
float32), the collection's model, modality and tower fingerprint in the file's key-value metadata.
JSON lines: {"id", "source", "metadata", "vector"}.

Options:
  --collection NAME    the collection
  --format F           parquet | jsonl
  --out FILE           the file to write (its folder is created)
${STORE_OPTION_HELP}
`;

async function withStore<T>(spec: string, run: (store: CollectionStore) => Promise<T>): Promise<T> {
  const store = await openStore(spec);
  try {
    return await run(store);
  } finally {
    await store.close();
  }
}

export async function collectionsCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { store: { type: 'string' } }, COLLECTIONS_USAGE, { positionals: 2 });
  const [action = 'list', name] = positionals;
  if (!['list', 'info', 'drop', 'optimize'].includes(action))
    throw new UsageError(
      `unknown action ${JSON.stringify(action)}: list, info, drop or optimize\n\n${COLLECTIONS_USAGE.trim()}`,
    );
  if (action !== 'list' && !name) throw new UsageError(`collections ${action} needs a collection name`);
  if (action === 'list' && name) throw new UsageError(`collections list takes no name (got ${JSON.stringify(name)})`);
  const out = (v: unknown): void => void process.stdout.write(JSON.stringify(v, null, 2) + '\n');
  await withStore(storeSpec(values.store), async (store) => {
    switch (action) {
      case 'list':
        return out((await store.list()).map(describeCollection));
      case 'info': {
        const c = await store.info(name!);
        return out({
          ...describeCollection(c),
          model_sha256: c.modelSha256,
          root: c.root,
          created_at: c.createdAt,
        });
      }
      case 'drop':
        await store.drop(name!);
        return log(`dropped ${name} (${store.description})`);
      default: {
        const started = Date.now();
        const c = await store.optimize(name!);
        log(`${name}: index ${c.index} over ${c.count} items in ${((Date.now() - started) / 1000).toFixed(1)} s`);
        return out(describeCollection(c));
      }
    }
  });
}

export async function exportCommand(argv: string[]): Promise<void> {
  const { values } = parse(
    argv,
    { collection: { type: 'string' }, store: { type: 'string' }, format: { type: 'string' }, out: { type: 'string' } },
    EXPORT_USAGE,
  );
  if (!values.collection || !values.format || !values.out)
    throw new UsageError(`give --collection, --format and --out\n\n${EXPORT_USAGE.trim()}`);
  const format = oneOf(values.format, '--format', ['parquet', 'jsonl'] as const) as ExportFormat;
  const out = await outputFile(values.out);
  await withStore(storeSpec(values.store), async (store) => {
    const n = await exportCollection(store, values.collection!, format, out);
    log(`${out}: ${n} items of ${values.collection} (${format})`);
  });
}
