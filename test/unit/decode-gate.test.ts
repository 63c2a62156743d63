// The gate that keeps image decodes out of running inferences, on its own and in the real
// preprocessing pool (sharp + the PIL resampler on worker threads).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { DecodePool } from '../../src/imaging/decode-pool.js';
import { DecodeGate } from '../../src/imaging/decode-gate.js';

const photo = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'images', 'photo.jpg'));
const options = { size: 32, maxPixels: 1e8 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An inference stand-in that holds the gate until `end()` is called. */
function hold(gate: DecodeGate): { end: () => void; done: Promise<void> } {
  let end!: () => void;
  const done = gate.during(() => new Promise<void>((r) => (end = r)));
  return { end, done };
}

t.test('clear() passes at once when nothing runs, waits while something does', async (t) => {
  const gate = new DecodeGate(60_000);
  let passed = false;
  await gate.clear();
  const run = hold(gate);
  const waiting = gate.clear().then(() => (passed = true));
  await sleep(30);
  t.notOk(passed, 'held while an inference runs');
  run.end();
  await run.done;
  await waiting;
  t.ok(passed, 'released when it ends');
});

t.test('clear() gives up waiting after maxHoldMs', async (t) => {
  const gate = new DecodeGate(40);
  const run = hold(gate);
  const started = Date.now();
  await gate.clear();
  t.ok(Date.now() - started >= 35);
  run.end();
  await run.done;
});

t.test('a failing inference still opens the gate', async (t) => {
  const gate = new DecodeGate(60_000);
  await t.rejects(
    gate.during(async () => Promise.reject(new Error('boom'))),
    /boom/,
  );
  await gate.clear();
  t.pass('open');
});

t.test('the preprocessor starts decodes only when no inference runs', async (t) => {
  const gate = new DecodeGate(60_000);
  const images = new DecodePool(1, gate);
  t.teardown(() => images.close());
  await images.run(photo, options); // worker warm

  const run = hold(gate);
  let decoded = false;
  const pending = images.run(photo, options).then((r) => ((decoded = true), r));
  await sleep(150);
  t.notOk(decoded, 'no decode while the inference holds the gate');
  run.end();
  await run.done;
  const r = await pending;
  t.equal(r.rgb.length, 32 * 32 * 3);
  t.equal(r.width, 640);
});

t.test('decodes waiting for a worker can be abandoned', async (t) => {
  const gate = new DecodeGate(60_000);
  const images = new DecodePool(1, gate);
  t.teardown(() => images.close());
  const run = hold(gate);
  const first = images.run(photo, options); // takes the only worker slot, waits at the gate
  const ac = new AbortController();
  const second = images.run(photo, options, 1, ac.signal); // waits for the slot
  ac.abort(new Error('client gone'));
  await t.rejects(second, /client gone/);
  run.end();
  t.equal((await first).height, 480, 'the other decode is unharmed');
  t.equal((await images.run(photo, options)).format, 'jpeg', 'the slot was not leaked');
});
