// The hand-written resampler against Pillow's own output (fixtures made by
// test/fixtures/pil-resize/make_pil_resize.py): identical bytes, including upscaling, strong
// downscaling, one-pass cases and clipping.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { resizeBicubicRGB } from '../../src/imaging/pil-resize.js';
import { FIXTURES } from '../../kit/golden.js';

const dir = join(FIXTURES, 'pil-resize');
const blob = readFileSync(join(dir, 'pil-resize.bin'));
const index: { cases: { in: [number, number]; out: [number, number]; in_offset: number; out_offset: number }[] } =
  JSON.parse(readFileSync(join(dir, 'pil-resize.json'), 'utf8'));

for (const c of index.cases) {
  t.test(`${c.in.join('×')} → ${c.out.join('×')}`, async (t) => {
    const [w, h] = c.in;
    const [ow, oh] = c.out;
    const src = blob.subarray(c.in_offset, c.in_offset + w * h * 3);
    const want = blob.subarray(c.out_offset, c.out_offset + ow * oh * 3);
    const got = resizeBicubicRGB(new Uint8Array(src), w, h, ow, oh);
    let diff = 0;
    for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) diff++;
    t.equal(diff, 0, `${diff} of ${want.length} bytes differ from Pillow`);
  });
}
