// Image preprocessing against the ALBEF reference: per-image pixel means and, through the converted
// tiny model, the image embeddings of golden.json.

import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import t from 'tap';
import { convertCheckpoint } from '../../src/convert/convert.js';
import { preprocessImage, sniffImageFormat } from '../../src/imaging/decode.js';
import { normalizeToCHW } from '../../src/imaging/pixel-normalize.js';
import { IMAGE_MEAN, IMAGE_STD } from '../../src/core/model-manifest.js';
import { cosine, golden, IMAGES_DIR, TINY_ARCH, TINY_CHECKPOINT, TOL } from '../../kit/golden.js';

const dir = await mkdtemp(join(tmpdir(), 'albef-img-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
await convertCheckpoint({ checkpoint: TINY_CHECKPOINT, out: join(dir, 'm'), archFile: TINY_ARCH });
const session = await ort.InferenceSession.create(join(dir, 'm', 'image.onnx'));
const size = golden.config.architecture.image_res;

for (const g of golden.images) {
  t.test(g.file, async (t) => {
    const r = await preprocessImage(await readFile(join(IMAGES_DIR, g.file)), { size, maxPixels: 1e8 });
    if (!r.ok) throw new Error(r.message);
    const pixels = normalizeToCHW(r.rgb, size, IMAGE_MEAN, IMAGE_STD);
    const plane = size * size;
    const means = [0, 1, 2].map((c) => pixels.subarray(c * plane, (c + 1) * plane).reduce((a, b) => a + b, 0) / plane);
    means.forEach((m, c) =>
      t.ok(Math.abs(m - g.pixel_mean[c]!) <= TOL.pixelMean, `channel ${c} mean ${m.toFixed(6)} vs ${g.pixel_mean[c]}`),
    );
    const out = await session.run({ pixel_values: new ort.Tensor('float32', pixels, [1, 3, size, size]) });
    const cos = cosine(out.embeddings!.data as Float32Array, g.embedding);
    t.ok(cos >= TOL.imageCos, `embedding cosine ${cos.toFixed(7)}`);
  });
}

t.test('format sniffing and refusals', async (t) => {
  t.equal(sniffImageFormat(await readFile(join(IMAGES_DIR, 'photo.jpg'))), 'jpeg');
  t.equal(sniffImageFormat(await readFile(join(IMAGES_DIR, 'tiny.png'))), 'png');
  t.equal(sniffImageFormat(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>')), undefined);
  const opts = { size, maxPixels: 1e8 };
  t.match(await preprocessImage(Buffer.from('<svg/>'), opts), { ok: false, status: 415 });
  const png = await readFile(join(IMAGES_DIR, 'shapes.png'));
  t.match(await preprocessImage(png.subarray(0, 200), opts), { ok: false, status: 422 }, 'truncated PNG');
  t.match(await preprocessImage(png, { ...opts, maxPixels: 1000 }), { ok: false, status: 413 }, 'over the pixel limit');
});
