// The header read that lets a plain JPEG or PNG skip libvips' own (decode.ts plainHeader): over every
// fixture file, a size is given only where libvips reads 8-bit pixels that are not CMYK, and it is
// libvips' size; and a lone image decoded through the worker pool, warmed up or not, is the same.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import { DecodePool } from '../../src/imaging/decode-pool.js';
import { plainHeader, preprocessImage, sniffImageFormat } from '../../src/imaging/decode.js';
import { DECODE_DIR, IMAGES_DIR } from '../../kit/golden.js';

const files = [
  ...readdirSync(IMAGES_DIR).map((f) => join(IMAGES_DIR, f)),
  ...readdirSync(join(DECODE_DIR, 'cases')).map((f) => join(DECODE_DIR, 'cases', f)),
  join(DECODE_DIR, 'cmyk.jpg'),
];

t.test('a size only for 8-bit grey or RGB(A) JPEG and PNG, and libvips’ size', async (t) => {
  let plain = 0;
  for (const file of files) {
    const bytes = readFileSync(file);
    const format = sniffImageFormat(bytes);
    if (!format) continue;
    const got = plainHeader(bytes, format);
    const meta = await sharp(bytes, { failOn: 'none' })
      .metadata()
      .catch(() => undefined);
    if (!got) {
      // what falls through must be something the general path has to look at
      if (meta && (format === 'jpeg' || format === 'png'))
        t.ok(meta.depth !== 'uchar' || meta.space === 'cmyk', `${file}: general path (${meta.space}, ${meta.depth})`);
      continue;
    }
    plain++;
    t.ok(format === 'jpeg' || format === 'png', `${file}: ${format}`);
    t.same(got, { width: meta?.width, height: meta?.height }, `${file}: libvips' stored size`);
    t.equal(meta?.depth, 'uchar', `${file}: 8-bit`);
    t.not(meta?.space, 'cmyk', `${file}: not CMYK`);
  }
  t.ok(plain >= 20, `${plain} plain files among the fixtures`);
});

t.test('truncated and odd headers take the general path', async (t) => {
  const photo = readFileSync(join(IMAGES_DIR, 'photo.jpg'));
  t.equal(plainHeader(photo.subarray(0, 40), 'jpeg'), undefined, 'cut before its frame header');
  t.same(plainHeader(photo, 'jpeg'), { width: 640, height: 480 });
  // markers without a length before the frame (TEM, RST0), read past as libjpeg does
  const withBare = Buffer.concat([photo.subarray(0, 2), Buffer.from([0xff, 0x01, 0xff, 0xd0]), photo.subarray(2)]);
  t.same(plainHeader(withBare, 'jpeg'), { width: 640, height: 480 }, 'bare markers skipped');
  t.match(await sharp(withBare).metadata(), { width: 640, height: 480 }, 'libvips reads the same');
  const png = readFileSync(join(IMAGES_DIR, 'tiny.png'));
  t.equal(plainHeader(png.subarray(0, 20), 'png'), undefined, 'cut inside IHDR');
  const zeroWidth = Buffer.from(png);
  zeroWidth.writeUInt32BE(0, 16);
  t.equal(plainHeader(zeroWidth, 'png'), undefined, 'no width');
  t.equal(plainHeader(photo, 'webp'), undefined, 'other formats');
  // over the pixel limit the general path says the (oriented) size
  t.match(await preprocessImage(photo, { size: 8, maxPixels: 1000 }), {
    ok: false,
    status: 413,
    message: 'image is 640×480 = 307200 pixels, over the limit of 1000',
  });
});

t.test('the worker pool, warmed up, gives what the function gives on this thread', async (t) => {
  const pool = new DecodePool(2);
  t.teardown(() => pool.close());
  await pool.warmup(96);
  for (const name of ['photo.jpg', 'rotated.jpg', 'gray16.png']) {
    const bytes = readFileSync(join(IMAGES_DIR, name));
    const here = await preprocessImage(bytes, { size: 96, maxPixels: 1e8 });
    if (!here.ok) throw new Error(here.message);
    const there = await pool.run(bytes, { size: 96, maxPixels: 1e8 });
    t.ok(Buffer.from(there.rgb).equals(here.rgb), `${name}: the same bytes`);
  }
});
