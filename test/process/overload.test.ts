// Overload: an open-loop load at 3× the measured capacity for 60 s against the real process. Every
// request gets an answer (none lost); accepted ones all succeed within a bounded time; the excess is
// refused fast with 503 + Retry-After; nothing crashes; memory returns to its baseline; /readyz
// recovers at once; SIGTERM afterwards exits 0.

import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import { Pool } from 'undici';
import { resolveArch } from '../../src/convert/arch.js';
import { synthesizeModel } from '../../src/convert/synth.js';
import { freePort, spawnCli } from '../../kit/cli.js';
import { IMAGES_DIR } from '../../kit/golden.js';

const SECONDS = 60;
const dir = await mkdtemp(join(tmpdir(), 'albef-overload-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

// A model slow enough for a queue to form on 2 cores, small enough to build in a second.
const model = join(dir, 'medium');
await synthesizeModel({
  arch: resolveArch({
    vision: { patch: 16, dim: 192, depth: 6, heads: 3 },
    text: { vocab_size: 30522, dim: 64, layers: 2, fusion_layer: 1, heads: 2, intermediate: 128, max_pos: 512 },
    embed_dim: 64,
    checkpoint_image_res: 224,
    image_res: 224,
  }),
  out: model,
  name: 'medium',
});

const port = await freePort();
const url = `http://127.0.0.1:${port}`;
const child = spawnCli(
  [
    'serve',
    '--models',
    model,
    '--port',
    String(port),
    '--decode-threads',
    '1',
    '--max-queue-images',
    '16',
    '--request-timeout-ms',
    '15000',
  ],
  { ALBEF_LOG_LEVEL: 'warn' },
);
const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
// Keep reading its logs: a child blocked on a full stdout pipe would never exit.
child.stdout!.resume();
child.stderr!.resume();
t.teardown(() => {
  if (child.exitCode === null) child.kill('SIGKILL');
});
for (
  let i = 0;
  i < 300 &&
  (await fetch(`${url}/readyz`).then(
    (r) => r.status,
    () => 0,
  )) !== 200;
  i++
)
  await new Promise((r) => setTimeout(r, 100));
if ((await fetch(`${url}/readyz`)).status !== 200) throw new Error('the service did not become ready');

const rss = async (): Promise<number> =>
  Number((await readFile(`/proc/${child.pid}/status`, 'utf8')).match(/VmRSS:\s+(\d+)/)![1]) / 1024;
const image = (
  await sharp(await readFile(join(IMAGES_DIR, 'photo.jpg')))
    .resize(160, 120)
    .jpeg()
    .toBuffer()
).toString('base64');
const body = JSON.stringify({ image });
const pool = new Pool(url, { connections: 512, pipelining: 1, headersTimeout: 60_000, bodyTimeout: 60_000 });
t.teardown(() => pool.close());

interface Outcome {
  status: number;
  ms: number;
  retryAfter?: string;
}
async function once(): Promise<Outcome> {
  const t0 = performance.now();
  try {
    const res = await pool.request({
      method: 'POST',
      path: '/embed/image',
      headers: { 'content-type': 'application/json' },
      body,
    });
    await res.body.arrayBuffer();
    return {
      status: res.statusCode,
      ms: performance.now() - t0,
      retryAfter: res.headers['retry-after'] as string | undefined,
    };
  } catch {
    return { status: 0, ms: performance.now() - t0 }; // no answer: lost
  }
}
const p = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.max(0, Math.ceil((q / 100) * xs.length) - 1)] ?? 0;

t.test(`3× capacity for ${SECONDS} s`, async (t) => {
  // Capacity: closed loop, 8 clients, 5 s (also warms the arenas before the memory baseline).
  let done = 0;
  const end = performance.now() + 5000;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (performance.now() < end) if ((await once()).status === 200) done++;
    }),
  );
  const capacity = done / 5;
  const baseline = await rss();
  const rate = Math.min(300, 3 * capacity);
  t.comment(
    `capacity ${capacity.toFixed(1)} img/s; offering ${rate.toFixed(1)} req/s for ${SECONDS} s; RSS baseline ${baseline.toFixed(0)} MB`,
  );

  const outcomes: Promise<Outcome>[] = [];
  const started = performance.now();
  while (performance.now() - started < SECONDS * 1000) {
    const due = Math.floor(((performance.now() - started) / 1000) * rate);
    while (outcomes.length < due) outcomes.push(once());
    await new Promise((r) => setTimeout(r, 5));
  }
  const results = await Promise.all(outcomes);
  const ok = results.filter((r) => r.status === 200);
  const refused = results.filter((r) => r.status === 503 || r.status === 429);
  const other = results.filter((r) => r.status !== 200 && r.status !== 503 && r.status !== 429);
  t.comment(
    `sent ${results.length}: accepted ${ok.length}, refused ${refused.length}, other ${other.length}; accepted p50/p99 ${p(
      ok.map((r) => r.ms),
      50,
    ).toFixed(0)}/${p(
      ok.map((r) => r.ms),
      99,
    ).toFixed(0)} ms; refused p99 ${p(
      refused.map((r) => r.ms),
      99,
    ).toFixed(0)} ms`,
  );
  t.equal(
    other.length,
    0,
    `no request lost or failed (statuses: ${[...new Set(other.map((r) => r.status))].join(', ') || 'none'})`,
  );
  t.ok(ok.length > capacity * SECONDS * 0.5, 'the service kept serving at close to capacity');
  t.ok(refused.length > 0, 'the excess was refused');
  t.ok(
    refused.every((r) => /^\d+$/.test(r.retryAfter ?? '')),
    'every refusal carries Retry-After',
  );
  t.ok(
    p(
      ok.map((r) => r.ms),
      99,
    ) < 15_000,
    'accepted requests finish within the deadline',
  );
  t.ok(
    p(
      refused.map((r) => r.ms),
      99,
    ) < 2_000,
    'refusals are fast',
  );

  t.equal((await fetch(`${url}/readyz`)).status, 200, '/readyz 200 right after');
  await new Promise((r) => setTimeout(r, 2000));
  const after = await rss();
  t.ok(after < baseline * 1.25 + 50, `RSS ${baseline.toFixed(0)} MB before, ${after.toFixed(0)} MB after`);
  const last = await once();
  t.equal(last.status, 200, 'and it still embeds');
});

t.test('SIGTERM afterwards exits 0', async (t) => {
  child.kill('SIGTERM');
  t.equal(await exited, 0);
});
