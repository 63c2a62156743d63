// A real service on 127.0.0.1 serving the model the project's own converter builds from the fixture
// checkpoint; plus a tiny static file server standing in for the web.

import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, type App, type BuildOptions } from '../src/http/app.js';
import { resolveConfig, type Config } from '../src/service/config.js';
import { convertCheckpoint } from '../src/convert/convert.js';
import { TINY_ARCH, TINY_CHECKPOINT } from './golden.js';

let tiny: Promise<{ dir: string; root: string }> | undefined;

/** The tiny model converted once per test process (removed by the caller's teardown via cleanupTinyModel). */
export function tinyModel(): Promise<{ dir: string; root: string }> {
  tiny ??= (async () => {
    const root = await mkdtemp(join(tmpdir(), 'albef-tiny-'));
    const dir = join(root, 'tiny');
    await convertCheckpoint({ checkpoint: TINY_CHECKPOINT, out: dir, archFile: TINY_ARCH, name: 'tiny' });
    return { dir, root };
  })();
  return tiny;
}

export async function cleanupTinyModel(): Promise<void> {
  if (tiny) await rm((await tiny).root, { recursive: true, force: true });
}

export interface TestServer {
  app: App;
  url: string;
  close: () => Promise<void>;
}

export async function startServer(overrides: Partial<Config> = {}, options: BuildOptions = {}): Promise<TestServer> {
  const { dir } = await tinyModel();
  // One ONNX Runtime thread per tower: tap runs two files at once on 2 cores, where a thread per CPU in
  // every tower of every server only adds ORT's spin-waiting threads fighting for them (the tiny
  // models gain nothing from a second thread). Tests about threads set their own.
  const config = resolveConfig({
    models: [dir],
    host: '127.0.0.1',
    port: 0,
    logLevel: 'silent',
    decodeThreads: 1,
    intraOpThreads: 1,
    // No collection store unless a test gives one (a ./collections of the checkout is not the tests').
    store: '',
    ...overrides,
  });
  const app = await buildApp(config, { logger: false, ...options });
  await app.listen({ host: '127.0.0.1', port: 0 });
  await app.service.start();
  const { port } = app.server.address() as AddressInfo;
  return { app, url: `http://127.0.0.1:${port}`, close: () => app.close() };
}

export interface StaticServer {
  url: string;
  server: Server;
  /** remote ports of every accepted connection (for "no connection was made" assertions) */
  connections: number;
  close: () => Promise<void>;
}

/** Serves files from `dir` at /<name>; `routes` add custom handlers by path. */
export async function startStaticServer(
  dir: string,
  routes: Record<string, (res: import('node:http').ServerResponse) => void> = {},
): Promise<StaticServer> {
  const state = { connections: 0 };
  const server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    const custom = routes[path];
    if (custom) return custom(res);
    readFile(join(dir, path.replace(/^\/+/, '').replace(/\.\./g, ''))).then(
      (body) =>
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length }).end(body),
      () => res.writeHead(404).end('not found'),
    );
  });
  server.on('connection', () => state.connections++);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    get connections() {
      return state.connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A response body as the tests inspect it: untyped JSON. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type UntypedJson = any;

/** POST JSON and parse the JSON answer. */
export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; json: UntypedJson }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = { raw: text };
  }
  return { status: res.status, headers: res.headers, json };
}

/** Decodes a base64 little-endian float32 vector. */
export function fromBase64(s: string): Float32Array {
  const b = Buffer.from(s, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/**
 * Holds `n` of the server's image queue places: one request of `n` images by URL whose fetches a
 * local server answers only on `release()` (the places are taken from admission, before fetching).
 * Resolves once every fetch has arrived; `done` is that request's answer. Needs --allow-private-urls.
 */
export async function holdImagePlaces(
  serviceUrl: string,
  n: number,
  image: Buffer,
): Promise<{ release: () => void; done: Promise<{ status: number }> }> {
  const waiting: import('node:http').ServerResponse[] = [];
  let arrived!: () => void;
  const all = new Promise<void>((r) => (arrived = r));
  const slow = await startStaticServer('/nonexistent', {
    '/held.png': (res) => {
      waiting.push(res);
      if (waiting.length === n) arrived();
    },
  });
  const done = postJson(`${serviceUrl}/embed/image`, {
    urls: Array.from({ length: n }, (_, i) => `${slow.url}/held.png?${i}`),
  }).finally(() => slow.close());
  await all;
  return {
    release: () => waiting.forEach((res) => res.writeHead(200, { 'content-type': 'image/png' }).end(image)),
    done,
  };
}
