// `--store` of the commands that work on collections: the flag, else ALBEF_STORE (as `serve` reads
// it), else ./collections.

import { DEFAULT_STORE } from '../retrieval/open-store.js';

export const STORE_OPTION_HELP = `  --store S            a directory (embedded LanceDB) or a postgres:// URL (PostgreSQL with pgvector);
                       default $ALBEF_STORE, else ${DEFAULT_STORE}`;

export const storeSpec = (flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string =>
  flag ?? (env.ALBEF_STORE || DEFAULT_STORE);
