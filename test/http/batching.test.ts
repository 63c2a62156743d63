// 64 concurrent mixed requests get the same vectors as the same requests made one by one, and the
// batch-size histogram shows that batches of more than one item were formed; with two sessions per
// tower running side by side, every vector is still the golden one.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { cosine, golden, IMAGES_DIR, TOL } from '../../kit/golden.js';
import { cleanupTinyModel, postJson, startServer } from '../../kit/server.js';

const server = await startServer({ batchWaitMs: 10, maxBatchImages: 8, maxBatchTexts: 16, decodeThreads: 2 });
t.teardown(async () => {
  await server.close();
  await cleanupTinyModel();
});

const images = await Promise.all(
  golden.images.map(async (g) => (await readFile(join(IMAGES_DIR, g.file))).toString('base64')),
);
type Req = { path: string; body: unknown };
const requests: Req[] = Array.from({ length: 64 }, (_, i) =>
  i % 2 === 0
    ? { path: '/embed/text', body: { text: golden.texts[i % golden.texts.length]!.text, caption_cleanup: i % 4 === 0 } }
    : { path: '/embed/image', body: { image: images[i % images.length] } },
);

const send = async (r: Req, url = server.url): Promise<number[]> => {
  const res = await postJson(url + r.path, r.body);
  if (res.status !== 200) throw new Error(`${r.path}: ${res.status} ${JSON.stringify(res.json)}`);
  return res.json.embeddings[0];
};

t.test('concurrent results equal sequential results', async (t) => {
  const sequential: number[][] = [];
  for (const r of requests) sequential.push(await send(r));
  const concurrent = await Promise.all(requests.map((r) => send(r)));
  const worst = Math.min(...concurrent.map((v, i) => cosine(v, sequential[i]!)));
  t.ok(worst >= 0.99999, `worst cosine between batched and single runs: ${worst.toFixed(8)}`);

  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  for (const tower of ['text', 'image']) {
    const ones = Number(
      metrics.match(new RegExp(`albef_batch_size_bucket\\{le="1",model="tiny",tower="${tower}"\\} (\\d+)`))?.[1],
    );
    const count = Number(
      metrics.match(new RegExp(`albef_batch_size_count\\{model="tiny",tower="${tower}"\\} (\\d+)`))?.[1],
    );
    const sum = Number(
      metrics.match(new RegExp(`albef_batch_size_sum\\{model="tiny",tower="${tower}"\\} (\\d+)`))?.[1],
    );
    t.ok(
      count > ones,
      `${tower}: ${count - ones} of ${count} batches had more than one item (mean ${(sum / count).toFixed(2)})`,
    );
  }
});

t.test('two sessions per tower: every vector is the golden one, concurrent or one by one', async (t) => {
  const lanes = await startServer({
    imageSessions: 2,
    textSessions: 2,
    intraOpThreads: 2,
    maxBatchImages: 2,
    maxBatchTexts: 4,
    decodeThreads: 2,
  });
  t.teardown(() => lanes.close());
  const models = await (await fetch(`${lanes.url}/models`)).json();
  t.match(models, { models: [{ name: 'tiny', sessions: { image: 2, text: 2 } }] });

  const expected = (i: number): number[] =>
    i % 2 === 0
      ? golden.texts[i % golden.texts.length]![i % 4 === 0 ? 'pre_caption' : 'raw'].embedding
      : golden.images[i % images.length]!.embedding;
  const check = (label: string, got: number[][]) => {
    const worst = Math.min(...got.map((v, i) => cosine(v, expected(i))));
    t.ok(worst >= TOL.imageCos, `${label}: worst cosine to the goldens ${worst.toFixed(7)}`);
  };
  const sequential: number[][] = [];
  for (const r of requests.slice(0, 8)) sequential.push(await send(r, lanes.url));
  check('one by one', sequential);
  check('64 at once', await Promise.all(requests.map((r) => send(r, lanes.url))));
});
