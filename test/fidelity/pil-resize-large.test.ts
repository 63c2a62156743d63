// The resampler (WebAssembly kernels, and the JavaScript fallback) against Pillow 9.4's own output at
// the sizes photos come in, extreme aspect ratios and one-pass cases: synthetic inputs computed here
// by the formula of test/fixtures/pil-resize/make_pil_resize_large.py (their SHA-256 checked against
// the generator's), outputs compared by SHA-256 with Pillow's.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { resizeBicubicRGB, resizeBicubicRGBScalar } from '../../src/imaging/pil-resize.js';
import { FIXTURES } from '../../kit/golden.js';

interface Case {
  in: [number, number];
  out: [number, number];
  input_sha256: string;
  sha256: string;
}
const { pillow, cases } = JSON.parse(readFileSync(join(FIXTURES, 'pil-resize', 'pil-resize-large.json'), 'utf8')) as {
  pillow: string;
  cases: Case[];
};
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** The generator's image: x/y gradients plus hashed noise in [-64, 63], clipped; the top-left fifth white. */
function synthetic(w: number, h: number): Uint8Array {
  const img = new Uint8Array(w * h * 3);
  const cornerW = Math.max(1, Math.floor(w / 5));
  const cornerH = Math.max(1, Math.floor(h / 5));
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        let v = Math.imul(x, 73856093) ^ Math.imul(y, 19349663) ^ Math.imul(c, 83492791);
        v = Math.imul(v ^ (v >>> 13), 0x5bd1e995);
        v = v ^ (v >>> 15);
        const noise = (v & 127) - 64;
        const grad =
          c === 0
            ? Math.floor((x * 255) / Math.max(w - 1, 1))
            : c === 1
              ? Math.floor((y * 255) / Math.max(h - 1, 1))
              : (x + y) % 256;
        img[(y * w + x) * 3 + c] = y < cornerH && x < cornerW ? 255 : Math.min(255, Math.max(0, grad + noise));
      }
    }
  }
  return img;
}

for (const c of cases) {
  const [w, h] = c.in;
  const [ow, oh] = c.out;
  t.test(`${w}×${h} → ${ow}×${oh} (Pillow ${pillow})`, async (t) => {
    const src = synthetic(w, h);
    t.equal(sha256(src), c.input_sha256, 'the input is the generator’s');
    t.equal(sha256(resizeBicubicRGB(src, w, h, ow, oh)), c.sha256, 'resizeBicubicRGB: Pillow’s bytes');
    // the fallback is slow on the largest inputs: the smaller half of the cases suffice for it
    if (w * h <= 2_000_000)
      t.equal(sha256(resizeBicubicRGBScalar(src, w, h, ow, oh)), c.sha256, 'resizeBicubicRGBScalar: Pillow’s bytes');
    t.equal(sha256(src), c.input_sha256, 'the source is left as it was');
  });
}

t.test(
  'the WebAssembly passes agree with the JavaScript ones at random sizes (odd tap counts, band edges)',
  async (t) => {
    let seed = 20261206;
    const next = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    let differing = 0;
    for (let i = 0; i < 80; i++) {
      const w = 1 + Math.floor(next() ** 2 * 900);
      const h = 1 + Math.floor(next() ** 2 * 300);
      const ow = 1 + Math.floor(next() * 300);
      const oh = 1 + Math.floor(next() * 300);
      const src = new Uint8Array(w * h * 3);
      for (let j = 0; j < src.length; j++) src[j] = next() < 0.2 ? (next() < 0.5 ? 0 : 255) : Math.floor(next() * 256);
      const a = resizeBicubicRGB(src, w, h, ow, oh);
      const b = resizeBicubicRGBScalar(src, w, h, ow, oh);
      if (!Buffer.from(a).equals(b)) {
        differing++;
        t.fail(`${w}×${h} → ${ow}×${oh} differs`);
      }
    }
    t.equal(differing, 0, 'no size differs');
  },
);

t.test('a tall image whose intermediate outgrows the kept memory, then a small one', async (t) => {
  // 60000 rows × 384 px: a 69 MB intermediate, past the 64 MB the kernels' memory keeps
  const tall = synthetic(20, 60000);
  t.ok(
    Buffer.from(resizeBicubicRGB(tall, 20, 60000, 384, 384)).equals(resizeBicubicRGBScalar(tall, 20, 60000, 384, 384)),
  );
  const small = synthetic(50, 40);
  t.ok(Buffer.from(resizeBicubicRGB(small, 50, 40, 384, 384)).equals(resizeBicubicRGBScalar(small, 50, 40, 384, 384)));
});
