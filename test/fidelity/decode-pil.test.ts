// Decoding against PIL: the reference files (full-size RGB sha256 and the 96×96 resize, byte for
// byte) and every case of cases.json (PIL's full-size RGB, or PIL's failure and the service's status).

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import { decodeImage, preprocessImage } from '../../src/imaging/decode.js';
import { DECODE_DIR } from '../../kit/golden.js';

interface ReferenceCase {
  file: string;
  pil_mode: string;
  size: [number, number];
  rgb_sha256: string;
  resized: string;
}
interface PilCase {
  file: string;
  note: string;
  pil_mode?: string;
  size?: [number, number];
  rgb_sha256?: string;
  rgb?: string;
  spec_rgb_sha256?: string;
  pil_error?: string;
  status?: number;
}

const reference = JSON.parse(await readFile(join(DECODE_DIR, 'decode_golden.json'), 'utf8')) as {
  image_res: number;
  cases: ReferenceCase[];
};
const { cases } = JSON.parse(await readFile(join(DECODE_DIR, 'cases.json'), 'utf8')) as { cases: PilCase[] };
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const MAX = 1e8;

/** Where two RGB buffers first differ, for a readable failure. */
function firstDifference(a: Uint8Array, b: Uint8Array, width: number): string {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) {
      const p = Math.floor(i / 3);
      return `first at (${p % width}, ${Math.floor(p / width)}): ours ${a.subarray(p * 3, p * 3 + 3).join(',')}, PIL ${b.subarray(p * 3, p * 3 + 3).join(',')}`;
    }
  }
  return a.length === b.length ? 'none' : `lengths ${a.length} and ${b.length}`;
}

t.test('reference files: full-size RGB and 96×96 resize identical to PIL', async (t) => {
  for (const c of reference.cases) {
    const bytes = await readFile(join(DECODE_DIR, c.file));
    const d = await decodeImage(bytes, MAX);
    if (!d.ok) throw new Error(`${c.file}: ${d.message}`);
    t.same([d.width, d.height], c.size, `${c.file} (PIL mode ${c.pil_mode}): size`);
    t.equal(sha256(d.rgb), c.rgb_sha256, `${c.file}: full-size RGB sha256`);
    const r = await preprocessImage(bytes, { size: reference.image_res, maxPixels: MAX });
    if (!r.ok) throw new Error(r.message);
    t.ok(
      Buffer.from(r.rgb).equals(await readFile(join(DECODE_DIR, c.resized))),
      `${c.file}: 96×96 resize byte for byte`,
    );
  }
});

t.test('every case of cases.json decodes as PIL does, or gets the documented error', async (t) => {
  const heif = Boolean(sharp.format.heif?.input?.buffer);
  for (const c of cases) {
    const d = await decodeImage(await readFile(join(DECODE_DIR, 'cases', c.file)), MAX);
    const label = `${c.file} (${c.note})`;
    if (c.pil_error) {
      t.match(
        d,
        { ok: false, status: c.status },
        `${label}: PIL fails (${c.pil_error}); the service answers ${c.status}`,
      );
      continue;
    }
    if (c.file.endsWith('.avif') && !heif) {
      t.match(d, { ok: false, status: 415 }, `${label}: this sharp build has no AVIF decoder`);
      continue;
    }
    if (!d.ok) {
      t.fail(`${label}: ${d.message}`);
      continue;
    }
    t.same([d.width, d.height], c.size, `${label}: size`);
    const pil = Buffer.from(c.rgb!, 'base64');
    if (c.spec_rgb_sha256) {
      // 16-bit grey: the contract (docs/fidelity.md) and golden.json take v >> 8 where PIL's convert('RGB') clips at 255
      t.equal(sha256(d.rgb), c.spec_rgb_sha256, `${label}: v >> 8 as the contract says (PIL would clip)`);
    } else if (c.file.endsWith('.avif')) {
      // libheif and Pillow's libavif convert YUV to RGB differently: documented, not PIL-exact
      let sum = 0;
      for (let i = 0; i < pil.length; i++) sum += Math.abs(pil[i]! - d.rgb[i]!);
      t.comment(`${label}: mean |Δ| to PIL ${(sum / pil.length).toFixed(2)} levels (not PIL-exact)`);
    } else {
      t.equal(
        sha256(d.rgb),
        c.rgb_sha256,
        `${label}: RGB identical to PIL (PIL mode ${c.pil_mode}); difference: ${firstDifference(d.rgb, pil, d.width)}`,
      );
    }
  }
});

t.test('BMP limits and refusals', async (t) => {
  const bmp = await readFile(join(DECODE_DIR, 'bmp24.bmp'));
  t.match(await decodeImage(bmp, 1000), { ok: false, status: 413 }, 'over the pixel limit, from the header');
  const huge = Buffer.from(bmp.subarray(0, 54));
  huge.writeUInt32LE(100_000, 18);
  huge.writeUInt32LE(100_000, 22);
  t.match(
    await decodeImage(huge, MAX),
    { ok: false, status: 413 },
    'a 100000×100000 header over a 54-byte file: 413 before any allocation',
  );
  huge.writeUInt32LE(5000, 18);
  huge.writeUInt32LE(5000, 22);
  t.match(await decodeImage(huge, MAX), { ok: false, status: 422 }, 'a 5000×5000 header with no pixel data: 422');
  t.match(await decodeImage(Buffer.from('BM'), MAX), { ok: false, status: 422 }, 'BM and nothing else');
});
