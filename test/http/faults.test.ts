// Faults: broken model files at start, an inference error in one batch, a client that leaves while
// its images or texts are queued, and CORS/auth defaults.

import { cp, mkdtemp, readFile, rm, truncate, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { resolveArch } from '../../src/convert/arch.js';
import { synthesizeModel } from '../../src/convert/synth.js';
import { runCli, serveUntilFailed } from '../../kit/cli.js';
import { IMAGES_DIR } from '../../kit/golden.js';
import { cleanupTinyModel, postJson, startServer, tinyModel } from '../../kit/server.js';

const dir = await mkdtemp(join(tmpdir(), 'albef-faults-'));
t.teardown(async () => {
  await rm(dir, { recursive: true, force: true });
  await cleanupTinyModel();
});

const small = {
  layout: 'pretrain' as const,
  vision: { patch: 16, dim: 48, depth: 2, heads: 4 },
  text: { vocab_size: 30522, dim: 32, layers: 4, fusion_layer: 2, heads: 4, intermediate: 128, max_pos: 512 },
  embed_dim: 32,
  checkpoint_image_res: 64,
  image_res: 96,
};

t.test('a corrupt or missing ONNX file at start: clear error, exit 1, or not-ready when asked', async (t) => {
  const { dir: tiny } = await tinyModel();
  const corrupt = join(dir, 'corrupt');
  await cp(tiny, corrupt, { recursive: true });
  await truncate(join(corrupt, 'image.onnx'), 100);
  const a = await runCli(['serve', '--models', corrupt, '--port', '0']);
  t.equal(a.code, 1, 'exit code 1');
  t.match(a.stdout + a.stderr, /cannot load .*image\.onnx/);

  const missing = join(dir, 'missing');
  await cp(tiny, missing, { recursive: true });
  await unlink(join(missing, 'text.onnx.data'));
  const b = await runCli(['serve', '--models', missing, '--port', '0']);
  t.equal(b.code, 1);
  t.match(b.stdout + b.stderr, /text\.onnx\.data is missing/);

  const { url, ready, stop } = await serveUntilFailed(['--models', corrupt]);
  t.equal(ready.status, 503, 'not ready');
  t.match(await ready.json(), { status: 'failed', reason: /cannot load .*image\.onnx/ }, 'failed, and why');
  t.equal((await fetch(`${url}/healthz`)).status, 200, 'but alive');
  t.equal((await postJson(`${url}/embed/text`, { text: 'a' })).status, 503, 'embeddings refused with 503');
  await stop();
});

t.test('an inference error fails only its batch; the next batch succeeds', async (t) => {
  // A text tower whose embedding table is smaller than the vocabulary: ids ≥ 102 make Gather fail.
  const out = join(dir, 'short-vocab');
  await synthesizeModel({
    arch: resolveArch({ ...small, text: { ...small.text, vocab_size: 102 } }),
    out,
    name: 'short-vocab',
  });
  const server = await startServer({ models: [out] });
  t.teardown(() => server.close());
  const bad = await postJson(`${server.url}/embed/text`, { text: 'the cat' });
  t.equal(bad.status, 500);
  t.match(bad.json.error, { code: 'inference_failed', request_id: String });
  const good = await postJson(`${server.url}/embed/text`, { text: '🐶' }); // [CLS] [UNK]: ids 101, 100
  t.equal(good.status, 200, 'the next request succeeds');
  t.equal((await fetch(`${server.url}/readyz`)).status, 200, 'still ready');
});

/**
 * A busy request fills the queue of a slowed-down tower; a second client sends two items and leaves
 * while they wait. Returns how many items were dropped as client_gone and how many reached the model.
 */
async function departAfterQueueing(
  url: string,
  model: string,
  tower: 'image' | 'text',
  busyBody: object,
  leavingBody: object,
): Promise<{ dropped: number; inferred: number; busyStatus: number; leaving: unknown }> {
  const path = `${url}/embed/${tower}`;
  const busy = postJson(path, busyBody);
  await new Promise((r) => setTimeout(r, 40));
  const ac = new AbortController();
  const leaving = fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(leavingBody),
    signal: ac.signal,
  }).catch(() => 'aborted');
  await new Promise((r) => setTimeout(r, 40));
  ac.abort();
  const [left, done] = await Promise.all([leaving, busy]);
  const metrics = await (await fetch(`${url}/metrics`)).text();
  const count = (re: string) => Number(metrics.match(new RegExp(re))?.[1] ?? 0);
  return {
    dropped: count(`albef_rejected_items_total\\{model="${model}",tower="${tower}",reason="client_gone"\\} (\\d+)`),
    inferred: count(`albef_batch_size_sum\\{model="${model}",tower="${tower}"\\} (\\d+)`),
    busyStatus: done.status,
    leaving: left,
  };
}

t.test('a client that disconnects while its images are queued costs no inference', async (t) => {
  // A slower image tower, one image per batch, so that a queue forms behind a first request.
  const out = join(dir, 'slower');
  await synthesizeModel({
    arch: resolveArch({ ...small, vision: { patch: 16, dim: 192, depth: 6, heads: 3 }, image_res: 384 }),
    out,
    name: 'slower',
  });
  const server = await startServer({ models: [out], maxBatchImages: 1 });
  t.teardown(() => server.close());
  const png = (await readFile(join(IMAGES_DIR, 'tiny.png'))).toString('base64');
  const r = await departAfterQueueing(
    server.url,
    'slower',
    'image',
    { images: Array(24).fill(png) },
    { images: [png, png] },
  );
  t.equal(r.leaving, 'aborted');
  t.equal(r.busyStatus, 200);
  t.equal(r.dropped, 2, 'both items of the departed client were dropped (while decoding or queued)');
  t.equal(r.inferred, 24, 'only the first request reached the model');
});

t.test('a client that disconnects while its texts are queued costs no inference', async (t) => {
  // The text route checks the socket rather than holding an AbortController: one text per batch
  // behind a request of 200 texts, so that the second request waits in the queue.
  const out = join(dir, 'slower-text');
  await synthesizeModel({
    arch: resolveArch({ ...small, text: { ...small.text, dim: 256, heads: 4, intermediate: 1024, fusion_layer: 4 } }),
    out,
    name: 'slower-text',
  });
  const server = await startServer({ models: [out], maxBatchTexts: 1 });
  t.teardown(() => server.close());
  const texts = Array.from({ length: 200 }, (_, i) => `caption number ${i} of a long queue`);
  const r = await departAfterQueueing(server.url, 'slower-text', 'text', { texts }, { texts: ['a', 'b'] });
  t.equal(r.leaving, 'aborted');
  t.equal(r.busyStatus, 200);
  t.equal(r.dropped, 2, 'both texts of the departed client were dropped');
  t.equal(r.inferred, 200, 'only the first request reached the model');
});

t.test('CORS is off by default and on when configured', async (t) => {
  const plain = await startServer();
  const withCors = await startServer({ cors: true });
  t.teardown(async () => {
    await plain.close();
    await withCors.close();
  });
  const headers = { origin: 'https://example.com', 'content-type': 'application/json' };
  const a = await fetch(`${plain.url}/embed/text`, { method: 'POST', headers, body: JSON.stringify({ text: 'a' }) });
  t.equal(a.headers.get('access-control-allow-origin'), null, 'no CORS headers by default');
  const b = await fetch(`${withCors.url}/embed/text`, { method: 'POST', headers, body: JSON.stringify({ text: 'a' }) });
  t.equal(b.headers.get('access-control-allow-origin'), 'https://example.com');
});
