// One indexing process for the concurrency test: creates the collection (as every shard's process
// does) and adds its share of ids in batches, starting at a common moment so the writes collide.
// argv: STORE COLLECTION START_MS FIRST LAST STEP; prints {"added","skipped"} as JSON.

import { openStore } from '../src/retrieval/open-store.js';
import type { StoredItem } from '../src/retrieval/store.js';

const [storeSpec, name, startAt, first, last, step] = process.argv.slice(2);
const dim = 8;
const store = await openStore(storeSpec);
const wait = Number(startAt) - Date.now();
if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
await store.create({ name: name!, model: 'm', modelSha256: 'c'.repeat(64), modality: 'text', dim });
const ids: string[] = [];
for (let i = Number(first); i <= Number(last); i += Number(step)) ids.push(`id-${i}`);
let added = 0;
let skipped = 0;
for (let i = 0; i < ids.length; i += 25) {
  const batch: StoredItem[] = ids.slice(i, i + 25).map((id) => ({
    id,
    source: id,
    metadata: { writer: process.pid },
    vector: Float32Array.from({ length: dim }, (_, j) => (j === 0 ? 1 : Number(id.slice(3)) % (j + 2))),
  }));
  const result = await store.add(name!, batch);
  added += result.added;
  skipped += result.skipped;
}
await store.close();
process.stdout.write(JSON.stringify({ added, skipped }) + '\n');
