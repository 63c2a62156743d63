// The web page (GET /) in a real headless Chromium: Debian's `chromium` driven by playwright-core, one
// browser for every check, against the tiny fixture model on 127.0.0.1. The page's ranking, scores,
// re-ranking and zero-shot bars must equal what the API gives for the same inputs, computed here over
// HTTP; a file the API refuses shows the API's words on its own card (422 undecodable, 413 over the
// image byte limit, 415 not an image) while the others in the same batch rank; the page asks for an
// API key when the service has them; it loads nothing from anywhere else and breaks no CSP rule.
// The Collection view, against collections indexed from test/fixtures/retrieval into a LanceDB store,
// shows the ids of POST /v1/search in its order with its scores (text, image and item queries, with
// and without the ITM re-rank, with a metadata filter), the service's thumbnails, and the API's own
// words for a 409, a 404 and a 503.
// UPDATE_SCREENSHOTS=1 also writes the screenshots the docs show (docs/ui-rerank.png, ui-classify.png,
// ui-phone.png, ui-collection.png).

import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import sharp from 'sharp';
import t, { type Test } from 'tap';
import { buildApp } from '../../src/http/app.js';
import { resolveConfig } from '../../src/service/config.js';
import { PACKAGE_ROOT } from '../../src/core/paths.js';
import { UI_CSP } from '../../src/http/routes/ui.js';
import { cosine, FIXTURES, IMAGES_DIR } from '../../kit/golden.js';
import { cleanupTinyModel, postJson, startServer, startStaticServer, tinyModel } from '../../kit/server.js';
import { readAnnotations, resolveImagePaths } from '../../src/retrieval/annotations.js';
import { annotationItems, indexItems } from '../../src/service/indexer.js';

// Browser globals, for the functions that run in the page (the project's type check has no DOM lib;
// module-scoped, so they do not leak into the Node code).

declare const document: any,
  window: any,
  localStorage: any,
  sessionStorage: any,
  DataTransfer: any,
  ClipboardEvent: any,
  DragEvent: any,
  File: any;
type HTMLElement = any;
type HTMLInputElement = any;

const CHROMIUM = process.env.ALBEF_TEST_CHROMIUM ?? '/usr/bin/chromium';
const SCREENSHOTS = process.env.UPDATE_SCREENSHOTS === '1';

const FILES = ['photo.jpg', 'rotated.jpg', 'wide.jpg', 'shapes.png', 'alpha.png', 'gray.png', 'gray16.png', 'tiny.png'];
const URL_IMAGE = 'from-url.png'; // shapes.png again, added by pasting its URL
// The service's image byte limit here: above every fixture (photo.jpg, the largest, is 225 kB), so
// only BIG is over it.
const MAX_IMAGE_BYTES = 256 * 1024;
const BROKEN = {
  name: 'broken.png',
  mimeType: 'image/png',
  buffer: readFileSync(join(IMAGES_DIR, 'tiny.png')).subarray(0, 100),
};
// A good JPEG (trailing bytes after its end marker are ignored by decoders), one byte over the limit.
const photo = readFileSync(join(IMAGES_DIR, 'photo.jpg'));
const BIG = {
  name: 'big.jpg',
  mimeType: 'image/jpeg',
  buffer: Buffer.concat([photo, Buffer.alloc(MAX_IMAGE_BYTES + 1 - photo.length)]),
};
// A PDF named and typed as a PNG: the service looks at the bytes.
const NOT_IMAGE = {
  name: 'scan.png',
  mimeType: 'image/png',
  buffer: Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n', 'latin1'),
};
// The files the API refuses, each with the status it gives; dropped together, shown last in this order.
const REFUSED = [
  { ...BROKEN, status: 422 },
  { ...BIG, status: 413 },
  { ...NOT_IMAGE, status: 415 },
];
const QUERY = 'a dog on a skateboard';
const QUERY2 = 'two people at the beach';
const LABELS = ['dog', 'cat', 'car', 'tree'];
const TEMPLATE = 'a photo of a {}';
const RERANK_N = 4;
const mime = (f: string) => (f.endsWith('.png') ? 'image/png' : 'image/jpeg');
// The Collection view's checks: ALBEF's annotation fixture as two collections.
const RETRIEVAL = join(FIXTURES, 'retrieval');
const C_QUERY = 'three green triangles on a black background';
const C_TOP_K = 12;
const C_RERANK = 8;
const C_IMAGE = 'img05.jpg';

interface Card {
  name: string;
  state: string;
  score?: number;
  itm?: number;
  itc?: number;
  text: string;
  error?: string;
  labels: { label: string; score: number; itm?: number }[];
}

async function cards(page: Page): Promise<Card[]> {
  return page.$$eval('#results > li', (lis) =>
    lis.map((li) => {
      const d = (li as HTMLElement).dataset;
      const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
      return {
        name: d.name!,
        state: d.state!,
        score: num(d.score),
        itm: num(d.itm),
        itc: num(d.itc),
        text: li.textContent ?? '',
        error: li.querySelector('p.error')?.textContent ?? undefined,
        labels: [...li.querySelectorAll<HTMLElement>('.score[data-label]')].map((r) => ({
          label: r.dataset.label!,
          score: Number(r.dataset.score),
          itm: num(r.dataset.itm),
        })),
      };
    }),
  );
}

type Done = { noPending: true } | { query: string } | { reranked: number } | { ready: true };

/** Waits until the page has nothing in flight, shows n cards, and `done` holds for them. */
async function settle(page: Page, n: number, done: Done): Promise<void> {
  await page.waitForFunction(
    ({ n, done }) => {
      const list = document.getElementById('results')!;
      const all = [...list.children] as HTMLElement[];
      if (list.getAttribute('aria-busy') !== 'false' || all.length !== n) return false;
      if ('query' in done) return list.dataset.query === done.query;
      if ('reranked' in done) return all.filter((c) => c.dataset.itm !== undefined).length === done.reranked;
      if ('ready' in done) return all.every((c) => c.dataset.state === 'ready');
      return all.every((c) => c.dataset.state !== 'pending');
    },
    { n, done },
    { timeout: 30_000 },
  );
}

interface Hit {
  id: string;
  score: number;
  itc: number;
  itm_prob?: number;
  itm_logits?: number[];
  source?: string;
}

interface CollectionCard {
  id: string;
  score: number;
  itc: number;
  itm?: number;
  logit?: number;
  thumb?: string;
  src?: string;
  width?: number;
  text: string;
}

async function collectionCards(page: Page): Promise<CollectionCard[]> {
  return page.$$eval('#c-results > li', (lis) =>
    lis.map((li) => {
      const d = (li as HTMLElement).dataset;
      const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
      const img = li.querySelector('img');
      return {
        id: d.id!,
        score: Number(d.score),
        itc: Number(d.itc),
        itm: num(d.itm),
        logit: num(d.logit),
        thumb: d.thumb,
        src: img?.src,
        width: img?.naturalWidth,
        text: li.textContent ?? '',
      };
    }),
  );
}

/** Waits until the Collection view shows the answer to this query (and re-rank K, filter): n results. */
async function settleCollection(
  page: Page,
  want: { query: string; rerank: number; n: number; filter?: string; thumbs?: boolean },
): Promise<void> {
  await page.waitForFunction(
    (w) => {
      const list = document.getElementById('c-results')!;
      const all = [...list.children] as HTMLElement[];
      return (
        list.getAttribute('aria-busy') === 'false' &&
        list.dataset.query === w.query &&
        list.dataset.rerank === String(w.rerank) &&
        list.dataset.filter === (w.filter ?? '') &&
        all.length === w.n &&
        (!w.thumbs || all.every((c) => c.dataset.thumb === 'ready'))
      );
    },
    want,
    { timeout: 30_000 },
  );
}

/** Waits for the Collection view's error line and returns it. */
async function collectionError(page: Page): Promise<string> {
  await page.waitForFunction(
    () =>
      document.getElementById('collection-error')!.textContent !== '' &&
      document.getElementById('c-results')!.getAttribute('aria-busy') !== 'true',
    undefined,
    { timeout: 30_000 },
  );
  return (await page.textContent('#collection-error'))!;
}

/** A port nothing listens on (a store that is down). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as { port: number };
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

async function screenshot(t: Test, page: Page, file: string): Promise<void> {
  if (!SCREENSHOTS) return;
  // Palette PNG: a few tens of kB for the docs.
  const png = await sharp(await page.screenshot({ fullPage: true }))
    .png({ palette: true, colours: 64, compressionLevel: 9 })
    .toBuffer();
  await writeFile(join(PACKAGE_ROOT, 'docs', file), png);
  t.pass(`wrote docs/${file} (${png.length} bytes)`);
}

if (!existsSync(CHROMIUM)) {
  t.fail(
    `no Chromium at ${CHROMIUM}: the UI test drives Debian's chromium (apt-get install -y chromium; .ci/run installs it). ALBEF_TEST_CHROMIUM names another binary.`,
  );
} else {
  await main();
}

async function main() {
  const shapes = readFileSync(join(IMAGES_DIR, 'shapes.png'));
  const files = await startStaticServer(IMAGES_DIR, {
    [`/${URL_IMAGE}`]: (res) => res.writeHead(200, { 'content-type': 'image/png' }).end(shapes),
  });
  // A second model for the picker: the tiny one as converters before 1.2.0 wrote it (no matching part).
  const root = await mkdtemp(join(tmpdir(), 'albef-ui-'));
  const old = join(root, 'old');
  const { dir: tiny } = await tinyModel();
  await cp(tiny, old, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(old, 'model.json'), 'utf8'));
  delete manifest.fusion;
  await writeFile(join(old, 'model.json'), JSON.stringify({ ...manifest, name: 'old', converter_version: '1.1.0' }));
  const lance = join(root, 'collections');
  const server = await startServer({
    models: [tiny, old],
    allowPrivateUrls: true,
    maxImageBytes: MAX_IMAGE_BYTES,
    store: lance,
  });
  const keyed = await startServer({ apiKey: ['ui-test-key'], store: lance });
  // A store that cannot be reached: /v1/collections answers 503.
  const down = await startServer({ store: `postgres://albef@127.0.0.1:${await closedPort()}/albef` });

  // The collections, through the service's own store (LanceDB in a temp dir): ann.json's images (with
  // a `kind` field to filter on) and captions, one of a model this service does not serve (409), and
  // one the test drops while the page shows it (404).
  const embedder = server.app.service.requireEmbedder();
  const model = embedder.model();
  const store = (await server.app.service.collectionStore())!;
  const ann = await readAnnotations(join(RETRIEVAL, 'ann.json'));
  const items = annotationItems(ann, resolveImagePaths(RETRIEVAL, ann.images));
  for (const it of items.images) it.metadata = { ...it.metadata, kind: it.id.endsWith('.png') ? 'png' : 'jpeg' };
  const indexing = { batch: 16, captionCleanup: true };
  const indexed = [
    await indexItems(embedder, model, store, items.images, {
      ...indexing,
      collection: 'pics',
      modality: 'image',
      root: RETRIEVAL,
    }),
    await indexItems(embedder, model, store, items.texts, { ...indexing, collection: 'pics-texts', modality: 'text' }),
    await indexItems(embedder, model, store, items.images.slice(0, 3), {
      ...indexing,
      collection: 'doomed',
      modality: 'image',
      root: RETRIEVAL,
    }),
  ];
  await store.create({
    name: 'ghost',
    model: 'elsewhere',
    modelSha256: '0'.repeat(64),
    modality: 'image',
    dim: model.dim,
    root: RETRIEVAL,
  });
  // One browser for all checks; playwright gives it a fresh temporary profile (user-data-dir).

  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  t.teardown(async () => {
    await browser.close();
    await server.close();
    await keyed.close();
    await down.close();
    await files.close();
    await cleanupTinyModel();
    await rm(root, { recursive: true, force: true });
  });

  /**
   * A browser context whose pages define `__name`: functions handed to the page (evaluate, $$eval) are
   * serialised from this file as tsx transpiled it, with esbuild's keepNames calls inside.
   */
  async function newContext(options: Parameters<Browser['newContext']>[0] = {}): Promise<BrowserContext> {
    const context = await browser.newContext(options);
    await context.addInitScript('globalThis.__name = (f) => f;');
    return context;
  }

  /** A page with its console errors, uncaught exceptions and every request recorded. */
  async function open(context: BrowserContext, url: string) {
    const page = await context.newPage();
    const problems: string[] = [];
    const requests: { method: string; url: string; auth?: string; body?: string }[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      // The browser logs each failed API call (4xx) as a resource error; the page shows those itself.
      if (
        m.type() === 'error' &&
        !/Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())
      )
        problems.push(`console: ${m.text()}`);
    });
    page.on('request', (r) =>
      requests.push({
        method: r.method(),
        url: r.url(),
        auth: r.headers().authorization,
        body: r.postData() ?? undefined,
      }),
    );
    await page.goto(url);
    return { page, problems, requests };
  }

  // The expected values, over HTTP, one request per image as the page sends them.
  const fileBytes = new Map(FILES.map((f) => [f, readFileSync(join(IMAGES_DIR, f))]));
  async function embedFile(name: string, bytes: Buffer, type: string): Promise<{ status: number; json: any }> {
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array(bytes)], { type }), name);
    const res = await fetch(`${server.url}/embed/image`, { method: 'POST', body: form });
    return { status: res.status, json: await res.json() };
  }
  const imageVec = new Map<string, number[]>();
  for (const f of FILES) imageVec.set(f, (await embedFile(f, fileBytes.get(f)!, mime(f))).json.embeddings[0]);
  imageVec.set(
    URL_IMAGE,
    (await postJson(`${server.url}/embed/image`, { urls: [`${files.url}/${URL_IMAGE}`] })).json.embeddings[0],
  );
  const refusedAnswers = await Promise.all(REFUSED.map((f) => embedFile(f.name, f.buffer, f.mimeType)));
  const textVec = async (q: string) =>
    (await postJson(`${server.url}/embed/text`, { text: q })).json.embeddings[0] as number[];
  const ranking = (q: number[]) =>
    [...imageVec].map(([name, v]) => ({ name, score: cosine(q, v) })).sort((a, b) => b.score - a.score);
  const context = await newContext({ viewport: { width: 1180, height: 900 } });
  const { page, problems, requests } = await open(context, `${server.url}/`);
  const total = FILES.length + 1 + REFUSED.length;
  const accepted = -REFUSED.length; // slice(0, accepted): the cards before the refused ones
  const refusedText = refusedAnswers.map((a) => `${a.status} ${a.json.error.code}: ${a.json.error.message}`);

  t.test('the page and its files: open, with the CSP, cached by ETag, not in the OpenAPI document', async (t) => {
    // Each body read, so no connection stays open past the servers' close.
    const get = async (url: string, headers: Record<string, string> = {}) => {
      const res = await fetch(url, { headers });
      return { status: res.status, headers: res.headers, text: await res.text() };
    };
    const page = await get(`${server.url}/`);
    t.equal(page.status, 200);
    t.match(page.headers.get('content-type'), /^text\/html; charset=utf-8/);
    t.equal(page.headers.get('content-security-policy'), UI_CSP);
    t.match(UI_CSP, /script-src 'self'(;|$)/, 'no inline or remote scripts');
    t.match(page.text, /<script type="module" src="\/ui\/app.js">/);
    const js = await get(`${keyed.url}/ui/app.js`);
    t.equal(js.status, 200, 'assets need no API key');
    t.match(js.headers.get('content-type'), /^text\/javascript/);
    t.equal(js.headers.get('content-security-policy'), UI_CSP);
    t.equal((await get(`${server.url}/ui/app.js`, { 'if-none-match': js.headers.get('etag')! })).status, 304);
    t.match((await get(`${server.url}/ui/style.css`)).headers.get('content-type'), /^text\/css/);
    t.equal((await get(`${keyed.url}/models`)).status, 401, 'the API still needs the key');
    t.equal(
      (await get(`${server.url}/models`)).headers.get('content-security-policy'),
      null,
      'the CSP only on the page and its files',
    );
    const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    t.same(
      Object.keys(doc.paths).filter((p) => p === '/' || p.startsWith('/ui')),
      [],
      'hidden from the OpenAPI document',
    );
  });

  t.test('--no-ui: / and the files answer 404', async (t) => {
    // The app alone (no model loaded): routing is all this needs.
    const off = await buildApp(resolveConfig({ models: [(await tinyModel()).dir], ui: false, logLevel: 'silent' }), {
      logger: false,
    });
    t.teardown(() => off.close());
    const res = await off.inject('/');
    t.equal(res.statusCode, 404);
    t.match(res.json(), { error: { code: 'not_found' } });
    t.equal((await off.inject('/ui/app.js')).statusCode, 404);
  });

  t.test(
    'search: the page ranks the images as cosine of the /embed/* vectors; each refused file shows its 422, 413 or 415',
    async (t) => {
      t.ok(
        FILES.every((f) => fileBytes.get(f)!.length <= MAX_IMAGE_BYTES),
        'every fixture within the image byte limit',
      );
      t.same(
        refusedAnswers.map((a) => a.status),
        REFUSED.map((f) => f.status),
        'the API refuses the broken, the big and the PDF file: 422, 413, 415',
      );
      await page.waitForSelector('#model option', { state: 'attached' });
      t.match(await page.textContent('#model-info'), /embed · rerank · classify/);
      // Three ways in: the file picker, a pasted URL, a dropped file.
      await page.setInputFiles(
        '#files',
        FILES.map((f) => join(IMAGES_DIR, f)),
      );
      await page.evaluate((url) => {
        const data = new DataTransfer();
        data.setData('text/plain', url);
        document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true }));
      }, `${files.url}/${URL_IMAGE}`);
      await page.evaluate(
        (files) => {
          const data = new DataTransfer();
          for (const { name, type, b64 } of files)
            data.items.add(new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], name, { type }));
          document.dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
        },
        REFUSED.map((f) => ({ name: f.name, type: f.mimeType, b64: f.buffer.toString('base64') })),
      );
      await settle(page, total, { noPending: true });
      const embedCalls = requests.filter((r) => r.url.endsWith('/embed/image')).length;
      t.equal(embedCalls, total, 'one /embed/image per added image');

      await page.fill('#query', QUERY);
      await settle(page, total, { query: QUERY });
      const want = ranking(await textVec(QUERY));
      const got = await cards(page);
      t.same(
        got.map((c) => c.name),
        [...want.map((w) => w.name), ...REFUSED.map((f) => f.name)],
        'same order as cosine of the API vectors, the refused files last',
      );
      let worst = 0;
      for (const w of want) worst = Math.max(worst, Math.abs(got.find((c) => c.name === w.name)!.score! - w.score));
      t.ok(worst <= 1e-12, `scores equal the cosines (max |Δ| ${worst})`);
      t.match(got[0]!.text, /#1/);
      t.ok(
        got.slice(0, accepted).every((c) => c.state === 'ready' && c.error === undefined),
        'the others embedded, no error on them',
      );
      REFUSED.forEach((f, i) => {
        const card = got.find((c) => c.name === f.name)!;
        t.equal(card.state, 'error', `${f.name}: an error card`);
        t.equal(card.error, refusedText[i], `${f.name}: the API’s ${f.status}, as it words it`);
      });

      // Retyping the query: one text embedding, no image embedded again.
      const before = requests.length;
      await page.fill('#query', QUERY2);
      await settle(page, total, { query: QUERY2 });
      const calls = requests
        .slice(before)
        .filter((r) => r.method === 'POST')
        .map((r) => new URL(r.url).pathname);
      t.same(calls, ['/embed/text'], 'a new query costs one POST /embed/text');
      t.same(
        (await cards(page)).slice(0, accepted).map((c) => c.name),
        ranking(await textVec(QUERY2)).map((w) => w.name),
      );
    },
  );

  t.test('the re-rank switch: the top ones by ITM, scores equal to /v1/rerank', async (t) => {
    await page.fill('#query', QUERY);
    await settle(page, total, { query: QUERY });
    await page.fill('#rerank-n', String(RERANK_N));
    await page.check('#rerank');
    await settle(page, total, { reranked: RERANK_N });
    const top = ranking(await textVec(QUERY)).slice(0, RERANK_N);
    const documents = top.map((w) => ({
      image:
        w.name === URL_IMAGE
          ? `${files.url}/${URL_IMAGE}`
          : `data:${mime(w.name)};base64,${fileBytes.get(w.name)!.toString('base64')}`,
    }));
    const answer = await postJson(`${server.url}/v1/rerank`, { query: QUERY, documents });
    t.equal(answer.status, 200);
    const results = answer.json.results as { index: number; relevance_score: number; itc: number }[];
    const got = await cards(page);
    t.same(
      got.slice(0, RERANK_N).map((c) => c.name),
      results.map((r) => top[r.index]!.name),
      'the top ones in /v1/rerank order',
    );
    let worst = 0;
    for (const r of results) {
      const card = got.find((c) => c.name === top[r.index]!.name)!;
      worst = Math.max(worst, Math.abs(card.itm! - r.relevance_score), Math.abs(card.itc! - r.itc));
    }
    t.ok(worst <= 1e-12, `ITM and itc equal /v1/rerank's (max |Δ| ${worst})`);
    t.ok(
      got.slice(RERANK_N, accepted).every((c) => c.itm === undefined && c.score !== undefined),
      'the rest keep their cosine',
    );
    t.match(got[0]!.text, /ITM\s*[\d.]+/);
    await screenshot(t, page, 'ui-rerank.png');
    await page.uncheck('#rerank');
    await settle(page, total, { reranked: 0 });
  });

  t.test('classify: each image gets the bars /classify gives', async (t) => {
    await page.click('label[for=mode-classify]');
    await page.fill('#labels', LABELS.join('\n'));
    await page.fill('#template', TEMPLATE);
    await page.check('#itm');
    await page.click('#classify-form button[type=submit]');
    await settle(page, total, { noPending: true });
    const got = await cards(page);
    t.same(
      got.map((c) => c.name),
      [...FILES, URL_IMAGE, ...REFUSED.map((f) => f.name)],
      'in the order added',
    );
    let worst = 0;
    for (const card of got.slice(0, accepted)) {
      const images =
        card.name === URL_IMAGE
          ? { urls: [`${files.url}/${URL_IMAGE}`] }
          : { images: [fileBytes.get(card.name)!.toString('base64')] };
      const answer = await postJson(`${server.url}/classify`, {
        ...images,
        labels: LABELS,
        template: TEMPLATE,
        itm: true,
      });
      t.equal(answer.status, 200);
      const want = answer.json.results[0] as { label: string; score: number; itm_prob: number }[];
      t.same(
        card.labels.map((l) => l.label),
        want.map((w) => w.label),
        `${card.name}: labels in /classify's order`,
      );
      want.forEach(
        (w, i) =>
          (worst = Math.max(
            worst,
            Math.abs(card.labels[i]!.score - w.score),
            Math.abs(card.labels[i]!.itm! - w.itm_prob),
          )),
      );
    }
    t.ok(worst <= 1e-12, `scores and ITM probabilities equal /classify's (max |Δ| ${worst})`);
    t.same(
      got.slice(accepted).map((c) => c.error),
      refusedText,
      'the refused files keep their 422, 413, 415',
    );
    await screenshot(t, page, 'ui-classify.png');
    // A request-level error, as the API words it.
    await page.fill('#labels', 'only one');
    await page.click('#classify-form button[type=submit]');
    await page.waitForFunction(() => document.getElementById('classify-error')!.textContent !== '');
    // The page sends files as multipart and URLs as JSON, whose schema words it differently: either, once.
    const form = new FormData();
    form.append('labels', 'only one');
    form.append('file', new Blob([new Uint8Array(fileBytes.get('tiny.png')!)], { type: 'image/png' }), 'tiny.png');
    const multipart = (
      (await (await fetch(`${server.url}/classify`, { method: 'POST', body: form })).json()) as {
        error: { code: string; message: string };
      }
    ).error;
    const json = (
      await postJson(`${server.url}/classify`, { urls: [`${files.url}/${URL_IMAGE}`], labels: ['only one'] })
    ).json.error;
    const worded = [multipart, json].map((e) => `400 ${e.code}: ${e.message}`);
    t.ok(
      worded.includes((await page.textContent('#classify-error'))!),
      `a request-level error once, as the API words it (${worded.join(' | ')})`,
    );
    await page.click('label[for=mode-search]');
  });

  t.test('readable on a phone', async (t) => {
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    t.ok(overflow <= 0, `no sideways scrolling at 390 px (overflow ${overflow} px)`);
    await screenshot(t, page, 'ui-phone.png');
    await page.setViewportSize({ width: 1180, height: 900 });
  });

  t.test('keyboard: every control has a label, Tab reaches them in reading order', async (t) => {
    const unlabelled = await page.$$eval('input, select, textarea, button', (els) =>
      els
        .filter((el) => {
          const e = el as HTMLInputElement;
          return (
            !e.closest('[hidden]') &&
            !(e.labels?.length || e.getAttribute('aria-label') || (e.tagName === 'BUTTON' && e.textContent?.trim()))
          );
        })
        .map((e) => e.id || e.outerHTML.slice(0, 60)),
    );
    t.same(unlabelled, [], 'no unlabelled control');
    // Tab from the top of a freshly loaded page.
    const fresh = await context.newPage();
    t.teardown(() => fresh.close());
    // Listening before the page loads, so that file choosers are intercepted by the time Space is pressed.
    const chooser = fresh.waitForEvent('filechooser', { timeout: 30_000 });
    await fresh.goto(`${server.url}/`);
    await fresh.waitForSelector('#model option', { state: 'attached' });
    const order: string[] = [];
    for (let i = 0; i < 11; i++) {
      await fresh.keyboard.press('Tab');
      order.push(await fresh.evaluate(() => document.activeElement?.id || document.activeElement?.textContent || ''));
    }
    t.same(
      order,
      ['model', 'API docs', 'OpenAPI', 'files', 'url', 'Add', 'clear', 'mode-search', 'query', 'rerank', 'rerank-n'],
      'focus order follows the page',
    );
    // Space opens the file picker from the focused input.
    await fresh.focus('#files');
    await fresh.keyboard.press('Space');
    t.ok(await chooser, 'the file picker opens from the keyboard');
  });

  t.test('the model picker: what each model can do; another model embeds the images again', async (t) => {
    t.same(await page.$$eval('#model option', (os) => os.map((o) => o.textContent)), ['tiny', 'old']);
    const before = requests.length;
    await page.selectOption('#model', 'old');
    await settle(page, total, { query: QUERY });
    t.match(await page.textContent('#model-info'), /^embed — 32-d, 96 px, fp32, cpu$/);
    t.ok(
      (await page.isDisabled('#rerank')) && (await page.isDisabled('#mode-classify')),
      'no re-rank switch, no Classify',
    );
    t.match(await page.textContent('#rerank-note'), /not for this model/);
    const posts = requests
      .slice(before)
      .filter((r) => r.method === 'POST')
      .map((r) => new URL(r.url).pathname);
    t.same(
      [posts.filter((p) => p === '/embed/image').length, posts.filter((p) => p === '/embed/text').length],
      [total, 1],
      'every image and the query embedded again, once',
    );
    // The same weights, so the same ranking.
    t.same(
      (await cards(page)).slice(0, accepted).map((c) => c.name),
      ranking(await textVec(QUERY)).map((w) => w.name),
    );
    await page.selectOption('#model', 'tiny');
    await settle(page, total, { query: QUERY });
    t.notOk(await page.isDisabled('#rerank'));
  });

  // ---- the Collection view ----

  const search = async (body: object) => {
    const res = await postJson(`${server.url}/v1/search`, body);
    if (res.status !== 200) throw new Error(`/v1/search ${res.status}: ${JSON.stringify(res.json)}`);
    return res.json.results as Hit[];
  };
  /** The body of the page's last POST /v1/search. */
  const lastSearch = () =>
    JSON.parse(requests.filter((r) => r.method === 'POST' && r.url.endsWith('/v1/search')).at(-1)!.body!);
  /** The page's results against /v1/search's for the same body: ids in order, every score exact. */
  const sameAsApi = async (t: Test, body: object, what: string) => {
    t.same(lastSearch(), body, `${what}: the page asks POST /v1/search for it`);
    const want = await search(body);
    const got = await collectionCards(page);
    t.same(
      got.map((c) => c.id),
      want.map((h) => h.id),
      `${what}: the ids of /v1/search, in its order`,
    );
    t.same(
      got.map((c) => [c.score, c.itc, c.itm, c.logit]),
      want.map((h) => [h.score, h.itc, h.itm_prob, h.itm_logits?.[1]]),
      `${what}: its scores, exactly (score, itc; ITM probability and match logit where re-ranked)`,
    );
    return { got, want };
  };

  t.test('Collection: the collections of the store, and what each is', async (t) => {
    t.same(
      indexed.map((r) => [r.added, r.failed.length]),
      [
        [24, 0],
        [60, 0],
        [3, 0],
      ],
      'indexed: 24 images, 60 captions, 3 images',
    );
    await page.click('label[for=mode-collection]');
    await page.waitForSelector('#collection-name option', { state: 'attached' });
    t.ok(await page.isHidden('#add'), 'the own-images part waits aside');
    const list = (await (await fetch(`${server.url}/v1/collections`)).json()) as {
      name: string;
      model: string;
      modality: string;
      count: number;
      index: string;
    }[];
    t.same(
      await page.$$eval('#collection-name option', (os) => os.map((o) => (o as HTMLInputElement).value)),
      list.map((c) => c.name),
      'the picker lists GET /v1/collections',
    );
    t.same(
      list.map((c) => c.name),
      ['doomed', 'ghost', 'pics', 'pics-texts'],
    );
    await page.selectOption('#collection-name', 'pics');
    const pics = list.find((c) => c.name === 'pics')!;
    t.equal(
      await page.textContent('#collection-info'),
      `model ${pics.model} · ${pics.count} images · index ${pics.index}`,
      'its model, modality, count and index',
    );
    t.same(
      await page.$$eval('#c-filter-field option', (os) => os.map((o) => (o as HTMLInputElement).value)),
      ['', 'captions', 'kind'],
      "the filter offers the collection's metadata_fields",
    );
    const unlabelled = await page.$$eval('#collection input, #collection select, #collection button', (els) =>
      els
        .filter((el) => {
          const e = el as HTMLInputElement;
          return (
            !e.closest('[hidden]') &&
            !(e.labels?.length || e.getAttribute('aria-label') || (e.tagName === 'BUTTON' && e.textContent?.trim()))
          );
        })
        .map((e) => e.id || e.outerHTML.slice(0, 60)),
    );
    t.same(unlabelled, [], 'no unlabelled control in the view');
  });

  t.test('Collection: a text against images, as /v1/search ranks it, then re-ranked; the thumbnails', async (t) => {
    await page.fill('#c-top-k', String(C_TOP_K));
    await page.fill('#c-query', C_QUERY);
    await settleCollection(page, { query: C_QUERY, rerank: 0, n: C_TOP_K, thumbs: true });
    t.ok(await page.isVisible('#c-rerank-row'), 'the re-rank switch: a text against images, a model that re-ranks');
    const plain = await sameAsApi(t, { collection: 'pics', query: C_QUERY, top_k: C_TOP_K }, 'ITC only');
    t.ok(
      plain.got.every((c) => c.itm === undefined),
      'no ITM scores without the re-rank',
    );
    // Every thumbnail is the service's JPEG of that item (fetched into a blob URL), at its size.
    for (const c of plain.got) {
      const res = await fetch(`${server.url}/v1/collections/pics/items/${encodeURIComponent(c.id)}/image?size=256`);
      if (res.status !== 200) t.fail(`${c.id}: the thumbnail route answers ${res.status}`);
      const { width } = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
      if (c.thumb !== 'ready' || !c.src?.startsWith('blob:') || c.width !== width)
        t.fail(`${c.id}: thumbnail ${c.thumb} ${c.src} ${c.width} px, the service's is ${width} px`);
    }
    t.pass('every thumbnail loaded, the service’s own, at its width');
    t.match(plain.got[0]!.text, /#1/);

    await page.fill('#c-rerank-n', String(C_RERANK));
    await page.check('#c-rerank');
    await settleCollection(page, { query: C_QUERY, rerank: C_RERANK, n: C_TOP_K, thumbs: true });
    const body = { collection: 'pics', query: C_QUERY, top_k: C_TOP_K, rerank: C_RERANK };
    const rr = await sameAsApi(t, body, 're-ranked');
    t.ok(
      rr.got.slice(0, C_RERANK).every((c) => c.itm !== undefined && c.score === c.logit) &&
        rr.got.slice(C_RERANK).every((c) => c.itm === undefined && c.score === c.itc),
      'the first K by the match logit with both scores, the rest by ITC',
    );
    t.match(rr.got[0]!.text, /ITM\s*[\d.]+match logit -?[\d.]+itc/);
    const thumbs = requests.filter((r) => r.url.includes('/v1/collections/pics/items/'));
    t.equal(new Set(thumbs.map((r) => r.url)).size, thumbs.length, 'each thumbnail fetched once');
    await screenshot(t, page, 'ui-collection.png');

    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    t.ok(overflow <= 0, `no sideways scrolling at 390 px (overflow ${overflow} px)`);
    await page.setViewportSize({ width: 1180, height: 900 });
  });

  t.test('Collection: clicking a result searches by it ({"id"}), itself left out', async (t) => {
    const third = (await collectionCards(page))[2]!.id;
    await page.click(`#c-results > li:nth-child(3) button.like`);
    await settleCollection(page, { query: `id:${third}`, rerank: 0, n: C_TOP_K, thumbs: true });
    t.ok(await page.isHidden('#c-rerank-row'), 'no re-rank for an item against its own collection');
    t.match(await page.textContent('#c-rerank-note'), /text query against images or an image query against texts/);
    t.equal(await page.textContent('#c-chip-text'), `More like ${third}`);
    const { got } = await sameAsApi(t, { collection: 'pics', query: { id: third }, top_k: C_TOP_K }, 'by item');
    t.notOk(
      got.some((c) => c.id === third),
      'the item itself is not among its results',
    );
    // Source and metadata on demand.
    await page.click('#c-results > li:first-child summary');
    const hit = (await search({ collection: 'pics', query: { id: third }, top_k: 1 }))[0] as Hit & {
      metadata: Record<string, unknown>;
    };
    const details = await page.textContent('#c-results > li:first-child details');
    t.ok(details!.includes(hit.source!) && details!.includes(JSON.stringify(hit.metadata.kind)), 'source and metadata');
  });

  t.test('Collection: an image dropped on the page against captions, re-ranked; a metadata filter', async (t) => {
    await page.selectOption('#collection-name', 'pics-texts');
    const bytes = readFileSync(join(RETRIEVAL, C_IMAGE));
    await page.evaluate(
      ({ name, b64 }) => {
        const data = new DataTransfer();
        data.items.add(new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], name, { type: 'image/jpeg' }));
        document.dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
      },
      { name: C_IMAGE, b64: bytes.toString('base64') },
    );
    const query = { image: `data:image/jpeg;base64,${bytes.toString('base64')}` };
    await settleCollection(page, { query: `image:${C_IMAGE}`, rerank: C_RERANK, n: C_TOP_K });
    t.ok(await page.isVisible('#c-rerank-row'), 'the re-rank switch: an image against texts');
    const body = { collection: 'pics-texts', query, top_k: C_TOP_K, rerank: C_RERANK };
    const { got, want } = await sameAsApi(t, body, 'image against captions, re-ranked');
    t.ok(
      got.every((c, i) => c.text.includes(want[i]!.source!) && c.src === undefined),
      'text items show their text, no picture',
    );
    // The captions of that image only: metadata field image = img05.jpg.
    await page.selectOption('#c-filter-field', 'image');
    await page.fill('#c-filter-value', C_IMAGE);
    const filter = { image: C_IMAGE };
    const n = ann.txt2img.filter((i) => ann.images[i] === C_IMAGE).length;
    await settleCollection(page, { query: `image:${C_IMAGE}`, rerank: C_RERANK, n, filter: JSON.stringify(filter) });
    const filtered = await sameAsApi(t, { ...body, filter }, 'filtered');
    t.same(
      filtered.got.map((c) => c.id).sort(),
      ann.txt2img.flatMap((i, q) => (ann.images[i] === C_IMAGE ? [String(q)] : [])).sort(),
      `only the captions of ${C_IMAGE}`,
    );
    await page.selectOption('#c-filter-field', '');
  });

  t.test('Collection: errors as the API words them: 409 model mismatch, 404 gone, 503 store down', async (t) => {
    const worded = (res: { status: number; json: { error: { code: string; message: string } } }) =>
      `${res.status} ${res.json.error.code}: ${res.json.error.message}`;
    // Another model's collection: the image query stays, the service cannot search it.
    await page.selectOption('#collection-name', 'ghost');
    const shownMismatch = await collectionError(page);
    const image = `data:image/jpeg;base64,${readFileSync(join(RETRIEVAL, C_IMAGE)).toString('base64')}`;
    const ghost = { collection: 'ghost', query: { image }, top_k: C_TOP_K };
    t.same(lastSearch(), ghost, 'the same image, against the other collection');
    const mismatch = await postJson(`${server.url}/v1/search`, ghost);
    t.equal(mismatch.status, 409);
    t.equal(shownMismatch, worded(mismatch), '409 model_mismatch, as the API words it');
    t.equal((await collectionCards(page)).length, 0, 'no results shown');

    // A collection dropped while the page shows it.
    await page.selectOption('#collection-name', 'doomed');
    await settleCollection(page, { query: `image:${C_IMAGE}`, rerank: 0, n: 3, thumbs: true });
    await store.drop('doomed');
    await page.fill('#c-query', 'a dog');
    const gone = await postJson(`${server.url}/v1/search`, {
      collection: 'doomed',
      query: 'a dog',
      top_k: C_TOP_K,
      rerank: C_RERANK,
    });
    t.equal(gone.status, 404);
    t.equal(await collectionError(page), worded(gone), '404 collection_not_found, as the API words it');
    t.same(lastSearch(), { collection: 'doomed', query: 'a dog', top_k: C_TOP_K, rerank: C_RERANK });

    // A store that cannot be reached.
    const ctx = await newContext();
    t.teardown(() => ctx.close());
    const other = await open(ctx, `${down.url}/`);
    await other.page.waitForSelector('#model option', { state: 'attached' });
    await other.page.click('label[for=mode-collection]');
    const shown = await collectionError(other.page);
    const res = await fetch(`${down.url}/v1/collections`);
    const unavailable = {
      status: res.status,
      json: (await res.json()) as { error: { code: string; message: string } },
    };
    t.equal(unavailable.status, 503);
    t.equal(shown, worded(unavailable), '503 store_unavailable, as the API words it');
    t.match(shown, /^503 store_unavailable: store postgres:\/\/albef@127\.0\.0\.1:\d+\/albef is unavailable/);
    t.same(
      other.problems.filter((p) => !/status of 503/.test(p)),
      [],
    );
  });

  t.test('nothing loaded from elsewhere, no CSP violation, no script error', async (t) => {
    const origins = new Set(requests.map((r) => new URL(r.url).origin).filter((o) => o !== 'null'));
    t.same([...origins].sort(), [server.url, files.url].sort(), 'only the service (and the pasted image URL)');
    t.ok(
      requests.filter((r) => r.url.startsWith(files.url)).every((r) => r.method === 'GET' && r.url.endsWith(URL_IMAGE)),
      'the other origin only for the pasted image',
    );
    t.same(problems, []);
  });

  t.test('API keys: the page asks for one, sends it as a bearer token, keeps it in the tab only', async (t) => {
    const ctx = await newContext();
    t.teardown(() => ctx.close());
    const { page, problems, requests } = await open(ctx, `${keyed.url}/`);
    await page.waitForSelector('#key-form:not([hidden])');
    t.equal(
      await page.textContent('#key-reason'),
      '401 unauthorized: missing or invalid API key. This service needs an API key.',
    );
    t.equal(await page.evaluate(() => document.activeElement?.id), 'key', 'the key field has the focus');
    await page.fill('#key', 'wrong');
    await page.press('#key', 'Enter');
    await page.waitForFunction(() => /Give another key/.test(document.getElementById('key-reason')!.textContent));
    await page.fill('#key', 'ui-test-key');
    await page.press('#key', 'Enter');
    await page.waitForSelector('#model option', { state: 'attached' });
    await page.setInputFiles('#files', [join(IMAGES_DIR, 'tiny.png')]);
    await settle(page, 1, { ready: true });
    const embed = requests.find((r) => r.url.endsWith('/embed/image'))!;
    t.equal(embed.auth, 'Bearer ui-test-key');
    const storage = await page.evaluate(() => ({
      local: localStorage.length,
      session: Object.keys(sessionStorage),
      cookies: document.cookie,
    }));
    t.same(storage, { local: 0, session: ['albef-embed.api-key'], cookies: '' }, 'sessionStorage only');
    // The Collection view's thumbnails: fetched with the key (an <img> could not send it), shown as blobs.
    await page.click('label[for=mode-collection]');
    await page.waitForSelector('#collection-name option', { state: 'attached' });
    await page.selectOption('#collection-name', 'pics');
    await page.fill('#c-query', C_QUERY);
    await settleCollection(page, { query: C_QUERY, rerank: 0, n: 24, thumbs: true });
    const thumbs = requests.filter((r) => r.url.includes('/v1/collections/pics/items/'));
    t.equal(thumbs.length, 24);
    t.ok(
      thumbs.every((r) => r.auth === 'Bearer ui-test-key'),
      'every thumbnail request carries the key',
    );
    t.ok(
      (await collectionCards(page)).every((c) => c.src?.startsWith('blob:') && c.width! > 0),
      'shown from blob URLs',
    );
    t.same(problems, []);
  });
}
