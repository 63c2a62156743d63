// The measurement behind the shipped ANN settings: on a collection that bench/stores.ts left behind
// (bench-SIZE in --dir, or in PostgreSQL after `--keep`), builds each LanceDB index kind (or uses the
// index there) and tries query settings, printing build time, recall@10 against exact search and p50
// latency, all through the stores' own search path.
//
//   npm run build:bench && node build/bench/stores-sweep.js --size 100000 [--dir /tmp/albef-bench-stores]
//   node build/bench/stores-sweep.js --size 1000000 --pg-url postgresql://… --settings 100,200,400

import path from 'node:path';
import { parseArgs } from 'node:util';

import { LANCE_ANN } from '../src/retrieval/lance-store.js';
import { PG_ANN } from '../src/retrieval/pg-store.js';
import { openStore } from '../src/retrieval/open-store.js';
import { percentile, round } from './stats.js';
import { gaussian, pick } from './synthetic-vectors.js';

const { values: args } = parseArgs({
  options: {
    size: { type: 'string', default: '100000' },
    dir: { type: 'string', default: '/tmp/albef-bench-stores' },
    'pg-url': { type: 'string' },
    queries: { type: 'string', default: '100' },
    kinds: { type: 'string', default: 'ivf_pq:4,ivf_pq:8,ivf_flat' },
    /** Query settings to try, as probes/refine pairs: 48/20,64/40. */
    settings: { type: 'string' },
    /** Query the index the collection has instead of building each kind. */
    'no-build': { type: 'boolean', default: false },
  },
});

const pgUrl = args['pg-url'];
const store = await openStore(pgUrl ?? path.resolve(args.dir), { autoIndexThreshold: 0 });
const name = `bench-${args.size}`;
const rand = gaussian(99);
const queries = Array.from({ length: Number(args.queries) }, () => pick(rand));
const truth: Set<string>[] = [];
for (const q of queries) truth.push(new Set((await store.search(name, q, { k: 10, exact: true })).map((h) => h.id)));

if (pgUrl) {
  // HNSW: the index bench/stores.ts built; the settings are hnsw.ef_search values.
  for (const ef of (args.settings ?? '40,100,200,400').split(',').map(Number)) {
    PG_ANN.efSearch = ef;
    console.log(JSON.stringify({ size: Number(args.size), index: 'hnsw', ef_search: ef, ...(await measure()) }));
  }
}

async function measure(): Promise<{ recall_at_10: number; p50_ms: number; p95_ms: number }> {
  let hits = 0;
  const times: number[] = [];
  await store.search(name, queries[0]!, { k: 10 });
  for (const [i, q] of queries.entries()) {
    const t = performance.now();
    const ann = await store.search(name, q, { k: 10 });
    times.push(performance.now() - t);
    hits += ann.filter((h) => truth[i]!.has(h.id)).length;
  }
  times.sort((a, b) => a - b);
  return {
    recall_at_10: round(hits / (queries.length * 10), 3),
    p50_ms: round(percentile(times, 50)),
    p95_ms: round(percentile(times, 95)),
  };
}

for (const kind of pgUrl ? [] : args.kinds.split(',')) {
  const [index, dimsPerSub] = kind.split(':') as ['ivf_pq' | 'ivf_flat', string | undefined];
  LANCE_ANN.index = index;
  LANCE_ANN.subVectors = (dim) => dim / Number(dimsPerSub ?? 4);
  const t0 = performance.now();
  const info = args['no-build'] ? await store.info(name) : await store.optimize(name);
  const build = (performance.now() - t0) / 1000;
  const settings = args.settings
    ? args.settings.split(',').map((pair) => pair.split('/').map(Number))
    : index === 'ivf_pq'
      ? [
          [20, 10],
          [32, 20],
          [48, 20],
          [48, 40],
          [64, 40],
        ]
      : [
          [20, 1],
          [32, 1],
          [48, 1],
          [64, 1],
        ];
  for (const [nprobes, refine] of settings) {
    LANCE_ANN.nprobes = nprobes!;
    LANCE_ANN.refineFactor = refine!;
    const measured = await measure();
    console.log(
      JSON.stringify({
        size: Number(args.size),
        index: info.index,
        dims_per_sub_vector: index === 'ivf_pq' ? Number(dimsPerSub ?? 4) : undefined,
        build_s: args['no-build'] ? undefined : round(build, 1),
        nprobes,
        refine_factor: index === 'ivf_pq' ? refine : undefined,
        ...measured,
      }),
    );
  }
}
await store.close();
