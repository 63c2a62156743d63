// The collection store suite against PostgreSQL + pgvector (PGlite over TCP, reached by the `pg`
// client), and what happens when the server goes away and comes back on the same port.

import t from 'tap';

import { startPostgres } from '../../kit/postgres.js';
import { autoIndexSuite, storeSuite, SHA_A } from '../../kit/store-suite.js';
import { openStore } from '../../src/retrieval/open-store.js';

const pg = await startPostgres();
t.teardown(() => pg.close());

t.test('automatic index', async (t) => {
  autoIndexSuite(t, (threshold) => openStore(pg.url, { autoIndexThreshold: threshold }));
});

t.test('the store suite', async (t) => {
  storeSuite(t, () => openStore(pg.url.replace('postgres://postgres@', 'postgresql://postgres:secret@')));
});

t.test('the store describes itself without the password', async (t) => {
  const store = await openStore(pg.url.replace('postgres@', 'postgres:secret@') + '?sslmode=disable');
  t.teardown(() => store.close());
  t.equal(store.description, `postgres://postgres@127.0.0.1:${pg.port}/postgres`);
});

t.test('the server down: store_unavailable, no crash; back on the same port: works', async (t) => {
  const store = await openStore(pg.url);
  t.teardown(() => store.close());
  await store.create({ name: 'down', model: 'm', modelSha256: SHA_A, modality: 'text', dim: 2 });
  await store.add('down', [{ id: 'a', source: 'a', vector: Float32Array.of(1, 0) }]);
  await store.ping();
  await pg.stop();
  const unavailable = { code: 'store_unavailable' };
  await t.rejects(store.ping(), unavailable);
  await t.rejects(store.info('down'), unavailable);
  await t.rejects(store.search('down', Float32Array.of(1, 0), { k: 1 }), unavailable);
  await t.rejects(store.add('down', [{ id: 'b', source: 'b', vector: Float32Array.of(0, 1) }]), unavailable);
  await pg.start();
  await store.ping();
  t.same(
    (await store.search('down', Float32Array.of(1, 0), { k: 1 })).map((h) => h.id),
    ['a'],
  );
  t.same(await store.add('down', [{ id: 'b', source: 'b', vector: Float32Array.of(0, 1) }]), { added: 1, skipped: 0 });
});
