// `albef-embed fetch` against a local server that serves the fixture checkpoint the way Cloud
// Storage does (Content-Length, x-goog-hash MD5, Range requests) and drops the first connection
// midway: the download resumes, is verified, and the model is converted. And the ways a download
// fails (no such host, nothing listening, not TLS, no answer, an HTTP status), each said in words,
// retried only when a retry can help: local servers and unused ports, no real network.

import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo, LookupFunction } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { fetchModel, type FetchLog } from '../../src/convert/fetch-model.js';
import { download, type RetryInfo } from '../../src/convert/download.js';
import { freePort, runCli } from '../../kit/cli.js';
import { TINY_ARCH, TINY_CHECKPOINT } from '../../kit/golden.js';
import { DownloadError } from '../../src/core/errors.js';

const dir = await mkdtemp(join(tmpdir(), 'albef-fetch-'));
const ckpt = await readFile(TINY_CHECKPOINT);
const md5 = createHash('md5').update(ckpt).digest('base64');

let requests: { range?: string; url?: string }[] = [];
let dropFirst = true;
let lieAboutMd5 = false;
const server = createServer((req: IncomingMessage, res) => {
  requests.push({ range: req.headers.range, url: req.url });
  const status = req.url?.match(/^\/status\/(\d+)$/);
  if (status) return res.writeHead(Number(status[1])).end();
  if (req.url === '/silent') return; // accepts, never answers
  const hash = `crc32c=AAAAAA==,md5=${lieAboutMd5 ? createHash('md5').update('other').digest('base64') : md5}`;
  const m = req.headers.range?.match(/^bytes=(\d+)-$/);
  if (m) {
    const from = Number(m[1]);
    res.writeHead(206, {
      'content-length': ckpt.length - from,
      'content-range': `bytes ${from}-${ckpt.length - 1}/${ckpt.length}`,
      'x-goog-hash': hash,
    });
    return res.end(ckpt.subarray(from));
  }
  res.writeHead(200, { 'content-length': ckpt.length, 'x-goog-hash': hash });
  if (dropFirst) {
    dropFirst = false;
    res.write(ckpt.subarray(0, ckpt.length >> 1), () => res.destroy()); // connection lost halfway
    return;
  }
  res.end(ckpt);
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ALBEF_4M.pth`;

/** fetchModel's report, kept for the assertions instead of printed. */
const lines: string[] = [];
const quiet: FetchLog = { info: (m) => lines.push(m), warn: (m) => lines.push(m) };
t.teardown(async () => {
  server.closeAllConnections();
  server.close();
  await rm(dir, { recursive: true, force: true });
});

t.test('an interrupted download resumes with Range, is verified and converted', async (t) => {
  const out = await fetchModel(
    {
      preset: 'albef_4m',
      url,
      cacheDir: join(dir, 'cache'),
      archFile: TINY_ARCH,
      out: join(dir, 'model'),
    },
    quiet,
  );
  t.ok(existsSync(join(out, 'model.json')) && existsSync(join(out, 'image.onnx')), 'model converted');
  t.ok(
    requests.some((r) => r.range === `bytes=${ckpt.length >> 1}-` || /^bytes=\d+-$/.test(r.range ?? '')),
    `resumed with a Range request (${JSON.stringify(requests)})`,
  );
  t.same(await readFile(join(dir, 'cache', 'ALBEF_4M.pth')), ckpt, 'the cached file is the checkpoint');
  const manifest = JSON.parse(await readFile(join(out, 'model.json'), 'utf8'));
  t.equal(manifest.source.sha256, createHash('sha256').update(ckpt).digest('hex'));
  requests = [];
  await fetchModel(
    {
      preset: 'albef_4m',
      url,
      cacheDir: join(dir, 'cache'),
      archFile: TINY_ARCH,
      out: join(dir, 'model'),
      force: true,
    },
    quiet,
  );
  t.same(requests, [], 'a cached checkpoint is not downloaded again');
});

t.test('an MD5 mismatch fails and leaves nothing behind', async (t) => {
  lieAboutMd5 = true;
  t.teardown(() => (lieAboutMd5 = false));
  await t.rejects(
    fetchModel(
      {
        preset: 'albef_4m',
        url,
        cacheDir: join(dir, 'cache2'),
        archFile: TINY_ARCH,
        out: join(dir, 'model2'),
      },
      quiet,
    ),
    /MD5 .* does not match/,
  );
  t.notOk(existsSync(join(dir, 'cache2', 'ALBEF_4M.pth')), 'no cached file');
  t.notOk(existsSync(join(dir, 'cache2', 'ALBEF_4M.pth.part')), 'no partial file');
  t.notOk(existsSync(join(dir, 'model2')), 'no model');
});

t.test('the command line reports progress as plain lines when not on a terminal', async (t) => {
  const res = await runCli([
    'fetch',
    'albef_4m',
    '--url',
    url,
    '--cache-dir',
    join(dir, 'cache3'),
    '--arch',
    TINY_ARCH,
    '--out',
    join(dir, 'model3'),
  ]);
  t.equal(res.code, 0, res.stderr);
  t.match(res.stderr, /ALBEF_4M\.pth: [\d.]+ MB \/ [\d.]+ MB 100%/);
  t.match(res.stderr, /model ready in/);
  const usage = await runCli(['fetch', 'albef_99m']);
  t.equal(usage.code, 2);
});

t.test('serve --fetch logs JSON lines like the service, also when the model cannot be made', async (t) => {
  // A checkpoint already in the cache is used without a download; this one is not albef_4m's shape,
  // so the conversion fails after the first log lines.
  const cache = join(dir, 'xdg');
  await mkdir(join(cache, 'albef-embed'), { recursive: true });
  await copyFile(TINY_CHECKPOINT, join(cache, 'albef-embed', 'ALBEF_4M.pth'));
  const res = await runCli(['serve', '--models', join(dir, 'served'), '--fetch', 'albef_4m', '--port', '0'], {
    XDG_CACHE_HOME: cache,
  });
  t.equal(res.code, 1, 'no model: exit 1');
  const stdout = res.stdout.trim().split('\n');
  t.ok(stdout.length > 0 && stdout.every((l) => typeof JSON.parse(l) === 'object'), `every line JSON: ${res.stdout}`);
  t.match(JSON.parse(stdout[0]!), { level: 30, msg: /already downloaded/ });
  t.match(res.stderr, /shape_mismatch/, 'the failure, said once on stderr');
});

/** Downloads `url` with short limits and records the retries. */
async function tryDownload(
  url: string,
  extra: { lookup?: LookupFunction } = {},
): Promise<{ error: DownloadError; retries: RetryInfo[] }> {
  const retries: RetryInfo[] = [];
  const error = await download({
    url,
    dest: join(dir, 'failing.pth'),
    retries: 2,
    backoffMs: 1,
    timeoutMs: 300,
    onRetry: (r) => retries.push(r),
    ...extra,
  }).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof DownloadError)) throw new Error(`expected a DownloadError, got ${String(error)}`);
  return { error, retries };
}

t.test('a host that does not resolve: said once, not retried', async (t) => {
  const lookup: LookupFunction = (hostname, _options, callback) =>
    callback(
      Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), {
        code: 'ENOTFOUND',
        syscall: 'getaddrinfo',
        hostname,
      }),
      '',
      4,
    );
  const { error, retries } = await tryDownload('https://mirror.invalid/ALBEF_4M.pth', { lookup });
  t.equal(
    error.message,
    'cannot download https://mirror.invalid/ALBEF_4M.pth: the DNS lookup of mirror.invalid found no such host (ENOTFOUND)',
  );
  t.same(retries, [], 'no retries');
});

t.test('nothing listening: ECONNREFUSED, not retried', async (t) => {
  const port = await freePort();
  const { error, retries } = await tryDownload(`http://127.0.0.1:${port}/ALBEF_4M.pth`);
  t.equal(error.reason, `127.0.0.1 port ${port} refused the connection (ECONNREFUSED: nothing listens there)`);
  t.same(retries, []);
  const blocked = await tryDownload('http://127.0.0.1:9/ALBEF_4M.pth');
  t.equal(
    blocked.error.reason,
    'fetch never connects to port 9 (a blocked port in the fetch standard)',
    'undici\'s bare "bad port" explained',
  );
  t.same(blocked.retries, []);
});

t.test('https to a server that does not speak TLS: a TLS error, not retried', async (t) => {
  const { error, retries } = await tryDownload(url.replace('http:', 'https:'));
  t.match(error.reason, /^the TLS handshake with 127\.0\.0\.1 failed: .+ \(ERR_SSL_[A-Z_]+; /);
  t.same(retries, []);
});

t.test('no answer within the timeout: retried, then said', async (t) => {
  const { error, retries } = await tryDownload(url.replace('/ALBEF_4M.pth', '/silent'));
  t.equal(
    error.reason,
    '127.0.0.1 accepted the connection but sent no response within 0.3 s (UND_ERR_HEADERS_TIMEOUT)',
  );
  t.same(
    retries.map((r) => [r.attempt, r.of, r.reason]),
    [
      [1, 3, error.reason],
      [2, 3, error.reason],
    ],
    'each retry says why',
  );
});

t.test('HTTP statuses: 404 said at once, 503 retried', async (t) => {
  const notFound = await tryDownload(url.replace('/ALBEF_4M.pth', '/status/404'));
  t.equal(notFound.error.reason, `${new URL(url).host} answered HTTP 404 Not Found`);
  t.same(notFound.retries, []);
  const unavailable = await tryDownload(url.replace('/ALBEF_4M.pth', '/status/503'));
  t.equal(unavailable.error.reason, `${new URL(url).host} answered HTTP 503 Service Unavailable`);
  t.equal(unavailable.retries.length, 2);
});

t.test('the command line, offline: why, and what to do next, once', async (t) => {
  const port = await freePort();
  const res = await runCli([
    'fetch',
    'albef_4m',
    '--url',
    `http://127.0.0.1:${port}/ALBEF_4M.pth`,
    '--cache-dir',
    join(dir, 'cache4'),
    '--out',
    join(dir, 'model4'),
  ]);
  t.equal(res.code, 1);
  t.match(
    res.stderr,
    `error [download_failed]: cannot download http://127.0.0.1:${port}/ALBEF_4M.pth: 127.0.0.1 port ${port} refused the connection (ECONNREFUSED: nothing listens there).`,
  );
  t.match(res.stderr, /download from a mirror: +albef-embed fetch albef_4m --url /);
  t.match(res.stderr, /convert it: +albef-embed convert --checkpoint ALBEF_4M\.pth --preset albef_4m --out /);
  t.notMatch(res.stderr, /attempt \d/, 'no retries of a refused connection');
  t.notMatch(res.stderr, /fetch failed/);
  t.notOk(existsSync(join(dir, 'model4')), 'no model');
});
