// Search over collections against the official Retrieval.py evaluation() on albef-tiny-a
// (retrieval_golden_albef-tiny-a.json, k_test 12): ann.json indexed into an image collection and a
// caption collection, then over real HTTP for every caption a text→image /v1/search with rerank 12
// gives exactly the golden t2i_topk candidates in the order of the golden ITM match logits
// (|Δ| ≤ 1e-3), every image an image→text search the golden i2t_topk likewise, and ITC-only searches
// rank every item in the order of the golden cosines (|Δ| ≤ 1e-5). On both stores.

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { FIXTURES } from '../../kit/golden.js';
import { startPostgres } from '../../kit/postgres.js';
import { cleanupTinyModel, postJson, startServer, type TestServer } from '../../kit/server.js';
import { readAnnotations, resolveImagePaths } from '../../src/retrieval/annotations.js';
import { openStore } from '../../src/retrieval/open-store.js';
import { annotationItems, indexItems } from '../../src/service/indexer.js';

const DIR = join(FIXTURES, 'retrieval');
const g = JSON.parse(await readFile(join(DIR, 'retrieval_golden_albef-tiny-a.json'), 'utf8')) as {
  k_test: number;
  images: string[];
  itc: number[][];
  i2t_topk: number[][];
  t2i_topk: number[][];
  i2t_itm: number[][];
  t2i_itm: number[][];
};
const ann = await readAnnotations(join(DIR, 'ann.json'));
const K = g.k_test;
const scratch = await mkdtemp(join(tmpdir(), 'albef-search-'));
const pg = await startPostgres();
t.teardown(async () => {
  await pg.close();
  await rm(scratch, { recursive: true, force: true });
  await cleanupTinyModel();
});

interface Hit {
  id: string;
  score: number;
  itc: number;
  itm_logits?: number[];
}

/** The results come in the golden order: each no better than the one before it by more than `tol`. */
function checkOrder(t: Test, hits: Hit[], golden: (h: Hit) => number, tol: number, what: string): void {
  let worst = 0;
  for (let j = 1; j < hits.length; j++) worst = Math.max(worst, golden(hits[j]!) - golden(hits[j - 1]!));
  t.ok(worst <= tol, `${what}: in the golden order (largest inversion ${worst.toExponential(2)})`);
}

async function searchAll(t: Test, server: TestServer): Promise<void> {
  const search = async (body: object) => {
    const res = await postJson(`${server.url}/v1/search`, body);
    if (res.status !== 200) throw new Error(JSON.stringify(res.json));
    return res.json as { results: Hit[]; usage: { pairs: number } };
  };
  let itm = 0;
  let itc = 0;
  for (let q = 0; q < ann.texts.length; q++) {
    const golden = new Map(g.t2i_topk[q]!.map((i, j) => [g.images[i]!, g.t2i_itm[q]![j]!]));
    const r = await search({ collection: 'pics', query: ann.rawTexts[q], top_k: K, rerank: K });
    t.same(r.results.map((h) => h.id).sort(), [...golden.keys()].sort(), `caption ${q}: the golden candidates`);
    for (const h of r.results) {
      itm = Math.max(itm, Math.abs(h.itm_logits![1]! - golden.get(h.id)!));
      if (h.score !== h.itm_logits![1]) t.fail(`caption ${q}: the score is the match logit`);
    }
    checkOrder(t, r.results, (h) => golden.get(h.id)!, 1e-3, `caption ${q}, re-ranked`);
    t.equal(r.usage.pairs, K);
    const all = await search({ collection: 'pics', query: ann.rawTexts[q], top_k: g.images.length });
    const cos = (h: Hit) => g.itc[g.images.indexOf(h.id)]![q]!;
    for (const h of all.results) itc = Math.max(itc, Math.abs(h.itc - cos(h)), Math.abs(h.score - cos(h)));
    checkOrder(t, all.results, cos, 1e-5, `caption ${q}, ITC only`);
  }
  for (let i = 0; i < g.images.length; i++) {
    const golden = new Map(g.i2t_topk[i]!.map((q, j) => [String(q), g.i2t_itm[i]![j]!]));
    const image = (await readFile(join(DIR, g.images[i]!))).toString('base64');
    const r = await search({ collection: 'pics-texts', query: { image }, top_k: K, rerank: K });
    t.same(r.results.map((h) => h.id).sort(), [...golden.keys()].sort(), `image ${i}: the golden candidates`);
    for (const h of r.results) itm = Math.max(itm, Math.abs(h.itm_logits![1]! - golden.get(h.id)!));
    checkOrder(t, r.results, (h) => golden.get(h.id)!, 1e-3, `image ${i}, re-ranked`);
    const all = await search({ collection: 'pics-texts', query: { image }, top_k: ann.texts.length });
    const cos = (h: Hit) => g.itc[i]![Number(h.id)]!;
    for (const h of all.results) itc = Math.max(itc, Math.abs(h.itc - cos(h)));
    checkOrder(t, all.results, cos, 1e-5, `image ${i}, ITC only`);
  }
  t.ok(itm <= 1e-3, `ITM match logits within 1e-3 of the official ones (max |Δ| ${itm.toExponential(2)})`);
  t.ok(itc <= 1e-5, `cosines within 1e-5 of the official sims_matrix (max |Δ| ${itc.toExponential(2)})`);
}

for (const [name, spec] of [
  ['LanceDB', join(scratch, 'lance')],
  ['PostgreSQL + pgvector', pg.url],
] as const) {
  t.test(`${name}: ann.json indexed, every golden query answered as Retrieval.py ranks`, async (t) => {
    const server = await startServer({ store: spec, maxItems: 64 });
    t.teardown(() => server.close());
    const embedder = server.app.service.requireEmbedder();
    const model = embedder.model();
    const store = await openStore(spec);
    t.teardown(() => store.close());
    const items = annotationItems(ann, resolveImagePaths(DIR, ann.images));
    const options = { batch: 16, captionCleanup: true };
    const images = await indexItems(embedder, model, store, items.images, {
      ...options,
      collection: 'pics',
      modality: 'image',
      root: DIR,
    });
    const texts = await indexItems(embedder, model, store, items.texts, {
      ...options,
      collection: 'pics-texts',
      modality: 'text',
    });
    t.same([images.added, texts.added, images.failed, texts.failed], [24, 60, [], []]);
    await searchAll(t, server);
  });
}
