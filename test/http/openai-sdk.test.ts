// The official `openai` npm SDK pointed at a real server on 127.0.0.1: every call a client of the
// OpenAI embeddings API makes works unchanged (strings, the SDK's default base64, floats, image
// items, the model list), what ALBEF cannot do is refused in one sentence, and every error reaches
// the SDK's error classes with its message, type, code and param. Vectors are checked against the
// fixture goldens.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import t from 'tap';
import { cosine, golden, IMAGES_DIR, TOL } from '../../kit/golden.js';
import { cleanupTinyModel, holdImagePlaces, postJson, startServer } from '../../kit/server.js';

const server = await startServer({ maxItems: 8, maxQueueImages: 4, allowPrivateUrls: true });
const locked = await startServer({ apiKey: ['sesame'] });
t.teardown(async () => {
  await server.close();
  await locked.close();
  await cleanupTinyModel();
});

/** The JSON bodies the SDK sent, to show what it asks for. */
const sent: Record<string, unknown>[] = [];
const client = new OpenAI({
  baseURL: `${server.url}/v1`,
  apiKey: 'unused',
  maxRetries: 0,
  fetch: (url, init) => {
    if (typeof init?.body === 'string') sent.push(JSON.parse(init.body) as Record<string, unknown>);
    return fetch(url, init);
  },
});
const dim = golden.config.architecture.embed_dim;
const text = golden.texts[1]!;
const png = readFileSync(join(IMAGES_DIR, 'tiny.png')).toString('base64');
const pngGolden = golden.images.find((g) => g.file === 'tiny.png')!.embedding;

/** The error a call rejects with (the test fails when it resolves). */
async function failure(call: () => Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await call();
  } catch (e) {
    if (e instanceof OpenAI.APIError) return e;
    throw e;
  }
  throw new Error('the call succeeded');
}

t.test('embeddings.create with a string: the SDK asks for base64 and decodes it', async (t) => {
  const res = await client.embeddings.create({ model: 'tiny', input: text.text });
  t.same(sent.at(-1), { model: 'tiny', input: text.text, encoding_format: 'base64' }, 'the SDK asked for base64');
  t.equal(res.object, 'list');
  t.equal(res.model, 'tiny');
  t.equal(res.data.length, 1);
  t.equal(res.data[0]!.embedding.length, dim);
  t.ok(cosine(res.data[0]!.embedding, text.pre_caption.embedding) >= TOL.textCos, 'the golden text vector');
  t.equal(res.usage.prompt_tokens, text.pre_caption.ids.length, 'usage counts the token ids fed to the model');
});

t.test('embeddings.create with strings and encoding_format float', async (t) => {
  const texts = golden.texts.slice(0, 3);
  const res = await client.embeddings.create({
    model: 'tiny',
    input: texts.map((g) => g.text),
    encoding_format: 'float',
  });
  t.same(
    res.data.map((d) => d.index),
    [0, 1, 2],
  );
  texts.forEach((g, i) => t.ok(cosine(res.data[i]!.embedding, g.pre_caption.embedding) >= TOL.textCos, `item ${i}`));
});

t.test('embeddings.create with base64 asked for explicitly gives the string as sent', async (t) => {
  const res = await client.embeddings.create({ model: 'tiny', input: [text.text], encoding_format: 'base64' });
  const b = Buffer.from(res.data[0]!.embedding as unknown as string, 'base64');
  t.ok(cosine(new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4), text.pre_caption.embedding) >= TOL.textCos);
});

t.test('image items (an extension the SDK passes through) next to strings', async (t) => {
  const input = [{ image: `data:image/png;base64,${png}` }, text.text] as unknown as string[];
  const res = await client.embeddings.create({ model: 'tiny', input });
  t.ok(cosine(res.data[0]!.embedding, pngGolden) >= TOL.imageCos, 'the golden image vector');
  t.ok(cosine(res.data[1]!.embedding, text.pre_caption.embedding) >= TOL.textCos, 'the golden text vector');
});

t.test('dimensions equal to the model dimension and user are accepted; the model default applies', async (t) => {
  const res = await client.embeddings.create({ model: 'tiny', input: text.text, dimensions: dim, user: 'user-1234' });
  t.ok(cosine(res.data[0]!.embedding, text.pre_caption.embedding) >= TOL.textCos);
});

t.test('other dimensions: BadRequestError saying ALBEF was not trained for truncated vectors', async (t) => {
  const e = await failure(() => client.embeddings.create({ model: 'tiny', input: text.text, dimensions: 128 }));
  t.ok(e instanceof OpenAI.BadRequestError);
  t.equal(e.status, 400);
  t.equal(
    e.message,
    `400 dimensions 128 is not available: tiny gives ${dim}-d vectors only, because ALBEF was not trained for truncated vectors (a shortened one is not a valid embedding); leave dimensions out or set it to ${dim}`,
  );
  t.match(e, { type: 'invalid_request_error', code: 'unsupported_dimensions', param: 'dimensions' });
  t.type(e.requestID, 'string');
});

t.test('token-id arrays: BadRequestError with one sentence', async (t) => {
  const sentence =
    "input holds token ids, which this server cannot use: ALBEF reads text through its own BERT WordPiece tokenizer, not OpenAI's, so send the texts as strings (LangChain: OpenAIEmbeddings(check_embedding_ctx_length=False))";
  for (const input of [
    [101, 2023, 102],
    [[101, 2023], [101]],
  ]) {
    const e = await failure(() => client.embeddings.create({ model: 'tiny', input }));
    t.ok(e instanceof OpenAI.BadRequestError, JSON.stringify(input));
    t.equal(e.message, `400 ${sentence}`);
    t.match(e, { type: 'invalid_request_error', code: 'token_ids_not_supported', param: 'input' });
  }
});

t.test('an unknown model: NotFoundError naming the loaded ones', async (t) => {
  const e = await failure(() => client.embeddings.create({ model: 'text-embedding-3-small', input: 'a dog' }));
  t.ok(e instanceof OpenAI.NotFoundError);
  t.equal(e.message, '404 unknown model "text-embedding-3-small"; loaded: tiny');
  t.match(e, { type: 'invalid_request_error', code: 'model_not_found', param: 'model' });
});

t.test('schema errors, limits and overload arrive as the SDK classes with their messages', async (t) => {
  const missing = await failure(() => client.embeddings.create({ model: 'tiny' } as never));
  t.ok(missing instanceof OpenAI.BadRequestError);
  t.match(missing, {
    message: '400 missing field "input"',
    code: 'invalid_request',
    param: 'input',
  });

  const tooMany = await failure(() => client.embeddings.create({ model: 'tiny', input: Array(9).fill('a') }));
  t.equal(tooMany.status, 413);
  t.match(tooMany, {
    message: '413 9 texts in one request; the limit is 8',
    type: 'invalid_request_error',
    code: 'too_many_items',
  });

  const badItem = await failure(() =>
    client.embeddings.create({ model: 'tiny', input: ['a', { image: 'data:image/png;base64,!!!' }] as never }),
  );
  t.ok(badItem instanceof OpenAI.BadRequestError);
  t.match(badItem, { param: 'input', error: { index: 1 } }, 'the item index rides along');

  const tooLarge = await failure(() =>
    client.embeddings.create({
      model: 'tiny',
      input: Array(5).fill({ image: `data:image/png;base64,${png}` }) as never,
    }),
  );
  t.match(
    tooLarge,
    { status: 413, code: 'too_many_items', message: /more than the tiny image queue holds \(4\)/ },
    'more images than the whole queue holds',
  );
  const mixed = await failure(() =>
    client.embeddings.create({
      model: 'tiny',
      input: [...Array(5).fill('a'), ...Array(4).fill({ image: `data:image/png;base64,${png}` })] as never,
    }),
  );
  t.match(
    mixed,
    { status: 413, code: 'too_many_items', message: '413 9 items in one request; the limit is 8' },
    'texts and images count together',
  );

  const held = await holdImagePlaces(server.url, 3, Buffer.from(png, 'base64'));
  const overload = await failure(() =>
    client.embeddings.create({
      model: 'tiny',
      input: Array(2).fill({ image: `data:image/png;base64,${png}` }) as never,
    }),
  );
  held.release();
  t.equal((await held.done).status, 200, 'the request that held the queue completes');
  t.ok(overload instanceof OpenAI.InternalServerError);
  t.match(overload, { status: 503, type: 'server_error', code: 'overloaded' });
  t.ok(Number(overload.headers?.get('retry-after')) >= 1, 'Retry-After');
});

t.test('models.list and models.retrieve: the loaded models, their modalities and dimension', async (t) => {
  const page = await client.models.list();
  t.same(
    page.data.map((m) => ({ ...m })),
    [
      {
        id: 'tiny',
        object: 'model',
        created: page.data[0]!.created,
        owned_by: 'albef-embed',
        modalities: ['text', 'image'],
        dimensions: dim,
      },
    ],
  );
  t.ok(page.data[0]!.created > 1.6e9, 'created is a Unix time in seconds');
  const one = await client.models.retrieve('tiny');
  t.equal(one.id, 'tiny');
  const e = await failure(() => client.models.retrieve('nope'));
  t.ok(e instanceof OpenAI.NotFoundError);
  t.match(e, { code: 'model_not_found', param: 'model' });
});

t.test('an unknown /v1 route: NotFoundError in the same shape', async (t) => {
  const e = await failure(() => client.post('/nope', { body: { query: 'a' } }));
  t.ok(e instanceof OpenAI.NotFoundError);
  t.match(e, { message: '404 no route POST /v1/nope', type: 'invalid_request_error', code: 'not_found', param: null });
});

t.test('API keys: AuthenticationError without the right one, success with it', async (t) => {
  const wrong = new OpenAI({ baseURL: `${locked.url}/v1`, apiKey: 'guess', maxRetries: 0 });
  const e = await failure(() => wrong.embeddings.create({ model: 'tiny', input: 'a dog' }));
  t.ok(e instanceof OpenAI.AuthenticationError);
  t.match(e, { message: '401 missing or invalid API key', type: 'authentication_error', code: 'unauthorized' });
  const right = new OpenAI({ baseURL: `${locked.url}/v1`, apiKey: 'sesame', maxRetries: 0 });
  t.equal((await right.models.list()).data[0]!.id, 'tiny');
});

t.test('native routes keep their own error shape', async (t) => {
  const res = await postJson(`${server.url}/embed/text`, { text: 'a', model: 'nope' });
  t.equal(res.status, 404);
  t.same(Object.keys(res.json.error).sort(), ['code', 'message', 'request_id']);
  const raw = await postJson(`${server.url}/v1/embeddings`, { input: 'a', model: 'nope' });
  t.same(
    Object.keys(raw.json.error).sort(),
    ['code', 'message', 'param', 'request_id', 'type'],
    'the /v1 body is a superset of it',
  );
});
