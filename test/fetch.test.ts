// `albef-embed fetch` against a local server that serves the fixture checkpoint the way Cloud
// Storage does (Content-Length, x-goog-hash MD5, Range requests) and drops the first connection
// midway: the download resumes, is verified, and the model is converted.

import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { fetchModel } from '../src/cli/fetch-command.js';
import { runCli } from './helpers/cli.js';
import { TINY_ARCH, TINY_CHECKPOINT } from './helpers/golden.js';

const dir = await mkdtemp(join(tmpdir(), 'albef-fetch-'));
const ckpt = await readFile(TINY_CHECKPOINT);
const md5 = createHash('md5').update(ckpt).digest('base64');

let requests: { range?: string }[] = [];
let dropFirst = true;
let lieAboutMd5 = false;
const server = createServer((req: IncomingMessage, res) => {
  requests.push({ range: req.headers.range });
  const hash = `crc32c=AAAAAA==,md5=${lieAboutMd5 ? createHash('md5').update('other').digest('base64') : md5}`;
  const m = req.headers.range?.match(/^bytes=(\d+)-$/);
  if (m) {
    const from = Number(m[1]);
    res.writeHead(206, { 'content-length': ckpt.length - from, 'content-range': `bytes ${from}-${ckpt.length - 1}/${ckpt.length}`, 'x-goog-hash': hash });
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
t.teardown(async () => {
  server.closeAllConnections();
  server.close();
  await rm(dir, { recursive: true, force: true });
});

t.test('an interrupted download resumes with Range, is verified and converted', async (t) => {
  const out = await fetchModel({ preset: 'albef_4m', url, cacheDir: join(dir, 'cache'), archFile: TINY_ARCH, out: join(dir, 'model') });
  t.ok(existsSync(join(out, 'model.json')) && existsSync(join(out, 'image.onnx')), 'model converted');
  t.ok(requests.some((r) => r.range === `bytes=${ckpt.length >> 1}-` || /^bytes=\d+-$/.test(r.range ?? '')), `resumed with a Range request (${JSON.stringify(requests)})`);
  t.same(await readFile(join(dir, 'cache', 'ALBEF_4M.pth')), ckpt, 'the cached file is the checkpoint');
  const manifest = JSON.parse(await readFile(join(out, 'model.json'), 'utf8'));
  t.equal(manifest.source.sha256, createHash('sha256').update(ckpt).digest('hex'));
  requests = [];
  await fetchModel({ preset: 'albef_4m', url, cacheDir: join(dir, 'cache'), archFile: TINY_ARCH, out: join(dir, 'model'), force: true });
  t.same(requests, [], 'a cached checkpoint is not downloaded again');
});

t.test('an MD5 mismatch fails and leaves nothing behind', async (t) => {
  lieAboutMd5 = true;
  t.teardown(() => (lieAboutMd5 = false));
  await t.rejects(fetchModel({ preset: 'albef_4m', url, cacheDir: join(dir, 'cache2'), archFile: TINY_ARCH, out: join(dir, 'model2') }), /MD5 .* does not match/);
  t.notOk(existsSync(join(dir, 'cache2', 'ALBEF_4M.pth')), 'no cached file');
  t.notOk(existsSync(join(dir, 'cache2', 'ALBEF_4M.pth.part')), 'no partial file');
  t.notOk(existsSync(join(dir, 'model2')), 'no model');
});

t.test('the command line reports progress as plain lines when not on a terminal', async (t) => {
  const res = await runCli(['fetch', 'albef_4m', '--url', url, '--cache-dir', join(dir, 'cache3'), '--arch', TINY_ARCH, '--out', join(dir, 'model3')]);
  t.equal(res.code, 0, res.stderr);
  t.match(res.stderr, /ALBEF_4M\.pth: [\d.]+ MB \/ [\d.]+ MB 100%/);
  t.match(res.stderr, /model ready in/);
  const usage = await runCli(['fetch', 'albef_99m']);
  t.equal(usage.code, 2);
});
