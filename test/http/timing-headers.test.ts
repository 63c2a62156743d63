// TEI-style timing headers on the embedding routes over real HTTP: present, in ms, consistent with
// each other for a one-item request (its stages run one after another inside the total), decode time
// only when images were decoded, and the queue time really is the batch queue's: with a batch wait
// of 40 ms a lone item waits at least that long before its batch starts (a bound the batcher's own
// rule sets, not the machine's speed).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { IMAGES_DIR } from '../../kit/golden.js';
import { cleanupTinyModel, postJson, startServer } from '../../kit/server.js';

const server = await startServer();
const waiting = await startServer({ batchWaitMs: 40 });
t.teardown(async () => {
  await server.close();
  await waiting.close();
  await cleanupTinyModel();
});

const png = readFileSync(join(IMAGES_DIR, 'tiny.png'));

/** The timing headers as numbers (ms); undefined when absent. */
function timings(headers: Headers): Record<'queue' | 'inference' | 'decode' | 'total', number | undefined> {
  const read = (name: string): number | undefined => {
    const v = headers.get(name);
    if (v === null) return undefined;
    if (!/^\d+\.\d{3}$/.test(v)) throw new Error(`${name}: ${v} is not milliseconds with three decimals`);
    return Number(v);
  };
  return {
    queue: read('x-queue-time'),
    inference: read('x-inference-time'),
    decode: read('x-decode-time'),
    total: read('x-total-time'),
  };
}

t.test('POST /embed/text: queue, inference and total; no decode', async (t) => {
  const res = await postJson(`${server.url}/embed/text`, { text: 'a dog' });
  t.equal(res.status, 200);
  const { queue, inference, decode, total } = timings(res.headers);
  t.ok(queue! >= 0 && inference! > 0, `queue ${queue}, inference ${inference}`);
  t.equal(decode, undefined, 'no images, no decode time');
  t.ok(total! >= queue! + inference!, `total ${total} holds queue + inference`);
});

t.test('POST /embed/image (JSON, multipart, raw): decode too, all inside the total', async (t) => {
  const form = new FormData();
  form.append('file', new Blob([png], { type: 'image/png' }), 'tiny.png');
  const answers = [
    await postJson(`${server.url}/embed/image`, { image: png.toString('base64') }),
    await fetch(`${server.url}/embed/image`, { method: 'POST', body: form }),
    await fetch(`${server.url}/embed/image`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: png }),
  ];
  for (const res of answers) {
    t.equal(res.status, 200);
    const { queue, inference, decode, total } = timings(res.headers);
    t.ok(decode! > 0 && inference! > 0 && queue! >= 0, `decode ${decode}, queue ${queue}, inference ${inference}`);
    t.ok(total! >= decode! + queue! + inference!, `total ${total} holds decode + queue + inference`);
  }
});

t.test('POST /v1/embeddings: decode time only when the input has images', async (t) => {
  const texts = await postJson(`${server.url}/v1/embeddings`, { input: ['a dog', 'a cat'] });
  t.equal(timings(texts.headers).decode, undefined);
  t.ok(timings(texts.headers).inference! > 0);
  const mixed = await postJson(`${server.url}/v1/embeddings`, {
    input: ['a dog', { image: `data:image/png;base64,${png.toString('base64')}` }],
  });
  const m = timings(mixed.headers);
  t.ok(m.decode! > 0 && m.inference! > 0 && m.total! >= m.decode!, JSON.stringify(m));
});

t.test('x-queue-time is the time in the batch queue: a lone item waits out the batch wait', async (t) => {
  const res = await postJson(`${waiting.url}/embed/text`, { text: 'a dog' });
  const { queue, total } = timings(res.headers);
  t.ok(queue! >= 40, `queued ${queue} ms with a 40 ms batch wait`);
  t.ok(total! >= queue!);
});

t.test('errors carry no timing headers', async (t) => {
  const res = await postJson(`${server.url}/embed/text`, { text: 'a', model: 'nope' });
  t.equal(res.status, 404);
  t.same(timings(res.headers), { queue: undefined, inference: undefined, decode: undefined, total: undefined });
});
