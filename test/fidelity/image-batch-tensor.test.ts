// The image tower's input tensor is built on the session's worker, from resized RGB, in a buffer kept
// from batch to batch: a smaller batch after a larger one, and two runs sent at once, must each give
// every image its golden vector.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { resolveConfig } from '../../src/service/config.js';
import { preprocessImage } from '../../src/imaging/decode.js';
import { ModelPool } from '../../src/inference/model-pool.js';
import { cosine, golden, IMAGES_DIR, TOL } from '../../kit/golden.js';
import { cleanupTinyModel, tinyModel } from '../../kit/server.js';

const pool = await ModelPool.load([(await tinyModel()).dir], resolveConfig({}));
const model = pool.get();
t.teardown(async () => {
  await pool.release();
  await cleanupTinyModel();
});

const size = model.manifest.preprocessing.image.size;
const rgb = await Promise.all(
  golden.images.map(async (g) => {
    const r = await preprocessImage(await readFile(join(IMAGES_DIR, g.file)), { size, maxPixels: 1e8 });
    if (!r.ok) throw new Error(r.message);
    return r.rgb;
  }),
);
/** Fresh copies: runImages hands its buffers over to the worker. */
const images = (...idx: number[]) => idx.map((i) => rgb[i]!.slice());

function check(t: Test, vectors: Float32Array[], idx: number[], label: string): void {
  t.equal(vectors.length, idx.length, `${label}: one vector per image`);
  vectors.forEach((v, k) => {
    const g = golden.images[idx[k]!]!;
    const cos = cosine(v, g.embedding);
    t.ok(cos >= TOL.imageCos, `${label} ${g.file}: cosine ${cos.toFixed(7)}`);
  });
}

t.test('batches of different sizes reuse the buffer without mixing images', async (t) => {
  const n = golden.images.length;
  t.ok(n >= 3, 'enough fixture images');
  const all = [...Array(n).keys()];
  check(t, await model.runImages(images(...all)), all, 'whole set');
  check(t, await model.runImages(images(n - 1)), [n - 1], 'then the last alone');
  check(t, await model.runImages(images(1, 0)), [1, 0], 'then two, reversed');
});

t.test('two runs sent at once each get their own pixels', async (t) => {
  const [a, b] = await Promise.all([model.runImages(images(0, 1)), model.runImages(images(2))]);
  check(t, a, [0, 1], 'first');
  check(t, b, [2], 'second');
});

t.test('the caller no longer holds the pixels it handed over', async (t) => {
  const mine = images(0);
  await model.runImages(mine);
  t.equal(mine[0]!.byteLength, 0, 'transferred, not copied');
});
