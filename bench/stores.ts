// Collection store benchmark: ITC search latency (exact and ANN), ANN recall@10 against exact, insert
// throughput, index build time and RSS, at several collection sizes, for embedded LanceDB and (with
// --pg-url) PostgreSQL + pgvector. Synthetic unit vectors of dim 256 drawn around 1000 random centres
// (so ANN partitions mean something, as with real embeddings); queries are fresh draws.
//
//   npm run build:bench && node build/bench/stores.js [--sizes 10000,100000,1000000]
//     [--pg-url postgresql://…] [--pg-sizes 10000,100000] [--queries 100] [--dir /tmp/albef-bench-stores]
//     [--out bench/results/stores.json]

import { execFileSync } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { cpuFeatures } from '../src/core/cpu-features.js';
import { LANCE_ANN } from '../src/retrieval/lance-store.js';
import { openStore } from '../src/retrieval/open-store.js';
import { PG_ANN } from '../src/retrieval/pg-store.js';
import type { CollectionStore, StoredItem } from '../src/retrieval/store.js';
import { percentile, round } from './stats.js';
import { DIM, gaussian, pick } from './synthetic-vectors.js';

const K = 10;

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10000,100000,1000000' },
    'pg-url': { type: 'string' },
    'pg-sizes': { type: 'string' },
    queries: { type: 'string', default: '100' },
    dir: { type: 'string', default: '/tmp/albef-bench-stores' },
    out: { type: 'string', default: 'bench/results/stores.json' },
    /** Keep the PostgreSQL collections (for bench/stores-sweep.ts). */
    keep: { type: 'boolean', default: false },
  },
});

interface SizeResult {
  store: string;
  size: number;
  queries: number;
  insert_items_per_s: number;
  exact_p50_ms: number;
  exact_p95_ms: number;
  filtered_exact_p50_ms: number;
  index: string;
  index_build_s: number;
  ann_p50_ms: number;
  ann_p95_ms: number;
  ann_recall_at_10: number;
  rss_mb: number;
  /** PostgreSQL only: the server processes' RSS (shared buffers counted once per process touching them). */
  server_rss_mb?: number;
}

/** The local PostgreSQL server's resident memory (MB), when it runs here. */
function postgresRss(): number | undefined {
  try {
    const kb = execFileSync('ps', ['-C', 'postgres', '-o', 'rss='], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .reduce((n, line) => n + Number(line.trim()), 0);
    return kb ? round(kb / 1024, 0) : undefined;
  } catch {
    return undefined;
  }
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await fn();
  return [r, performance.now() - t0];
}

async function benchSize(store: CollectionStore, kind: string, size: number, queries: Float32Array[]) {
  const name = `bench-${size}`;
  await store.drop(name).catch(() => {});
  await store.create({ name, model: 'bench', modelSha256: '0'.repeat(64), modality: 'image', dim: DIM });
  const rand = gaussian(size);
  const batch = 1000;
  let insertMs = 0;
  for (let i = 0; i < size; i += batch) {
    const items: StoredItem[] = [];
    for (let j = i; j < Math.min(size, i + batch); j++) {
      items.push({ id: `img-${j}`, source: `images/${j}.jpg`, metadata: { shard: j % 100 }, vector: pick(rand) });
    }
    insertMs += (await timed(() => store.add(name, items)))[1];
    if ((i / batch) % 100 === 99) console.error(`${kind} ${size}: inserted ${i + batch}`);
  }
  const search = async (exact: boolean, filter?: Record<string, number>) => {
    const times: number[] = [];
    const results: string[][] = [];
    await store.search(name, queries[0]!, { k: K, exact, ...(filter ? { filter } : {}) }); // warm-up
    for (const q of queries) {
      const [hits, ms] = await timed(() => store.search(name, q, { k: K, exact, ...(filter ? { filter } : {}) }));
      times.push(ms);
      results.push(hits.map((h) => h.id));
    }
    times.sort((a, b) => a - b);
    return { p50: percentile(times, 50), p95: percentile(times, 95), results };
  };
  const exact = await search(true);
  const filtered = await search(true, { shard: 7 });
  console.error(`${kind} ${size}: exact p50 ${round(exact.p50)} ms; building the index`);
  const [info, buildMs] = await timed(() => store.optimize(name));
  const ann = await search(false);
  let overlap = 0;
  ann.results.forEach((ids, i) => {
    const truth = new Set(exact.results[i]);
    overlap += ids.filter((id) => truth.has(id)).length;
  });
  const result: SizeResult = {
    store: kind,
    size,
    queries: queries.length,
    insert_items_per_s: round(size / (insertMs / 1000), 0),
    exact_p50_ms: round(exact.p50),
    exact_p95_ms: round(exact.p95),
    filtered_exact_p50_ms: round(filtered.p50),
    index: info.index,
    index_build_s: round(buildMs / 1000, 1),
    ann_p50_ms: round(ann.p50),
    ann_p95_ms: round(ann.p95),
    ann_recall_at_10: round(overlap / (queries.length * K), 3),
    rss_mb: round(process.memoryUsage().rss / 2 ** 20, 0),
    ...(kind === 'postgres' ? { server_rss_mb: postgresRss() } : {}),
  };
  console.error(JSON.stringify(result));
  return result;
}

async function main(): Promise<void> {
  const queryRand = gaussian(99);
  const queries = Array.from({ length: Number(args.queries) }, () => pick(queryRand));
  const out = path.resolve(args.out);
  let previous: { results?: SizeResult[] } = {};
  try {
    previous = JSON.parse(await readFile(out, 'utf8')) as { results?: SizeResult[] };
  } catch {
    // first run
  }
  const results: SizeResult[] = previous.results ?? [];
  const save = async () => {
    const cpu = cpuFeatures();
    await mkdir(path.dirname(out), { recursive: true });
    await writeFile(
      out,
      JSON.stringify(
        {
          what: 'collection store search latency, recall and build costs; see docs/stores.md',
          cpu,
          node: process.version,
          dim: DIM,
          k: K,
          queries: queries.length,
          settings: {
            lancedb: {
              index: 'IVF_PQ, cosine',
              partitions: 'round(sqrt(n))',
              sub_vectors: LANCE_ANN.subVectors(DIM),
              nprobes: LANCE_ANN.nprobes,
              refine_factor: LANCE_ANN.refineFactor,
            },
            postgres: { index: 'HNSW vector_cosine_ops', ...PG_ANN, iterative_scan: 'relaxed_order' },
          },
          results,
        },
        null,
        2,
      ) + '\n',
    );
  };
  const record = async (r: SizeResult) => {
    const i = results.findIndex((x) => x.store === r.store && x.size === r.size);
    if (i >= 0) results.splice(i, 1, r);
    else results.push(r);
    await save();
  };

  const sizes = args.sizes.split(',').filter(Boolean).map(Number);
  if (sizes.length) {
    const dir = path.resolve(args.dir);
    await rm(dir, { recursive: true, force: true });
    const lance = await openStore(dir, { autoIndexThreshold: 0 });
    for (const size of sizes) await record(await benchSize(lance, 'lancedb', size, queries));
    await lance.close();
  }
  if (args['pg-url']) {
    const pg = await openStore(args['pg-url'], { autoIndexThreshold: 0 });
    for (const size of (args['pg-sizes'] ?? args.sizes).split(',').filter(Boolean).map(Number)) {
      await record(await benchSize(pg, 'postgres', size, queries));
      if (!args.keep) await pg.drop(`bench-${size}`);
    }
    await pg.close();
  } else {
    console.error('no --pg-url: PostgreSQL skipped');
  }
}

await main();
