// Servers that close the connection right after the body (`Connection: close`, then FIN, as
// `python3 -m http.server` does): undici 7 crashed the process with an uncatchable
// `assert(!this.paused)` when that FIN met a parser paused by a slow reader (nodejs/undici#5360).
// `fetch --url` (whose reader writes each chunk to disk) must finish, whatever the disk's speed, and
// so must the service's URL fetcher. The disk is slowed in the child processes by kit/slow-disk.mjs.
// The interceptor that makes it so (src/core/unpaused-responses.ts) is also run alone, with a reader
// that lags far past its bound, over the three ways a body can end.

import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { spawn } from 'node:child_process';
import t from 'tap';
import { loaderArgs, runCli } from '../../kit/cli.js';
import { TINY_ARCH, TINY_CHECKPOINT } from '../../kit/golden.js';
import { PACKAGE_ROOT } from '../../src/core/paths.js';
import { UrlFetcher } from '../../src/sources/url-fetcher.js';

const dir = await mkdtemp(join(tmpdir(), 'albef-close-'));
const body = await readFile(TINY_CHECKPOINT);
const ranges: string[] = [];

/** HTTP/1.1 by hand: every answer says `Connection: close` and ends with FIN straight after the body. */
const server = createServer((sock: Socket) => {
  sock.on('error', () => {});
  let head = '';
  sock.on('data', (d: Buffer) => {
    head += d.toString('latin1');
    if (!head.includes('\r\n\r\n')) return;
    const path = head.split(' ')[1] ?? '/';
    if (path.startsWith('/chunked')) {
      sock.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n');
      for (let i = 0; i < body.length; i += 1 << 16) {
        const piece = body.subarray(i, i + (1 << 16));
        sock.write(`${piece.length.toString(16)}\r\n`);
        sock.write(piece);
        sock.write('\r\n');
      }
      sock.end('0\r\n\r\n');
      return;
    }
    if (path.startsWith('/at-fin')) {
      sock.write('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n'); // no length: the body ends at the FIN
      sock.end(body);
      return;
    }
    const range = head.match(/^range: bytes=(\d+)-\r$/im);
    const from = range ? Number(range[1]) : 0;
    if (range) ranges.push(range[1]!);
    if (from >= body.length) {
      sock.end(
        `HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */${body.length}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
      );
      return;
    }
    const status = range
      ? `206 Partial Content\r\nContent-Range: bytes ${from}-${body.length - 1}/${body.length}`
      : '200 OK';
    sock.write(`HTTP/1.1 ${status}\r\nContent-Length: ${body.length - from}\r\nConnection: close\r\n\r\n`);
    sock.end(body.subarray(from));
  });
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ALBEF_4M.pth`;
t.teardown(async () => {
  server.close();
  await rm(dir, { recursive: true, force: true });
});

const slowDisk = pathToFileURL(join(PACKAGE_ROOT, 'kit', 'slow-disk.mjs')).href;
const withSlowDisk = { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${slowDisk}`.trim() };

t.test('fetch --url from such a server, onto a slow disk: the model, no .part left', async (t) => {
  const cache = join(dir, 'cache');
  const res = await runCli(
    ['fetch', 'albef_4m', '--url', url, '--cache-dir', cache, '--arch', TINY_ARCH, '--out', join(dir, 'model')],
    withSlowDisk,
  );
  t.equal(res.code, 0, res.stderr);
  t.notMatch(res.stderr, /AssertionError/);
  t.ok(existsSync(join(dir, 'model', 'model.json')), 'the model was converted');
  t.same(await readFile(join(cache, 'ALBEF_4M.pth')), body, 'the checkpoint, whole');
  t.notOk(existsSync(join(cache, 'ALBEF_4M.pth.part')), 'no .part left behind');
});

t.test('five downloads in one process, onto a slow disk: each whole, none crashes', async (t) => {
  const script = `
    import { download } from ${JSON.stringify(pathToFileURL(join(PACKAGE_ROOT, 'src', 'convert', 'download.ts')).href)};
    for (let i = 0; i < 5; i++) {
      const r = await download({ url: ${JSON.stringify(url)}, dest: ${JSON.stringify(join(dir, 'five'))} + i, retries: 0 });
      process.stdout.write(r.bytes + '\\n');
    }`;
  const child = spawn(
    process.execPath,
    [...loaderArgs(), `--import=${slowDisk}`, '--input-type=module', '-e', script],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  t.equal(code, 0, stderr);
  t.same(stdout.trim().split('\n'), Array(5).fill(String(body.length)), 'five whole downloads');
  for (let i = 0; i < 5; i++) t.same(await readFile(join(dir, `five${i}`)), body);
});

t.test('a whole .part left by a crashed run: a 416 for the range past its end completes it', async (t) => {
  const cache = join(dir, 'cache-416');
  await mkdir(cache, { recursive: true });
  await writeFile(join(cache, 'ALBEF_4M.pth.part'), body);
  ranges.length = 0;
  const res = await runCli([
    'fetch',
    'albef_4m',
    '--url',
    url,
    '--cache-dir',
    cache,
    '--arch',
    TINY_ARCH,
    '--out',
    join(dir, 'model-416'),
  ]);
  t.equal(res.code, 0, res.stderr);
  t.same(ranges, [String(body.length)], 'asked for the bytes after the .part, got 416');
  t.same(await readFile(join(cache, 'ALBEF_4M.pth')), body);
  t.notOk(existsSync(join(cache, 'ALBEF_4M.pth.part')));
});

t.test('the interceptor: a lagging reader, any body framing, FIN right after: each body whole', async (t) => {
  const script = `
    import { setTimeout as sleep } from 'node:timers/promises';
    import { Agent, request } from 'undici';
    import { unpausedResponses } from ${JSON.stringify(pathToFileURL(join(PACKAGE_ROOT, 'src', 'core', 'unpaused-responses.ts')).href)};
    const agent = new Agent();
    const dispatcher = agent.compose(unpausedResponses({ maxBacklogBytes: 64 << 10 }));
    for (const path of ['/length', '/chunked', '/at-fin']) {
      for (let i = 0; i < 3; i++) {
        const res = await request(${JSON.stringify(url.replace('/ALBEF_4M.pth', ''))} + path, { dispatcher });
        let n = 0;
        for await (const chunk of res.body) {
          n += chunk.length;
          await sleep(1);
        }
        process.stdout.write(path + ' ' + n + '\\n');
      }
    }
    await agent.close();`;
  const child = spawn(process.execPath, [...loaderArgs(), '--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  t.equal(code, 0, stderr);
  t.same(
    stdout.trim().split('\n'),
    ['/length', '/chunked', '/at-fin'].flatMap((p) => Array(3).fill(`${p} ${body.length}`)),
    'every body whole',
  );
});

t.test("the service's URL fetcher against the same server: 24 fetches, each whole", async (t) => {
  const fetcher = new UrlFetcher({ allowPrivate: true, timeoutMs: 10_000, maxBytes: 20 << 20, maxRedirects: 0 });
  t.teardown(() => fetcher.close());
  for (let i = 0; i < 24; i++) {
    const got = await fetcher.fetch(`${url}?${i}`);
    if (got.length !== body.length || !Buffer.from(got).equals(body)) t.fail(`fetch ${i}: ${got.length} bytes`);
  }
  t.pass('24 whole bodies');
});
