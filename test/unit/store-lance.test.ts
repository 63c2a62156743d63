// The collection store suite against embedded LanceDB in a temporary directory, and what happens when
// that directory goes away.

import { mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';

import { autoIndexSuite, storeSuite, SHA_A } from '../../kit/store-suite.js';
import { openStore } from '../../src/retrieval/open-store.js';

const dir = await mkdtemp(path.join(tmpdir(), 'albef-lance-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

t.test('automatic index', async (t) => {
  autoIndexSuite(t, (threshold) => openStore(path.join(dir, 'auto'), { autoIndexThreshold: threshold }));
});

t.test('the store suite', async (t) => {
  storeSuite(t, () => openStore(path.join(dir, 'suite')));
});

t.test('the directory gone: store_unavailable, and back: works', async (t) => {
  const where = path.join(dir, 'gone');
  const store = await openStore(where);
  t.teardown(() => store.close());
  t.equal(store.description, `lancedb:${where}`);
  await store.create({ name: 'c', model: 'm', modelSha256: SHA_A, modality: 'text', dim: 2 });
  await store.add('c', [{ id: 'a', source: 'a', vector: Float32Array.of(1, 0) }]);
  await store.ping();
  await rename(where, `${where}-away`);
  const unavailable = { code: 'store_unavailable' };
  await t.rejects(store.ping(), unavailable);
  await t.rejects(store.info('c'), unavailable);
  await t.rejects(store.list(), unavailable);
  await t.rejects(store.search('c', Float32Array.of(1, 0), { k: 1 }), unavailable);
  await t.rejects(store.add('c', [{ id: 'b', source: 'b', vector: Float32Array.of(0, 1) }]), unavailable);
  await t.rejects(store.create({ name: 'd', model: 'm', modelSha256: SHA_A, modality: 'text', dim: 2 }), unavailable);
  await rename(`${where}-away`, where);
  await store.ping();
  const hits = await store.search('c', Float32Array.of(1, 0), { k: 1 });
  t.same(
    hits.map((h) => h.id),
    ['a'],
  );
});
