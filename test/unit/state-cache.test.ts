// The image-state cache on its own: least recently used out first, concurrent lookups share one
// computation (also with capacity 0, which keeps nothing), failures are not kept, and a lookup that
// joined another's failed computation computes for itself.

import t from 'tap';
import { StateCache } from '../../src/inference/state-cache.js';

const counting = () => {
  const events = { hit: 0, miss: 0, shared: 0, size: 0 };
  return {
    events,
    hooks: {
      onHit: () => events.hit++,
      onMiss: () => events.miss++,
      onShared: () => events.shared++,
      onSize: (n: number) => (events.size = n),
    },
  };
};

t.test('least recently used out first', async (t) => {
  const { events, hooks } = counting();
  const cache = new StateCache<string>(2, hooks);
  const calls: string[] = [];
  const get = (k: string) => cache.get(k, async () => (calls.push(k), `v${k}`));
  t.equal(await get('a'), 'va');
  await get('b');
  await get('a'); // a is now the most recent
  await get('c'); // evicts b
  await get('a');
  await get('b'); // computed again
  t.same(calls, ['a', 'b', 'c', 'b']);
  t.same(events, { hit: 2, miss: 4, shared: 0, size: 2 });
});

t.test('concurrent lookups share one computation, even with capacity 0', async (t) => {
  for (const capacity of [0, 4]) {
    const { events, hooks } = counting();
    const cache = new StateCache<number>(capacity, hooks);
    let runs = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const compute = async () => {
      runs++;
      await gate;
      return 42;
    };
    const all = Promise.all([cache.get('x', compute), cache.get('x', compute), cache.get('x', compute)]);
    release();
    t.same(await all, [42, 42, 42]);
    t.equal(runs, 1, `capacity ${capacity}: one computation`);
    t.equal(events.shared, 2);
    await cache.get('x', compute);
    t.equal(runs, capacity === 0 ? 2 : 1, capacity === 0 ? 'capacity 0 keeps nothing' : 'kept');
    t.equal(cache.size, capacity === 0 ? 0 : 1);
  }
});

t.test('a failure is not kept, and a joined lookup computes for itself', async (t) => {
  const cache = new StateCache<string>(4);
  let fail = true;
  const first = cache.get('k', async () => {
    await new Promise((r) => setTimeout(r, 10));
    if (fail) throw new Error('the first client left');
    return 'never';
  });
  const second = cache.get('k', async () => 'mine');
  await t.rejects(first, /first client left/);
  t.equal(await second, 'mine', 'the waiter computed its own');
  fail = false;
  t.equal(await cache.get('k', async () => 'other'), 'mine', 'and that one was kept');
});
