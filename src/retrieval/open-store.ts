// Picks the store from the `--store` value: a postgres:// or postgresql:// URL is PostgreSQL with
// pgvector, anything else a directory for embedded LanceDB.

import { LanceStore } from './lance-store.js';
import { PgStore, type PgStoreOptions } from './pg-store.js';
import type { CollectionStore } from './store.js';

export const DEFAULT_STORE = './collections';

export function isPostgresUrl(spec: string): boolean {
  return /^postgres(ql)?:\/\//i.test(spec);
}

/** Opens a store; the PostgreSQL one connects lazily (its first call, or `ping()`, reaches the server). */
export async function openStore(spec: string = DEFAULT_STORE, options: PgStoreOptions = {}): Promise<CollectionStore> {
  if (isPostgresUrl(spec)) return new PgStore(spec, options);
  return LanceStore.open(spec, options);
}
