// The micro-batcher on its own: batch formation, bounded queue, deadlines, disconnected clients and
// per-batch failure isolation.

import t from 'tap';
import { MicroBatcher } from '../../src/inference/batcher.js';
import {
  ClientGoneError,
  DeadlineError,
  InferenceError,
  OverloadedError,
  PayloadTooLargeError,
} from '../../src/core/errors.js';

const far = () => Date.now() + 60_000;

function make(overrides: Partial<ConstructorParameters<typeof MicroBatcher<number, number>>[0]> = {}) {
  const batches: number[][] = [];
  const b = new MicroBatcher<number, number>({
    name: 'test',
    maxBatch: 4,
    maxWaitMs: 5,
    maxQueue: 10,
    run: async (xs) => {
      batches.push(xs);
      await new Promise((r) => setTimeout(r, 20));
      return xs.map((x) => x * 10);
    },
    ...overrides,
  });
  return { b, batches };
}

t.test('items arriving together share batches of at most maxBatch, results in order', async (t) => {
  const { b, batches } = make();
  const out = await Promise.all(b.submitAll([1, 2, 3, 4, 5, 6], { deadline: far() }));
  t.same(out, [10, 20, 30, 40, 50, 60]);
  t.same(batches, [
    [1, 2, 3, 4],
    [5, 6],
  ]);
});

t.test('groupKey batches similar items, oldest first, results in order', async (t) => {
  const { b, batches } = make({ groupKey: (x) => x, maxBatch: 2, maxWaitMs: 0 });
  const blocker = b.submitAll([0], { deadline: far() }); // runs alone while the rest queue up
  const out = await Promise.all(b.submitAll([5, 29, 6, 30, 7], { deadline: far() }));
  await blocker[0];
  t.same(out, [50, 290, 60, 300, 70]);
  t.same(batches, [[0], [5, 6], [29, 30], [7]], 'the oldest item anchors each batch; its nearest neighbours join it');
});

t.test('a full queue refuses the whole request with a retry hint', async (t) => {
  const { b } = make({ maxQueue: 3 });
  const held = b.reserve(2, { deadline: far() });
  const err = t.throws(() => b.submitAll([1, 2], { deadline: far() })) as OverloadedError;
  t.ok(err instanceof OverloadedError && err.retryAfterS >= 1, 'OverloadedError with a retry hint');
  t.equal(b.depth, 0, 'nothing half-queued');
  held.release();
  t.same(
    await Promise.all(b.submitAll([1, 2, 3], { deadline: far() })),
    [10, 20, 30],
    'room again once the places are given back',
  );
});

t.test('a request larger than the whole queue is 413, not a retry that can never succeed', async (t) => {
  const { b } = make({ maxQueue: 3 });
  t.throws(() => b.submitAll([1, 2, 3, 4], { deadline: far() }), PayloadTooLargeError);
  t.throws(() => b.reserve(4, { deadline: far() }), PayloadTooLargeError);
  t.equal(b.depth, 0);
});

t.test('a reservation: each prepared item takes a place, unused places are given back', async (t) => {
  // Batches wait 200 ms to fill, so every item below stays queued while the places are counted.
  const { b } = make({ maxQueue: 3, maxBatch: 10, maxWaitMs: 200 });
  const places = b.reserve(3, { deadline: far() });
  t.throws(() => b.submitAll([9], { deadline: far() }), OverloadedError, 'held places count as taken');
  const first = places.enqueue([1]);
  places.release(1); // one item will not come
  t.throws(() => b.submitAll([8, 9], { deadline: far() }), OverloadedError, 'the last held place is still taken');
  const second = places.enqueue([2, 3]); // one beyond its places: queued because one place is free
  t.throws(() => b.submitAll([9], { deadline: far() }), OverloadedError, 'the queue is full');
  places.release();
  t.same(await Promise.all([...first, ...second]), [10, 20, 30]);
  const more = b.reserve(1, { deadline: far() });
  const fill = b.submitAll([5, 6], { deadline: far() });
  t.throws(() => more.enqueue([1, 2]), OverloadedError, 'beyond its places an item needs room like any other');
  more.release();
  t.same(await Promise.all(fill), [50, 60]);
  t.same(await Promise.all(b.submitAll([4, 5, 6], { deadline: far() })), [40, 50, 60], 'every place free again');
});

t.test(
  'an item already past its deadline when it arrives (a slow fetch or decode) gets 504, even on an idle tower',
  async (t) => {
    const { b, batches } = make({ maxWaitMs: 0 });
    await t.rejects(b.submitAll([1], { deadline: Date.now() - 1 })[0]!, DeadlineError);
    t.same(batches, [], 'nothing ran');
  },
);

t.test('items past their deadline get 504 without running', async (t) => {
  const { b, batches } = make();
  const first = b.submitAll([1, 2, 3, 4], { deadline: far() }); // occupies the tower for 20 ms
  const late = b.submitAll([9], { deadline: Date.now() + 5 });
  await t.rejects(late[0]!, DeadlineError);
  await Promise.all(first);
  await b.idle();
  t.notOk(batches.flat().includes(9), 'the expired item never ran');
});

t.test('items of a client that went away are dropped before inference', async (t) => {
  const { b, batches } = make();
  const busy = b.submitAll([1, 2, 3, 4], { deadline: far() });
  const ac = new AbortController();
  const gone = b.submitAll([7, 8], { deadline: far(), signal: ac.signal });
  ac.abort();
  await t.rejects(Promise.all(gone), ClientGoneError);
  await Promise.all(busy);
  await b.idle();
  t.notOk(
    batches.flat().some((x) => x === 7 || x === 8),
    'no inference spent on them',
  );
});

t.test("a request's timing record gets its items' longest queue wait and batch run, no one else's", async (t) => {
  const runs: number[] = [];
  const { b } = make({ maxBatch: 2, maxWaitMs: 0, onBatch: (_size, ms) => runs.push(ms) });
  const a = { queueMs: 0, inferenceMs: 0 };
  const c = { queueMs: 0, inferenceMs: 0 };
  // a's three items take two batches on the one lane; c's item joins the second.
  const pa = b.submitAll([1, 2, 3], { deadline: far(), timing: a });
  const pc = b.submitAll([4], { deadline: far(), timing: c });
  await Promise.all([...pa, ...pc, ...b.submitAll([5], { deadline: far() })]);
  await b.idle();
  t.equal(runs.length, 3, 'batches [1, 2], [3, 4], [5]');
  t.equal(a.inferenceMs, Math.max(runs[0]!, runs[1]!), 'the longer of its two batches');
  t.equal(c.inferenceMs, runs[1]!, 'only the batch it ran in');
  t.ok(a.queueMs >= runs[0]!, 'its third item waited for the first batch to end');
  t.ok(c.queueMs >= runs[0]!);
});

t.test('a failing batch fails only its own items; the next batch runs', async (t) => {
  let calls = 0;
  const { b } = make({
    run: async (xs) => {
      calls++;
      if (xs.includes(13)) throw new Error('boom');
      return xs.map((x) => x);
    },
  });
  const bad = b.submitAll([13], { deadline: far() });
  await t.rejects(bad[0]!, InferenceError);
  t.same(await Promise.all(b.submitAll([1, 2], { deadline: far() })), [1, 2]);
  t.equal(calls, 2);
});

t.test('a reservation holds places for items still being prepared', async (t) => {
  const { b } = make({ maxQueue: 3 });
  const places = b.reserve(2, { deadline: far() });
  t.throws(() => b.reserve(2, { deadline: far() }), OverloadedError, 'reserved places count as taken');
  const c = b.reserve(1, { deadline: far() });
  c.release(); // given back unused
  t.same(await Promise.all(places.enqueue([4, 5])), [40, 50]);
  t.ok(b.reserve(3, { deadline: far() }), 'all places free again');
});

t.test('an idle tower waits up to fillWaitMs for reserved items still being prepared', async (t) => {
  const { b, batches } = make({ maxBatch: 2, maxWaitMs: 0, fillWaitMs: 5_000 });
  const first = b.reserve(1, { deadline: far() });
  const second = b.reserve(1, { deadline: far() });
  const a = first.enqueue([1]);
  await new Promise((r) => setTimeout(r, 30));
  t.same(batches, [], 'the first item waits for the one still being prepared');
  const c = second.enqueue([2]);
  t.same(await Promise.all([...a, ...c]), [10, 20]);
  t.same(batches, [[1, 2]], 'one full batch');

  const third = b.reserve(1, { deadline: far() });
  const fourth = b.reserve(1, { deadline: far() });
  const d = third.enqueue([3]);
  fourth.release(); // its preparation failed: nothing left to wait for
  t.same(await Promise.all(d), [30]);
  t.same(batches.at(-1), [3], 'runs as soon as no reserved item is pending');

  const bounded = make({ maxBatch: 2, maxWaitMs: 0, fillWaitMs: 40 });
  bounded.b.reserve(1, { deadline: far() }); // never arrives
  const started = Date.now();
  t.same(await Promise.all(bounded.b.reserve(1, { deadline: far() }).enqueue([7])), [70]);
  t.ok(Date.now() - started >= 35, 'waited for the fill');
  t.same(bounded.batches, [[7]], 'then ran what it had');
});

t.test('without items being prepared there is no fill wait', async (t) => {
  const { b, batches } = make({ maxBatch: 4, maxWaitMs: 0, fillWaitMs: 5_000 });
  const started = Date.now();
  t.same(await Promise.all(b.submitAll([1], { deadline: far() })), [10]);
  t.ok(Date.now() - started < 2_000);
  t.same(batches, [[1]]);
});

/** `clients` closed-loop clients, half starting 5 ms after the others; each answer is followed by the client's next item 2 ms later. */
async function closedLoop(b: MicroBatcher<number, number>, clients: number, rounds: number): Promise<void> {
  const client = async (id: number, delay: number): Promise<void> => {
    await new Promise((r) => setTimeout(r, delay));
    for (let i = 0; i < rounds; i++) {
      await Promise.all(b.submitAll([id], { deadline: far() }));
      await new Promise((r) => setTimeout(r, 2));
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, id) => client(id, id < clients / 2 ? 0 : 5)));
}

t.test('under a closed loop, settleMs keeps batches whole instead of splitting the clients', async (t) => {
  // The first item runs alone while the other seven queue; from then on the two groups take turns.
  const split = make({ maxBatch: 8, maxWaitMs: 0, settleMs: 0, maxQueue: 100 });
  await closedLoop(split.b, 8, 4);
  t.ok(
    split.batches.length >= 8 && split.batches.every((x) => x.length < 8),
    `without settling the clients stay split: ${split.batches.map((x) => x.length).join(',')}`,
  );

  // Settling: after the first (partial) batch every batch holds all eight, until clients finish.
  const whole = make({ maxBatch: 8, maxWaitMs: 0, settleMs: 50, maxQueue: 100 });
  await closedLoop(whole.b, 8, 4);
  t.ok(
    whole.batches.length <= 5 && whole.batches.slice(1, -1).every((x) => x.length === 8),
    `with settling the batches are whole: ${whole.batches.map((x) => x.length).join(',')}`,
  );
});

t.test('settling never delays a lone client, and ends when arrivals stop', async (t) => {
  const { b, batches } = make({ maxBatch: 8, maxWaitMs: 0, settleMs: 400, maxQueue: 100 });
  await Promise.all(b.submitAll([1], { deadline: far() }));
  const started = Date.now();
  await Promise.all(b.submitAll([2], { deadline: far() }));
  t.ok(Date.now() - started < 300, 'a batch of one is followed by no hold');

  // A batch of 4 ends with 2 more queued (6 in play); only those 2 come: they wait for the gap, then run.
  const first = b.submitAll([1, 2, 3, 4], { deadline: far() });
  await new Promise((r) => setTimeout(r, 5));
  const second = b.submitAll([5, 6], { deadline: far() });
  await Promise.all(first);
  const ended = Date.now();
  t.same(await Promise.all(second), [50, 60]);
  const held = Date.now() - ended;
  t.ok(held >= 350 && held < 2_000, `held for the gap after the last arrival (${held} ms)`);
  t.same(batches.slice(2), [
    [1, 2, 3, 4],
    [5, 6],
  ]);
});

t.test('with lanes, batches run side by side, never two at once on one lane', async (t) => {
  const running = new Set<number>();
  let most = 0;
  const runs: { lane: number; items: number[] }[] = [];
  const b = new MicroBatcher<number, number>({
    name: 'test',
    maxBatch: 2,
    maxWaitMs: 0,
    lanes: 2,
    maxQueue: 100,
    run: async (xs, lane) => {
      t.notOk(running.has(lane), `lane ${lane} is free when a batch starts on it`);
      running.add(lane);
      most = Math.max(most, running.size);
      runs.push({ lane, items: xs });
      await new Promise((r) => setTimeout(r, 20));
      running.delete(lane);
      return xs.map((x) => x * 10);
    },
  });
  const out = await Promise.all(b.submitAll([1, 2, 3, 4, 5, 6, 7], { deadline: far() }));
  t.same(out, [10, 20, 30, 40, 50, 60, 70], 'results in order');
  t.equal(most, 2, 'two batches ran at once');
  t.same(new Set(runs.map((r) => r.lane)), new Set([0, 1]), 'both lanes were used');
  t.same(runs.map((r) => r.items).flat(), [1, 2, 3, 4, 5, 6, 7], 'FIFO across lanes');
  await b.idle();

  // One lane (the default) never runs two batches at once.
  const one = make({ maxBatch: 2, maxWaitMs: 0 });
  let now = 0;
  let peak = 0;
  const inner = one.b as unknown as { options: { run: (xs: number[], lane: number) => Promise<number[]> } };
  const run = inner.options.run;
  inner.options.run = async (xs, lane) => {
    peak = Math.max(peak, ++now);
    try {
      return await run(xs, lane);
    } finally {
      now--;
    }
  };
  await Promise.all(one.b.submitAll([1, 2, 3, 4, 5], { deadline: far() }));
  t.equal(peak, 1);
});

t.test('with lanes, one large request is split between the free lanes', async (t) => {
  const { b, batches } = make({ maxBatch: 8, maxWaitMs: 200, lanes: 2 });
  const started = Date.now();
  const out = await Promise.all(b.submitAll([1, 2, 3, 4, 5, 6, 7, 8, 9], { deadline: far() }));
  t.same(out, [10, 20, 30, 40, 50, 60, 70, 80, 90]);
  t.same(
    batches,
    [
      [1, 2, 3, 4, 5],
      [6, 7, 8, 9],
    ],
    'half each',
  );
  t.ok(Date.now() - started < 150, 'the second half started at once, without waiting for maxWaitMs');
});

t.test('with lanes, settling shares the clients between the lanes', async (t) => {
  // Eight closed-loop clients on two lanes: once started, each lane takes a good part of them
  // instead of starting with whichever one or two clients have just come back.
  const { b, batches } = make({ maxBatch: 8, maxWaitMs: 0, settleMs: 50, lanes: 2, maxQueue: 100 });
  await closedLoop(b, 8, 8);
  const middle = batches.slice(4, -2);
  t.ok(
    middle.length >= 4 && middle.every((x) => x.length >= 3 && x.length <= 5),
    `batches of three to five: ${batches.map((x) => x.length).join(',')}`,
  );

  const split = make({ maxBatch: 8, maxWaitMs: 0, settleMs: 0, lanes: 2, maxQueue: 100 });
  await closedLoop(split.b, 8, 8);
  t.ok(
    split.batches.some((x) => x.length <= 2),
    `without settling some lanes start on one or two items: ${split.batches.map((x) => x.length).join(',')}`,
  );
});
