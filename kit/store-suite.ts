// The behavioural suite every collection store must pass, run by one test file per store against the
// real thing (LanceDB in a temporary directory, PostgreSQL + pgvector over TCP). Expected scores are
// computed here in float64 from integer-valued vectors, not taken from the store.

import type { Test } from 'tap';

import type { CollectionSpec, CollectionStore, StoredItem } from '../src/retrieval/store.js';

export const SHA_A = 'a'.repeat(64);
export const SHA_B = 'b'.repeat(64);
const DIM = 8;

/** Deterministic integers in -3..3 (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function cos64(a: number[], b: number[]): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  a.forEach((x, i) => {
    dot += x * b[i]!;
    na += x * x;
    nb += b[i]! * b[i]!;
  });
  return dot / Math.sqrt(na * nb);
}

interface Fixture {
  ints: Map<string, number[]>;
  items: StoredItem[];
}

/** 40 items with small-integer vectors; metadata with strings, numbers, booleans; two exact ties. */
function fixture(): Fixture {
  const rand = prng(7);
  const ints = new Map<string, number[]>();
  const items: StoredItem[] = [];
  for (let i = 0; i < 40; i++) {
    let v: number[];
    do v = Array.from({ length: DIM }, () => Math.floor(rand() * 7) - 3);
    while (v.every((x) => x === 0));
    const id = `item-${String(i).padStart(2, '0')}`;
    ints.set(id, v);
    const metadata =
      i % 10 === 9
        ? undefined
        : { color: ['red', 'green', 'blue'][i % 3]!, n: i % 5, even: i % 2 === 0, label: i === 4 ? '3' : `L${i}` };
    items.push({ id, source: `images/${id}.jpg`, ...(metadata ? { metadata } : {}), vector: Float32Array.from(v) });
  }
  // The query's direction exactly, twice: a tie at the top, broken by id.
  for (const id of ['tie-b', 'tie-a']) {
    const v = [3, 1, 0, 0, -1, 0, 2, 0];
    ints.set(id, v);
    items.push({ id, source: id, metadata: { color: 'red', quote: 'it\'s \\ "odd"' }, vector: Float32Array.from(v) });
  }
  return { ints, items };
}

const QUERY = [3, 1, 0, 0, -1, 0, 2, 0];

function expectedOrder(f: Fixture, keep: (item: StoredItem) => boolean = () => true): { id: string; score: number }[] {
  return f.items
    .filter(keep)
    .map((item) => ({ id: item.id, score: cos64(QUERY, f.ints.get(item.id)!) }))
    .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

const spec = (name: string, over: Partial<CollectionSpec> = {}): CollectionSpec => ({
  name,
  model: 'albef-tiny',
  modelSha256: SHA_A,
  modality: 'image',
  dim: DIM,
  root: '/data/images',
  ...over,
});

export function storeSuite(t: Test, open: () => Promise<CollectionStore>): void {
  let store: CollectionStore;
  const f = fixture();

  t.before(async () => {
    store = await open();
  });
  t.teardown(async () => {
    await store.close();
  });

  void t.test('create, idempotent create, conflicting create, bad names', async (t) => {
    const info = await store.create(spec('photos'));
    t.match(info, { name: 'photos', model: 'albef-tiny', modelSha256: SHA_A, modality: 'image', dim: DIM, count: 0 });
    t.equal(info.index, 'none');
    t.equal(info.root, '/data/images');
    t.equal(info.store, store.description);
    const again = await store.create(spec('photos'));
    t.equal(again.createdAt, info.createdAt, 'the same collection, not a new one');
    t.same(await store.spec('photos'), spec('photos'), 'spec: what it was created with, nothing more');
    await t.rejects(store.create(spec('photos', { modelSha256: SHA_B })), { code: 'collection_conflict' });
    await t.rejects(store.create(spec('photos', { dim: 16 })), { code: 'collection_conflict' });
    await t.rejects(store.create(spec('Photos')), { code: 'invalid_collection_name' });
    await t.rejects(store.create(spec('a b')), { code: 'invalid_collection_name' });
    await t.rejects(store.create(spec("x'; drop table y; --")), { code: 'invalid_collection_name' });
  });

  void t.test('add skips stored and repeated ids; present; count', async (t) => {
    const first = f.items.slice(0, 30);
    t.same(await store.add('photos', first), { added: 30, skipped: 0 });
    const rest = [...f.items.slice(20), f.items[35]!]; // 10 stored, 12 new, one repeated
    t.same(await store.add('photos', rest), { added: 12, skipped: 11 });
    t.same(await store.add('photos', f.items.slice(0, 5)), { added: 0, skipped: 5 }, 'a rerun resumes');
    t.equal((await store.info('photos')).count, f.items.length);
    const asked = ['item-03', 'nope', 'tie-a', "it's"];
    t.same([...(await store.present('photos', asked))].sort(), ['item-03', 'tie-a']);
    t.same([...(await store.present('photos', []))], []);
    const info = await store.info('photos');
    t.same(info.metadataFields, ['color', 'even', 'label', 'n', 'quote']);
  });

  void t.test('bad items are refused whole, with the index of the first', async (t) => {
    const good = { id: 'fresh', source: 's', vector: new Float32Array(DIM) };
    for (const metadata of [[1, 2], 'text', 42, null]) {
      await t.rejects(
        store.add('photos', [
          good,
          { id: 'bad', source: 's', metadata: metadata as never, vector: new Float32Array(DIM) },
        ]),
        { code: 'invalid_metadata', index: 1 },
      );
    }
    await t.rejects(store.add('photos', [{ ...good, vector: new Float32Array(DIM + 1) }]), {
      code: 'dimension_mismatch',
    });
    await t.rejects(store.add('photos', [{ ...good, vector: Float32Array.from({ length: DIM }, () => NaN) }]), {
      code: 'invalid_item',
    });
    t.notOk((await store.present('photos', ['fresh'])).has('fresh'), 'nothing of a refused batch was stored');
  });

  void t.test('get: in the order asked, exact vectors and metadata', async (t) => {
    const got = await store.get('photos', ['tie-a', 'nope', 'item-04', 'item-09']);
    t.same(
      got.map((i) => i.id),
      ['tie-a', 'item-04', 'item-09'],
    );
    t.same(Array.from(got[1]!.vector), f.ints.get('item-04'));
    t.same(got[1]!.metadata, { color: 'green', n: 4, even: true, label: '3' });
    t.equal(got[2]!.metadata, undefined, 'no metadata stays absent');
    t.same(got[0]!.metadata, { color: 'red', quote: 'it\'s \\ "odd"' });
    t.equal(got[1]!.source, 'images/item-04.jpg');
  });

  void t.test('exact search: the float64 cosines, best first, ties by id', async (t) => {
    const expected = expectedOrder(f).slice(0, 10);
    const hits = await store.search('photos', Float32Array.from(QUERY), { k: 10, exact: true });
    t.same(
      hits.map((h) => h.id),
      expected.map((e) => e.id),
    );
    t.same(
      hits.slice(0, 2).map((h) => h.id),
      ['tie-a', 'tie-b'],
    );
    hits.forEach((h, i) => t.ok(Math.abs(h.score - expected[i]!.score) <= 1e-12, `${h.id} score`));
    t.equal(hits[0]!.vector, undefined, 'no vectors unless asked');
    t.equal(hits[3]!.source, `images/${hits[3]!.id}.jpg`);
    const all = await store.search('photos', Float32Array.from(QUERY), { k: 100, withVectors: true });
    t.equal(all.length, f.items.length, 'k beyond the collection: every item');
    t.same(Array.from(all[0]!.vector!), QUERY);
    t.same(
      all.map((h) => h.id),
      expectedOrder(f).map((e) => e.id),
    );
    await t.rejects(store.search('photos', new Float32Array(DIM + 1), { k: 3 }), { code: 'dimension_mismatch' });
    await t.rejects(store.search('photos', Float32Array.from(QUERY), { k: 0 }), { code: 'bad_request' });
  });

  void t.test('filters: equality on metadata fields, before the top k', async (t) => {
    const q = Float32Array.from(QUERY);
    const check = async (
      filter: Record<string, string | number | boolean>,
      keep: (i: StoredItem) => boolean,
      k = 5,
    ) => {
      const hits = await store.search('photos', q, { k, filter });
      t.same(
        hits.map((h) => h.id),
        expectedOrder(f, keep)
          .slice(0, k)
          .map((e) => e.id),
        JSON.stringify(filter),
      );
      return hits;
    };
    const md = (i: StoredItem) => i.metadata ?? {};
    await check({ color: 'green' }, (i) => md(i).color === 'green');
    await check({ n: 2 }, (i) => md(i).n === 2);
    await check({ even: false }, (i) => md(i).even === false);
    await check({ color: 'red', even: true }, (i) => md(i).color === 'red' && md(i).even === true);
    await check({ label: '3' }, (i) => md(i).label === '3');
    t.same(await check({ n: 3, color: 'nothing' }, () => false), [], 'no match: no hits');
    await check({ quote: 'it\'s \\ "odd"' }, (i) => md(i).quote !== undefined);
    // Selective: 4 items of 42 match; all 4 come back though 38 others score higher.
    const few = await check({ n: 3, even: true }, (i) => md(i).n === 3 && md(i).even === true, 10);
    t.equal(few.length, expectedOrder(f, (i) => md(i).n === 3 && md(i).even === true).length);
    t.ok(few.length >= 3);
    await t.rejects(store.search('photos', q, { k: 5, filter: { size: 'big' } }), {
      code: 'invalid_filter',
    });
    await t.rejects(store.search('photos', q, { k: 5, filter: { color: ['red'] } as never }), {
      code: 'invalid_filter',
    });
  });

  void t.test('scan: every item once, with its vector', async (t) => {
    const seen = new Map<string, StoredItem>();
    let batches = 0;
    for await (const batch of store.scan('photos', 7)) {
      batches++;
      t.ok(batch.length <= 7);
      for (const item of batch) {
        t.notOk(seen.has(item.id), `${item.id} once`);
        seen.set(item.id, item);
      }
    }
    t.equal(seen.size, f.items.length);
    t.ok(batches >= 6);
    for (const item of f.items) {
      const got = seen.get(item.id)!;
      t.same(Array.from(got.vector), f.ints.get(item.id));
      t.same(got.metadata, item.metadata);
      t.equal(got.source, item.source);
    }
  });

  void t.test('optimize builds an ANN index; ANN search, filtered too', async (t) => {
    const dim = 32;
    await store.create(spec('big', { dim, modality: 'text', root: undefined }));
    const rand = prng(11);
    const items: StoredItem[] = [];
    for (let i = 0; i < 1500; i++) {
      const v = Float32Array.from({ length: dim }, () => rand() * 2 - 1);
      items.push({
        id: `t${i}`,
        source: `text ${i}`,
        metadata: { group: i % 300 === 0 ? 'rare' : 'common' },
        vector: v,
      });
    }
    for (let i = 0; i < items.length; i += 500) await store.add('big', items.slice(i, i + 500));
    const info = await store.optimize('big');
    t.not(info.index, 'none', `index ${info.index}`);
    t.equal(info.count, 1500);
    let overlap = 0;
    for (const probe of [3, 400, 777, 1200, 1499]) {
      const q = items[probe]!.vector;
      const ann = await store.search('big', q, { k: 10 });
      const exact = await store.search('big', q, { k: 10, exact: true });
      t.equal(ann[0]!.id, `t${probe}`, 'an item finds itself');
      t.ok(Math.abs(ann[0]!.score - 1) < 1e-6);
      const exactIds = new Set(exact.map((h) => h.id));
      overlap += ann.filter((h) => exactIds.has(h.id)).length;
      for (const h of ann) {
        const e = exact.find((x) => x.id === h.id);
        if (e) t.equal(h.score, e.score, 'ANN hits carry the exact score');
      }
      const rare = await store.search('big', q, { k: 10, filter: { group: 'rare' } });
      t.same(
        rare.map((h) => h.id),
        (await store.search('big', q, { k: 10, filter: { group: 'rare' }, exact: true })).map((h) => h.id),
      );
      t.equal(rare.length, 5, 'a selective filter still returns every match');
    }
    t.ok(overlap / 50 >= 0.8, `recall@10 ${overlap / 50}`);
    // Added after the index was built: found all the same.
    const late = Float32Array.from({ length: dim }, (_, i) => (i % 2 ? 1 : -1));
    await store.add('big', [{ id: 'late', source: 'late', vector: late }]);
    t.equal((await store.search('big', late, { k: 3 }))[0]?.id, 'late', 'an item added after the index');
  });

  void t.test('list, drop, unknown collections', async (t) => {
    const list = await store.list();
    t.same(
      list.map((c) => c.name),
      ['big', 'photos'],
    );
    for (const c of list) {
      t.match(c, { model: 'albef-tiny', count: Number, dim: Number, index: String, store: store.description });
      t.notMatch(c.store, /secret/);
    }
    await store.drop('big');
    t.same(
      (await store.list()).map((c) => c.name),
      ['photos'],
    );
    const notFound = { code: 'collection_not_found' };
    await t.rejects(store.info('big'), notFound);
    await t.rejects(store.drop('big'), notFound);
    await t.rejects(store.add('big', []), notFound);
    await t.rejects(store.present('big', ['x']), notFound);
    await t.rejects(store.get('big', ['x']), notFound);
    await t.rejects(store.search('big', new Float32Array(32), { k: 1 }), notFound);
    await t.rejects(store.optimize('big'), notFound);
    await t.rejects(store.info('never-made'), notFound);
    await t.rejects(store.spec('never-made'), notFound);
    // A dropped name can be created again, empty.
    const again = await store.create(spec('big', { dim: 4 }));
    t.equal(again.count, 0);
    await store.drop('big');
  });
}

/** `add` builds the ANN index by itself once the collection reaches the threshold the store was opened with. */
export function autoIndexSuite(t: Test, open: (autoIndexThreshold: number) => Promise<CollectionStore>): void {
  void t.test('the ANN index is built automatically past the threshold', async (t) => {
    const store = await open(1100);
    t.teardown(() => store.close());
    await store.create(spec('auto', { dim: 16 }));
    const rand = prng(5);
    const batch = (from: number, n: number): StoredItem[] =>
      Array.from({ length: n }, (_, i) => ({
        id: `a${from + i}`,
        source: 's',
        vector: Float32Array.from({ length: 16 }, () => rand() - 0.5),
      }));
    await store.add('auto', batch(0, 1000));
    t.equal((await store.info('auto')).index, 'none', 'below the threshold: exact search');
    await store.add('auto', batch(1000, 200));
    const info = await store.info('auto');
    t.not(info.index, 'none', `past it: ${info.index}`);
    t.equal(info.count, 1200);
    await store.drop('auto');
  });
}
