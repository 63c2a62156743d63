// Seeded, bounded fuzzing of every input form: hundreds of mutated and hand-made bad inputs. Each
// must get an answer that is 200 or a 4xx JSON error (never a 5xx, never a hang); afterwards the
// server is ready, still gives the golden vectors, and its memory is bounded.

import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import t from 'tap';
import { mulberry32 } from '../../src/convert/synth.js';
import { decodeBmp } from '../../src/imaging/bmp.js';
import { readGifFirstFrame } from '../../src/imaging/gif.js';
import { decodeImage } from '../../src/imaging/decode.js';
import { cosine, DECODE_DIR, golden, IMAGES_DIR, TOL } from '../../kit/golden.js';
import { cleanupTinyModel, startServer } from '../../kit/server.js';

// Seeded: the same inputs every run.
const rand = mulberry32(20261127);
const int = (n: number): number => Math.floor(rand() * n);

const server = await startServer({
  maxItems: 64,
  maxTextChars: 10000,
  maxImagePixels: 20_000_000,
  allowPrivateUrls: true,
  urlTimeoutMs: 3000,
  decodeThreads: 2,
});

// Mutated bytes are served by URL from here too.
const blobs = new Map<string, Buffer>();
const files = createServer((req, res) => {
  const b = blobs.get(req.url ?? '');
  if (!b) return res.writeHead(404).end();
  res.writeHead(200, { 'content-type': 'image/jpeg' }).end(b);
});
files.listen(0, '127.0.0.1');
await once(files, 'listening');
const filesUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;

t.teardown(async () => {
  await server.close();
  files.closeAllConnections();
  files.close();
  await cleanupTinyModel();
});

const statuses = new Map<number, number>();
let tried = 0;

async function send(path: string, init: RequestInit, label: string, expectOk?: boolean): Promise<number> {
  const res = await fetch(server.url + path, { method: 'POST', signal: AbortSignal.timeout(20_000), ...init });
  const text = await res.text();
  tried++;
  statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
  if (res.status >= 500 || (res.status !== 200 && !(res.status >= 400 && res.status < 500))) {
    throw new Error(`${label}: HTTP ${res.status} ${text.slice(0, 300)}`);
  }
  if (res.status !== 200) {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (!body.error?.code || !body.error.message)
      throw new Error(`${label}: ${res.status} without the JSON error shape: ${text.slice(0, 200)}`);
  }
  if (expectOk === true && res.status !== 200)
    throw new Error(`${label}: expected 200, got ${res.status} ${text.slice(0, 200)}`);
  if (expectOk === false && res.status === 200) throw new Error(`${label}: expected a 4xx, got 200`);
  return res.status;
}

const json = (body: unknown): RequestInit => ({
  headers: { 'content-type': 'application/json' },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});

/** One image through one of the five input forms, chosen by `i`. */
async function sendImage(bytes: Buffer, i: number, label: string, expectOk?: boolean): Promise<number> {
  switch (i % 5) {
    case 0: {
      const form = new FormData();
      // lying content types on purpose: the service sniffs the bytes
      form.append(
        'file',
        new Blob([bytes], { type: ['image/png', 'image/jpeg', 'application/octet-stream', 'text/plain'][i % 4]! }),
        `f${i}`,
      );
      return send('/embed/image', { body: form }, `${label} (multipart)`, expectOk);
    }
    case 1:
      return send('/embed/image', json({ image: bytes.toString('base64') }), `${label} (base64)`, expectOk);
    case 2:
      return send(
        '/embed/image',
        json({ images: [`data:image/png;base64,${bytes.toString('base64')}`] }),
        `${label} (data URI)`,
        expectOk,
      );
    case 3: {
      const key = `/blob-${i}`;
      blobs.set(key, bytes);
      return send('/embed/image', json({ url: filesUrl + key }), `${label} (URL)`, expectOk);
    }
    default:
      return send(
        '/embed/image',
        { headers: { 'content-type': 'image/jpeg' }, body: bytes },
        `${label} (raw body)`,
        expectOk,
      );
  }
}

function mutate(b: Buffer, kind: number): Buffer {
  const out = Buffer.from(b);
  switch (kind % 4) {
    case 0:
      return out.subarray(0, int(out.length)); // truncated
    case 1: {
      for (let k = 0; k < 1 + int(8); k++) {
        const j = int(out.length); // bit flips
        out[j] = out[j]! ^ (1 << int(8));
      }
      return out;
    }
    case 2: {
      const at = int(Math.min(out.length, 64)); // header damage
      for (let k = at; k < Math.min(out.length, at + 16); k++) out[k] = int(256);
      return out;
    }
    default:
      return Buffer.concat([out.subarray(0, int(out.length)), Buffer.from(Array.from({ length: 64 }, () => int(256)))]); // garbage tail
  }
}

/** A PNG whose header claims width × height but whose data is tiny: a decompression bomb. */
function bombPng(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td) >>> 0);
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(1 << 16))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A BMP file: 14-byte file header, a 40-byte info header (fields overridable), then `rest`. */
function bmpFile(
  fields: {
    width?: number;
    height?: number;
    bits?: number;
    compression?: number;
    colors?: number;
    offset?: number;
    headerSize?: number;
  },
  rest: Buffer,
): Buffer {
  const b = Buffer.alloc(54);
  b.write('BM', 0, 'latin1');
  b.writeUInt32LE(54 + rest.length, 2);
  b.writeUInt32LE(fields.offset ?? 54, 10);
  b.writeUInt32LE(fields.headerSize ?? 40, 14);
  b.writeInt32LE(fields.width ?? 4, 18);
  b.writeInt32LE(fields.height ?? 4, 22);
  b.writeUInt16LE(1, 26);
  b.writeUInt16LE(fields.bits ?? 24, 28);
  b.writeUInt32LE(fields.compression ?? 0, 30);
  b.writeUInt32LE(fields.colors ?? 0, 46);
  return Buffer.concat([b, rest]);
}
const greyPalette = Buffer.concat(Array.from({ length: 256 }, (_, i) => Buffer.from([i, 255 - i, i, 0])));

const rssBefore = process.memoryUsage().rss;
const photo = await readFile(join(IMAGES_DIR, 'photo.jpg'));
const small = await sharp(photo).resize(64, 48).toBuffer();
const corpus: [string, Buffer][] = [
  ['jpeg', await sharp(small).jpeg().toBuffer()],
  ['png', await sharp(small).png().toBuffer()],
  ['webp', await sharp(small).webp().toBuffer()],
  ['gif', await sharp(small).gif().toBuffer()],
  ['tiff', await sharp(small).tiff().toBuffer()],
];
// Hand-decoded or hand-converted kinds (bmp.ts, cmyk.ts, gif.ts), from the PIL decode fixtures.
const decodeCase = (f: string) => readFile(join(DECODE_DIR, 'cases', f));
const decodeCorpus: [string, Buffer][] = [];
for (const f of [
  'bmp1_colour.bmp',
  'bmp4.bmp',
  'bmp8.bmp',
  'bmp4_rle.bmp',
  'bmp8_rle.bmp',
  'bmp16_565.bmp',
  'bmp24_topdown.bmp',
  'bmp32_bgra.bmp',
  'bmp4_os2.bmp',
  'dib24.dib',
  'cmyk_adobe.jpg',
  'ycck.jpg',
  'cmyk.tif',
  'gif_frame_offset_transparent.gif',
]) {
  decodeCorpus.push([f, await decodeCase(f)]);
}

t.test('valid unusual images are embedded', async (t) => {
  const unusual: [string, Buffer][] = [
    ...corpus,
    ['CMYK JPEG', await sharp(small).toColourspace('cmyk').jpeg().toBuffer()],
    ['16-bit PNG', await sharp(small).toColourspace('rgb16').png().toBuffer()],
    ['palette PNG', await sharp(small).png({ palette: true }).toBuffer()],
    ['grey + alpha PNG', await sharp(small).greyscale().ensureAlpha(0.5).png().toBuffer()],
    [
      'animated GIF',
      await sharp([small, await sharp(small).negate().toBuffer()], { join: { animated: true } })
        .gif()
        .toBuffer(),
    ],
    [
      '1×1 PNG',
      await sharp({ create: { width: 1, height: 1, channels: 3, background: '#ff0000' } })
        .png()
        .toBuffer(),
    ],
    ...decodeCorpus,
    ['CMYK JPEG without Adobe marker', await decodeCase('cmyk_no_adobe.jpg')],
    ['RLE8 running past its rows', await decodeCase('bmp8_rle_overrun.bmp')],
    // PIL decodes this too: deltas fill the image with index 0
    [
      'RLE8 of deltas far past the image',
      bmpFile(
        { bits: 8, compression: 1, offset: 54 + 1024, width: 300, height: 300 },
        Buffer.concat([greyPalette, Buffer.from(Array(64).fill([0, 2, 255, 255]).flat())]),
      ),
    ],
  ];
  for (const [i, [label, bytes]] of unusual.entries()) await sendImage(bytes, i, label, true);
  t.pass(`${unusual.length} unusual images embedded through every input form`);
});

t.test('mutated images: 200 or a 4xx, never a 5xx or a hang', async (t) => {
  let i = 0;
  for (const [format, bytes] of corpus) {
    for (let k = 0; k < 48; k++, i++) await sendImage(mutate(bytes, k), i, `${format} mutation ${k}`);
  }
  for (const [file, bytes] of decodeCorpus) {
    for (let k = 0; k < 24; k++, i++) await sendImage(mutate(bytes, k), i, `${file} mutation ${k}`);
  }
  t.pass(`${i} mutated images`);
});

t.test('in process: 3000 mutated BMP, DIB and GIF files decode or fail with 413/415/422, never throw', async (t) => {
  const seen = new Map<string, number>();
  const parsed = decodeCorpus.filter(([f]) => /\.(bmp|dib|gif)$/.test(f));
  for (let k = 0; k < 3000; k++) {
    const [file, bytes] = parsed[k % parsed.length]!;
    const m = k % 5 === 4 ? Buffer.from(bytes) : mutate(bytes, k);
    if (k % 5 === 4)
      m.writeUInt32LE(
        [0xffffffff, 0x80000000, int(65536), 0, 1, 0xff000000 + int(1 << 24)][int(6)]!,
        int(Math.min(m.length - 4, 60)),
      );
    // the hand-written parsers called directly, so that a throw fails the test (decodeImage would make it a 422)
    if (file.endsWith('.gif')) readGifFirstFrame(m);
    const r = file.endsWith('.gif')
      ? await decodeImage(m, 20_000_000)
      : decodeBmp(m, 20_000_000, file.endsWith('.bmp'));
    const key = r.ok ? '200' : String(r.status);
    if (!r.ok && !(r.status === 413 || r.status === 415 || r.status === 422))
      throw new Error(`${file} mutation ${k}: ${JSON.stringify(r)}`);
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  t.comment(JSON.stringify(Object.fromEntries(seen)));
  t.ok((seen.get('200') ?? 0) > 0 && (seen.get('422') ?? 0) > 0, 'both decodes and refusals among the mutants');
});

t.test('hand-made bad images get 4xx', async (t) => {
  const bad: [string, Buffer][] = [
    ['empty', Buffer.alloc(0)],
    ['zero bytes', Buffer.alloc(4096)],
    ['random junk', Buffer.from(Array.from({ length: 2048 }, () => int(256)))],
    ['PNG signature only', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])],
    ['JPEG SOI only', Buffer.from([0xff, 0xd8, 0xff])],
    ['30000×30000 PNG bomb', bombPng(30000, 30000)],
    ['1×100000000 PNG', bombPng(1, 100_000_000)],
    ['SVG', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="99999" height="99999"/>')],
    ['PDF', Buffer.from('%PDF-1.4\n%âãÏÓ\n')],
    ['HTML', Buffer.from('<html><body>not an image</body></html>')],
    // BMP headers that lie
    ['BMP 2147483647×2147483647', bmpFile({ width: 0x7fffffff, height: 0x7fffffff }, Buffer.alloc(16))],
    ['BMP 1×100000000', bmpFile({ width: 1, height: 100_000_000 }, Buffer.alloc(16))],
    ['BMP top-down 2×16777216', bmpFile({ width: 2, height: -16_777_216 }, Buffer.alloc(16))],
    ['BMP 4000×4000, 16 bytes of pixels', bmpFile({ width: 4000, height: 4000 }, Buffer.alloc(16))],
    ['BMP zero width', bmpFile({ width: 0 }, Buffer.alloc(64))],
    ['BMP pixel offset past the end', bmpFile({ offset: 0xffffffff }, Buffer.alloc(64))],
    ['BMP pixel offset inside the header', bmpFile({ offset: 20 }, Buffer.alloc(8))],
    ['BMP 8-bit, 4294967295 colours', bmpFile({ bits: 8, colors: 0xffffffff }, Buffer.alloc(64))],
    ['BMP 8-bit, 70000 colours', bmpFile({ bits: 8, colors: 70000 }, Buffer.alloc(64))],
    ['BMP 8-bit, 300-colour palette', bmpFile({ bits: 8, colors: 300, offset: 54 + 1200 }, Buffer.alloc(1200 + 16))],
    ['BMP 8-bit, palette cut short', bmpFile({ bits: 8, colors: 256 }, greyPalette.subarray(0, 100))],
    ['BMP header size 0', bmpFile({ headerSize: 0 }, Buffer.alloc(64))],
    ['BMP header size 4294967295', bmpFile({ headerSize: 0xffffffff }, Buffer.alloc(64))],
    ['BMP 0 bits', bmpFile({ bits: 0 }, Buffer.alloc(64))],
    ['BMP 64 bits', bmpFile({ bits: 64 }, Buffer.alloc(256))],
    ['BMP compression 99', bmpFile({ compression: 99 }, Buffer.alloc(64))],
    ['BMP bit fields, masks cut off', bmpFile({ bits: 32, compression: 3 }, Buffer.alloc(4))],
    [
      'BMP RLE8, absolute run cut off',
      bmpFile(
        { bits: 8, compression: 1, offset: 54 + 1024 },
        Buffer.concat([greyPalette, Buffer.from([0, 255, 1, 2, 3])]),
      ),
    ],
    [
      'BMP RLE8, runs of 255 past every row',
      bmpFile(
        { bits: 8, compression: 1, offset: 54 + 1024 },
        Buffer.concat([greyPalette, Buffer.from(Array(64).fill([255, 7]).flat())]),
      ),
    ],
    [
      'BMP RLE4, end of bitmap first',
      bmpFile(
        { bits: 4, compression: 2, offset: 54 + 64 },
        Buffer.concat([greyPalette.subarray(0, 64), Buffer.from([0, 1])]),
      ),
    ],
    ['BMP RLE in a 24-bit image', bmpFile({ bits: 24, compression: 1 }, Buffer.from([4, 1, 0, 0, 0, 1]))],
    ['BM and 12 bytes', Buffer.from('BM\0\0\0\0\0\0\0\0\0\0\0\0')],
    ['DIB header, nothing else', Buffer.from([40, 0, 0, 0, 4, 0, 0, 0])],
  ];
  for (let i = 0; i < bad.length * 5; i++) {
    const [label, bytes] = bad[i % bad.length]!;
    await sendImage(bytes, i, label, false);
  }
  t.pass(`${bad.length * 5} bad images through every form`);
});

t.test('bad base64, data URIs, URLs and multipart bodies', async (t) => {
  const cases: [string, RequestInit][] = [
    ['invalid base64', json({ image: '@@@@' })],
    ['base64 with one char too many', json({ image: 'QUJDRA' + 'A' })],
    ['data URI without comma', json({ image: 'data:image/png;base64' })],
    ['data URI not base64', json({ image: 'data:image/png,%89PNG' })],
    ['data URI, empty payload', json({ image: 'data:image/png;base64,' })],
    ['images: not an array', json({ images: 'abc' })],
    ['images: numbers', json({ images: [1, 2, 3] })],
    ['url: not a URL', json({ url: 'not a url' })],
    ['url: empty', json({ url: '' })],
    ['url: huge', json({ url: 'http://a.test/' + 'x'.repeat(100_000) })],
    ['urls: 100 000 items', json({ urls: Array(100_000).fill('http://a.test/x.jpg') })],
    [
      'multipart: truncated',
      {
        headers: { 'content-type': 'multipart/form-data; boundary=XyZ' },
        body: '--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\nabc',
      },
    ],
    ['multipart: no boundary', { headers: { 'content-type': 'multipart/form-data' }, body: 'abc' }],
    ['multipart: no parts', { headers: { 'content-type': 'multipart/form-data; boundary=XyZ' }, body: '--XyZ--\r\n' }],
    [
      'multipart: only fields',
      {
        headers: { 'content-type': 'multipart/form-data; boundary=XyZ' },
        body: '--XyZ\r\nContent-Disposition: form-data; name="model"\r\n\r\ntiny\r\n--XyZ--\r\n',
      },
    ],
    [
      'multipart: bad encoding_format',
      {
        headers: { 'content-type': 'multipart/form-data; boundary=XyZ' },
        body: '--XyZ\r\nContent-Disposition: form-data; name="encoding_format"\r\n\r\nhex\r\n--XyZ--\r\n',
      },
    ],
    ['wrong content type', { headers: { 'content-type': 'application/xml' }, body: '<a/>' }],
    ['no content type', { body: new Uint8Array([1, 2, 3]) }],
  ];
  for (const [label, init] of cases) await send('/embed/image', init, label, false);
  t.pass(`${cases.length} malformed image requests`);
});

t.test('hostile and odd JSON texts', async (t) => {
  const deep = '['.repeat(100_000) + ']'.repeat(100_000);
  const cases: [string, string | object, boolean | undefined][] = [
    ['1 MB string', { text: 'a'.repeat(1 << 20) }, false],
    ['100 000 texts', { texts: Array(100_000).fill('a') }, false],
    ['deeply nested JSON', `{"texts": ${deep}}`, false],
    ['__proto__ key', '{"text": "a", "__proto__": {"polluted": true}}', false],
    ['constructor.prototype key', '{"text": "a", "constructor": {"prototype": {"polluted": true}}}', false],
    ['lone surrogates', '{"text": "a \\ud800 b \\udfff"}', true],
    ['NUL and control characters', { text: 'a\u0000b\u0007c\u001b[31m' }, true],
    ['empty string', { text: '' }, true],
    ['only whitespace', { texts: [' ', '\t\n', '\u3000'] }, true],
    ['RTL and combining marks', { text: 'שלום e\u0301\u0301\u0301 مرحبا' }, true],
    ['emoji ZWJ sequences', { text: '👩‍👩‍👧‍👦'.repeat(500) }, true],
    ['number instead of string', { text: 42 }, false],
    ['null', { text: null }, false],
    ['texts with a null', { texts: ['a', null] }, false],
    ['empty texts array', { texts: [] }, false],
    ['empty object', {}, false],
    ['JSON array body', [1, 2], false],
    ['JSON string body', '"hello"', false],
    ['invalid JSON', '{"text": ', false],
    ['trailing garbage', '{"text": "a"} xyz', false],
    ['caption_cleanup not boolean', { text: 'a', caption_cleanup: 'yes' }, false],
    ['encoding_format unknown', { text: 'a', encoding_format: 'hex' }, false],
  ];
  for (const [label, body, ok] of cases) await send('/embed/text', json(body), label, ok);
  // invalid UTF-8 inside a JSON string: decoded with replacement characters, never a crash
  await send(
    '/embed/text',
    {
      headers: { 'content-type': 'application/json' },
      body: Buffer.concat([Buffer.from('{"text": "a'), Buffer.from([0xc3, 0x28, 0xff, 0xfe]), Buffer.from('"}')]),
    },
    'invalid UTF-8',
  );
  // random JSON-ish strings
  const alphabet = '{}[]":,\\ abtexs0123456789-.truefalsnul\u0000\u00ff\ud83d';
  for (let i = 0; i < 150; i++) {
    const s = Array.from({ length: 1 + int(60) }, () => alphabet[int(alphabet.length)]).join('');
    await send(i % 2 ? '/embed/text' : '/v1/embeddings', json(s), `random JSON ${i}`);
  }
  const ok = await fetch(`${server.url}/embed/text`, { method: 'POST', ...json({ text: 'a' }) });
  t.equal(ok.status, 200);
  t.notOk(({} as Record<string, unknown>).polluted, 'no prototype pollution');
});

t.test('afterwards: ready, correct, memory bounded', async (t) => {
  t.equal((await fetch(`${server.url}/readyz`)).status, 200, 'ready');
  const g = golden.images[0]!;
  const res = await fetch(`${server.url}/embed/image`, {
    method: 'POST',
    ...json({ image: (await readFile(join(IMAGES_DIR, g.file))).toString('base64') }),
  });
  const body = (await res.json()) as { embeddings: number[][] };
  t.ok(cosine(body.embeddings[0]!, g.embedding) >= TOL.imageCos, 'golden image vector');
  const grown = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
  t.ok(grown < 400, `RSS grew by ${grown.toFixed(0)} MB over the run`);
  t.comment(
    `inputs tried: ${tried}; statuses: ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`,
  );
});
