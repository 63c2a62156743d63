// Issue 22's HTTP rough edges, each over real HTTP: CORS preflights under API keys, item errors that
// name their position in the request's own list, validation errors that name the field and what it
// takes, /classify's template and label rules, and 415s that say what a route accepts.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { IMAGES_DIR } from '../../kit/golden.js';
import { cleanupTinyModel, postJson, startServer, startStaticServer, type UntypedJson } from '../../kit/server.js';

const tinyPng = await readFile(join(IMAGES_DIR, 'tiny.png'));
const png = tinyPng.toString('base64');
/** Base64 of a PNG cut short: a known format that cannot be decoded (422). */
const cutPng = tinyPng.subarray(0, 100).toString('base64');
const KEY = { authorization: 'Bearer k' };

const files = await startStaticServer(IMAGES_DIR);
const server = await startServer(
  { cors: true, apiKey: ['k'], maxTextChars: 50, allowPrivateUrls: true },
  {
    // No name resolves: the DNS failure of an image URL, without a network.
    resolver: async (host) => {
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    },
  },
);
t.teardown(async () => {
  await server.close();
  await files.close();
  await cleanupTinyModel();
});

const post = (path: string, body: unknown) => postJson(`${server.url}${path}`, body, KEY);

function isError(
  t: Test,
  res: { status: number; json: UntypedJson },
  status: number,
  code: string,
  message: string | RegExp,
  index?: number,
) {
  t.equal(res.status, status, `${status} (${JSON.stringify(res.json).slice(0, 300)})`);
  t.equal(res.json.error?.code, code, code);
  if (typeof message === 'string') t.equal(res.json.error?.message, message);
  else t.match(res.json.error?.message, message);
  t.equal(res.json.error?.index, index, `index ${index}`);
}

t.test('CORS under API keys: the preflight passes without one, the real request is still checked', async (t) => {
  const origin = 'https://app.example';
  const preflight = await fetch(`${server.url}/embed/text`, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'content-type,authorization',
    },
  });
  t.equal(preflight.status, 204, 'preflight answered');
  t.equal(preflight.headers.get('access-control-allow-origin'), origin);
  t.match(preflight.headers.get('access-control-allow-headers'), /authorization/);
  t.match(preflight.headers.get('access-control-allow-methods'), /POST/);

  const body = JSON.stringify({ text: 'a dog' });
  const headers = { origin, 'content-type': 'application/json' };
  const refused = await fetch(`${server.url}/embed/text`, { method: 'POST', headers, body });
  t.equal(refused.status, 401, 'no key: 401');
  t.equal(refused.headers.get('access-control-allow-origin'), origin, 'which the page can read');
  t.equal(((await refused.json()) as UntypedJson).error.code, 'unauthorized');

  const served = await fetch(`${server.url}/embed/text`, { method: 'POST', headers: { ...headers, ...KEY }, body });
  t.equal(served.status, 200, 'with the key: served');
  t.equal(served.headers.get('access-control-allow-origin'), origin);
  t.match(
    served.headers.get('access-control-expose-headers'),
    /x-request-id.*retry-after.*x-total-time/,
    'headers a page may read',
  );

  // OPTIONS without an Origin is no preflight: an ordinary request, answered in the API's shape.
  const bare = await fetch(`${server.url}/embed/text`, { method: 'OPTIONS', headers: KEY });
  t.not(bare.status, 400, `not refused (${bare.status})`);
  t.notMatch(bare.headers.get('content-type') ?? '', /text\/plain/, 'no plain-text refusal');
});

t.test('/v1/embeddings: every item error names its position in input', async (t) => {
  isError(
    t,
    await post('/v1/embeddings', { input: ['a', 'b', { image: png }, { image: cutPng }] }),
    422,
    'undecodable_image',
    /^input\[3\]: /,
    3,
  );
  isError(
    t,
    await post('/v1/embeddings', { input: ['a', { image: png }, { image: '!!!' }] }),
    400,
    'invalid_image_data',
    /^input\[2\]: /,
    2,
  );
  isError(
    t,
    await post('/v1/embeddings', { input: [{ image: png }, 'a', 'x'.repeat(60)] }),
    413,
    'text_too_long',
    'input[2]: text of 60 characters; the limit is 50',
    2,
  );
  const dns = await post('/v1/embeddings', { input: ['a', { image: 'http://nowhere.test/x.png' }] });
  isError(t, dns, 502, 'url_fetch_failed', /^input\[1\]: cannot resolve nowhere\.test/, 1);
  t.equal(dns.json.error.param, 'input');
  isError(
    t,
    await post('/v1/embeddings', { input: 'x'.repeat(60) }),
    413,
    'text_too_long',
    'input: text of 60 characters; the limit is 50',
    0,
  );
});

t.test('a DNS failure carries its item index on every route', async (t) => {
  const urls = [`${files.url}/tiny.png`, 'http://nowhere.test/x.png'];
  isError(t, await post('/embed/image', { urls }), 502, 'url_fetch_failed', /^item 1: cannot resolve nowhere\.test/, 1);
  isError(
    t,
    await post('/v1/rerank', { query: 'a dog', documents: urls.map((image) => ({ image })) }),
    502,
    'url_fetch_failed',
    /^documents\[1\]: cannot resolve/,
    1,
  );
  isError(
    t,
    await post('/classify', { urls, labels: ['a dog', 'a cat'] }),
    502,
    'url_fetch_failed',
    /^images\[1\]: cannot resolve/,
    1,
  );
});

t.test('/v1/rerank and /classify name documents[i], images[i] and labels[i]', async (t) => {
  isError(
    t,
    await post('/v1/rerank', { query: 'a dog', documents: [{ image: png }, { image: '!!!' }] }),
    400,
    'invalid_image_data',
    /^documents\[1\]: /,
    1,
  );
  isError(
    t,
    await post('/v1/rerank', { query: { image: png }, documents: ['a', 'x'.repeat(60)] }),
    413,
    'text_too_long',
    /^documents\[1\]: /,
    1,
  );
  isError(
    t,
    await post('/classify', { images: [png, '!!!'], labels: ['a', 'b'] }),
    400,
    'invalid_image_data',
    /^images\[1\]: /,
    1,
  );
  isError(
    t,
    await post('/classify', { images: [png, cutPng], labels: ['a', 'b'] }),
    422,
    'undecodable_image',
    /^images\[1\]: /,
    1,
  );
  isError(
    t,
    await post('/classify', { image: png, labels: ['a', 'x'.repeat(60)] }),
    413,
    'text_too_long',
    /^labels\[1\]: /,
    1,
  );
});

t.test('validation errors: one sentence naming the field and what it takes, with param', async (t) => {
  const cases: [string, unknown, string, string][] = [
    [
      '/embed/text',
      { text: 'a', encoding_format: 'float16' },
      'encoding_format must be one of "float", "base64" (got "float16")',
      'encoding_format',
    ],
    [
      '/embed/text',
      { txt: 'a' },
      'unknown field "txt" (fields: text, texts, model, caption_cleanup, encoding_format)',
      'txt',
    ],
    ['/embed/text', { texts: ['a', 'b', 5] }, 'texts[2] must be a string (got 5)', 'texts'],
    ['/embed/text', { texts: [] }, 'texts must have at least 1 item (got 0)', 'texts'],
    [
      '/embed/text',
      { text: 'a', caption_cleanup: 'no' },
      'caption_cleanup must be true or false (got "no")',
      'caption_cleanup',
    ],
    [
      '/v1/embeddings',
      { input: 'a', encoding_format: 'float16' },
      'encoding_format must be one of "float", "base64" (got "float16")',
      'encoding_format',
    ],
    [
      '/v1/embeddings',
      { input: ['a', { img: 'x' }] },
      'input[1] must be a string, {"text"} or {"image"} (got {"img"})',
      'input',
    ],
    ['/v1/embeddings', { input: ['a', { text: 5 }] }, 'input[1].text must be a string (got 5)', 'input'],
    ['/v1/embeddings', { input: [] }, 'input must have at least 1 item (got 0)', 'input'],
    ['/v1/embeddings', { input: 5 }, 'input must be a string or an array (got 5)', 'input'],
    ['/v1/embeddings', { input: 'a', dimensions: 0 }, 'dimensions must be at least 1 (got 0)', 'dimensions'],
    ['/v1/embeddings', { model: 'tiny' }, 'missing field "input"', 'input'],
    [
      '/v1/rerank',
      { query: 'a', documents: [5] },
      'documents[0] must be a string, {"text"} or {"image"} (got 5)',
      'documents',
    ],
    ['/classify', { image: png, labels: ['a', 'b'], top_k: 1.5 }, 'top_k must be a whole number (got 1.5)', 'top_k'],
  ];
  for (const [path, body, message, param] of cases) {
    const res = await post(path, body);
    t.equal(res.status, 400, `${path} ${JSON.stringify(body)}`);
    t.equal(res.json.error.code, 'invalid_request');
    t.equal(res.json.error.message, message);
    // Only /v1/ bodies carry `param` (OpenAI's shape); native ones keep theirs.
    if (path.startsWith('/v1/')) t.equal(res.json.error.param, param, `param ${param}`);
  }
  const query = await fetch(`${server.url}/embed/image?encoding_format=f16`, {
    method: 'POST',
    headers: { ...KEY, 'content-type': 'image/png' },
    body: tinyPng,
  });
  t.equal(query.status, 400);
  t.equal(
    ((await query.json()) as UntypedJson).error.message,
    'query parameter encoding_format must be one of "float", "base64" (got "f16")',
  );
  const form = new FormData();
  form.append('file', new Blob([tinyPng], { type: 'image/png' }), 'a.png');
  form.append('encoding_format', 'float16');
  const multipart = await fetch(`${server.url}/embed/image`, { method: 'POST', headers: KEY, body: form });
  t.equal(multipart.status, 400);
  t.equal(
    ((await multipart.json()) as UntypedJson).error.message,
    'encoding_format must be one of "float", "base64" (got "float16")',
    'the multipart field in the same words',
  );
});

t.test('/classify: a template without {}, repeated labels, labels in multipart', async (t) => {
  const noSlot = await post('/classify', { image: png, labels: ['dog', 'cat'], template: 'a photo' });
  t.equal(noSlot.status, 400);
  t.match(noSlot.json.error.message, /template "a photo" has no \{\}/);
  const dup = await post('/classify', { image: png, labels: ['dog', 'cat', 'dog'] });
  isError(t, dup, 400, 'bad_request', /labels\[2\] repeats labels\[0\] \("dog"\)/, 2);

  const form = (fields: [string, string][]) => {
    const f = new FormData();
    f.append('file', new Blob([tinyPng], { type: 'image/png' }), 'a.png');
    for (const [k, v] of fields) f.append(k, v);
    return fetch(`${server.url}/classify`, { method: 'POST', headers: KEY, body: f }).then(async (r) => ({
      status: r.status,
      json: (await r.json()) as UntypedJson,
    }));
  };
  const comma = await form([['labels', 'dog,cat']]);
  t.equal(comma.status, 400);
  t.match(comma.json.error.message, /repeat the "labels" field once per label/);
  t.match(comma.json.error.message, /"dog,cat" is one label/);
  const singular = await form([
    ['label', 'dog'],
    ['label', 'cat'],
  ]);
  t.equal(singular.status, 400);
  t.match(singular.json.error.message, /the field is "labels", not "label"/);
  const right = await form([
    ['labels', 'dog'],
    ['labels', 'cat'],
  ]);
  t.equal(right.status, 200, 'repeated labels fields are served');
});

t.test('content types: a 415 says what the route takes', async (t) => {
  const send = (path: string, type: string, body: Uint8Array | string) =>
    fetch(`${server.url}${path}`, { method: 'POST', headers: { ...KEY, 'content-type': type }, body }).then(
      async (r) => ({ status: r.status, json: (await r.json()) as UntypedJson }),
    );
  isError(
    t,
    await send('/embed/image', 'application/octet-stream', tinyPng),
    415,
    'unsupported_media_type',
    'send application/json, multipart/form-data or an image/* body (got application/octet-stream)',
  );
  const raw = await send('/classify', 'image/png', tinyPng);
  isError(t, raw, 415, 'unsupported_media_type', /^send application\/json or multipart\/form-data \(got image\/png\)/);
  t.match(raw.json.error.message, /file parts/, 'and how images go there');
  isError(
    t,
    await send('/embed/text', 'text/plain', 'a dog'),
    415,
    'unsupported_media_type',
    'send application/json (got text/plain)',
  );
  isError(
    t,
    await send('/v1/embeddings', 'image/png', tinyPng),
    415,
    'unsupported_media_type',
    'send application/json (got image/png)',
  );
});
