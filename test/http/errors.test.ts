// Every error class of the API (docs/errors.md) over real HTTP: the right status and JSON error shape, then a
// successful request on the same server (a bad request never harms the next one).

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { cosine, golden, IMAGES_DIR, TOL } from '../../kit/golden.js';
import {
  cleanupTinyModel,
  holdImagePlaces,
  postJson,
  startServer,
  startStaticServer,
  type TestServer,
} from '../../kit/server.js';

const photo = await readFile(join(IMAGES_DIR, 'photo.jpg'));
const tinyPng = await readFile(join(IMAGES_DIR, 'tiny.png'));
const shapes = await readFile(join(IMAGES_DIR, 'shapes.png')); // 420×300
const goodText = golden.texts[1]!;

const limited = await startServer({
  bodyLimitBytes: 64 * 1024,
  maxItems: 8,
  maxImagePixels: 100_000,
  maxTextChars: 500,
  maxQueueImages: 4,
  allowPrivateUrls: true,
});
const files = await startStaticServer(IMAGES_DIR, {
  '/broken': (res) => res.writeHead(500).end('upstream broken'),
});
t.teardown(async () => {
  await limited.close();
  await files.close();
  await cleanupTinyModel();
});

async function stillWorks(t: Test, server: TestServer, headers: Record<string, string> = {}) {
  const res = await postJson(`${server.url}/embed/text`, { text: goodText.text }, headers);
  t.equal(res.status, 200, 'a good request right after succeeds');
  t.ok(cosine(res.json.embeddings[0], goodText.pre_caption.embedding) >= TOL.textCos, 'with the right vector');
}

function isError(t: Test, res: { status: number; json: any }, status: number, code: string | RegExp, index?: number) {
  t.equal(res.status, status, `status ${status} (${JSON.stringify(res.json).slice(0, 160)})`);
  t.match(res.json, { error: { code, message: String } }, 'JSON error shape');
  t.type(res.json.error.request_id, 'string');
  if (index !== undefined) t.equal(res.json.error.index, index, `index ${index}`);
}

const cases: [
  string,
  number,
  string | RegExp,
  () => Promise<{ status: number; json: any; headers?: Headers }>,
  number?,
][] = [
  ['malformed JSON', 400, 'invalid_json', () => postJson(`${limited.url}/embed/text`, '{"text": "a dog"')],
  ['neither text nor texts', 400, 'bad_request', () => postJson(`${limited.url}/embed/text`, { model: 'tiny' })],
  [
    'text and texts together',
    400,
    'bad_request',
    () => postJson(`${limited.url}/embed/text`, { text: 'a', texts: ['b'] }),
  ],
  [
    'a number where a string belongs',
    400,
    'invalid_request',
    () => postJson(`${limited.url}/embed/text`, { texts: ['a', 5] }),
  ],
  [
    'an unknown field',
    400,
    'invalid_request',
    () => postJson(`${limited.url}/embed/text`, { text: 'a', colour: 'red' }),
  ],
  [
    'invalid base64',
    400,
    'invalid_image_data',
    () => postJson(`${limited.url}/embed/image`, { images: [tinyPng.toString('base64'), '!!!not base64!!!'] }),
    1,
  ],
  [
    'a non-http URL',
    400,
    'url_not_allowed',
    () => postJson(`${limited.url}/embed/image`, { url: 'file:///etc/passwd' }),
    0,
  ],
  [
    'an unknown model',
    404,
    'model_not_found',
    () => postJson(`${limited.url}/embed/text`, { text: 'a', model: 'nope' }),
  ],
  ['an unknown route', 404, 'not_found', () => postJson(`${limited.url}/embed/audio`, { text: 'a' })],
  [
    'a body over the limit',
    413,
    'body_too_large',
    () => postJson(`${limited.url}/embed/text`, { text: 'a'.repeat(100_000) }),
  ],
  ['too many items', 413, 'too_many_items', () => postJson(`${limited.url}/embed/text`, { texts: Array(9).fill('a') })],
  [
    'a text over the length limit',
    413,
    'text_too_long',
    () => postJson(`${limited.url}/embed/text`, { texts: ['ok', 'b'.repeat(501)] }),
    1,
  ],
  [
    'an image over the pixel limit',
    413,
    'image_too_large',
    () => postJson(`${limited.url}/embed/image`, { images: [tinyPng.toString('base64'), shapes.toString('base64')] }),
    1,
  ],
  [
    'an unsupported image type',
    415,
    'unsupported_media_type',
    () =>
      postJson(`${limited.url}/embed/image`, {
        image: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>').toString('base64'),
      }),
    0,
  ],
  [
    'an unsupported request content type',
    415,
    'unsupported_media_type',
    () =>
      fetch(`${limited.url}/embed/text`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: 'a dog',
      }).then(async (r) => ({ status: r.status, json: await r.json() })),
  ],
  [
    'an undecodable image',
    422,
    'undecodable_image',
    () => postJson(`${limited.url}/embed/image`, { image: tinyPng.subarray(0, 100).toString('base64') }),
    0,
  ],
  [
    'an image URL that cannot be fetched (HTTP 500)',
    502,
    'url_fetch_failed',
    () => postJson(`${limited.url}/embed/image`, { urls: [`${files.url}/tiny.png`, `${files.url}/broken`] }),
    1,
  ],
  [
    'an image URL with nothing listening',
    502,
    'url_fetch_failed',
    () => postJson(`${limited.url}/embed/image`, { url: 'http://127.0.0.1:1/x.png' }),
    0,
  ],
  [
    'more images than the whole queue holds',
    413,
    'too_many_items',
    () => postJson(`${limited.url}/embed/image`, { images: Array(5).fill(tinyPng.toString('base64')) }),
  ],
  [
    'more images than the queue has room for',
    503,
    'overloaded',
    async () => {
      const held = await holdImagePlaces(limited.url, 3, tinyPng);
      const res = await postJson(`${limited.url}/embed/image`, { images: Array(2).fill(tinyPng.toString('base64')) });
      held.release();
      if ((await held.done).status !== 200) throw new Error('the request holding the queue failed');
      return res;
    },
  ],
];

for (const [label, status, code, call, index] of cases) {
  t.test(label, async (t) => {
    const res = await call();
    isError(t, res, status, code, index);
    if (status === 503) t.match(res.headers?.get('retry-after'), /^\d+$/, 'Retry-After header');
    await stillWorks(t, limited);
  });
}

t.test('multipart: too many files and an oversize file', async (t) => {
  const form = new FormData();
  for (let i = 0; i < 9; i++) form.append('file', new Blob([tinyPng], { type: 'image/png' }), `${i}.png`);
  const res = await fetch(`${limited.url}/embed/image`, { method: 'POST', body: form });
  isError(t, { status: res.status, json: await res.json() }, 413, /too_many_items/);
  await stillWorks(t, limited);
});

t.test('504 when an item waits past its deadline', async (t) => {
  // One decode thread and 30 photos: decoding alone outlasts the 100 ms deadline.
  const slow = await startServer({ requestTimeoutMs: 100, decodeThreads: 1 });
  t.teardown(() => slow.close());
  const res = await postJson(`${slow.url}/embed/image`, { images: Array(30).fill(photo.toString('base64')) });
  isError(t, res, 504, 'deadline_exceeded');
  await stillWorks(t, slow);
});

t.test('401 without the API key; health endpoints stay open', async (t) => {
  const locked = await startServer({ apiKey: ['s3cret', 'other-key'] });
  t.teardown(() => locked.close());
  isError(t, await postJson(`${locked.url}/embed/text`, { text: 'a' }), 401, 'unauthorized');
  isError(
    t,
    await postJson(`${locked.url}/embed/text`, { text: 'a' }, { authorization: 'Bearer wrong' }),
    401,
    'unauthorized',
  );
  t.equal((await fetch(`${locked.url}/healthz`)).status, 200);
  t.equal((await fetch(`${locked.url}/readyz`)).status, 200);
  await stillWorks(t, locked, { authorization: 'Bearer s3cret' });
  t.equal(
    (await postJson(`${locked.url}/embed/text`, { text: 'a' }, { 'x-api-key': 'other-key' })).status,
    200,
    'x-api-key header, second key',
  );
});
