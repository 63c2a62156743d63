// SSRF guard: image URLs that point at private, loopback, link-local, CGNAT, unspecified or mapped
// addresses, in any spelling, directly, through DNS or through redirects, are refused before any
// connection is made; oversize and slow responses are cut off.
//
// Two local servers: "public" on 127.0.0.1 (the test's address policy treats that one address as
// public) and "private" on 127.0.0.2 (loopback, forbidden), whose accept count must stay 0.

import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { isForbiddenAddress } from '../../src/sources/address-policy.js';
import { cosine, golden, IMAGES_DIR, TOL } from '../../kit/golden.js';
import { cleanupTinyModel, postJson, startServer } from '../../kit/server.js';

const photo = await readFile(join(IMAGES_DIR, 'photo.jpg'));

async function listen(server: Server, host: string): Promise<number> {
  server.listen(0, host);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

let privateAccepts = 0;
const privateServer = createServer((_req, res) => res.end(photo));
privateServer.on('connection', () => privateAccepts++);
const privatePort = await listen(privateServer, '127.0.0.2');

const publicServer = createServer((req, res) => {
  const path = req.url ?? '/';
  if (path === '/photo.jpg') return res.end(photo);
  if (path === '/to-private')
    return res.writeHead(302, { location: `http://127.0.0.2:${privatePort}/photo.jpg` }).end();
  if (path === '/chain-1') return res.writeHead(301, { location: '/chain-2' }).end();
  if (path === '/chain-2') return res.writeHead(307, { location: `http://evil.test:${privatePort}/photo.jpg` }).end();
  if (path === '/loop') return res.writeHead(302, { location: '/loop' }).end();
  if (path === '/big')
    return res.writeHead(200, { 'content-length': String(5 * 1024 * 1024) }).end(Buffer.alloc(5 * 1024 * 1024));
  if (path === '/big-chunked') {
    res.writeHead(200);
    const chunk = Buffer.alloc(64 * 1024);
    let sent = 0;
    const push = () => {
      if (sent >= 5 * 1024 * 1024 || res.destroyed) return res.end();
      sent += chunk.length;
      if (res.write(chunk)) setImmediate(push);
      else res.once('drain', push);
    };
    return push();
  }
  if (path === '/slow') {
    res.writeHead(200, { 'content-type': 'image/jpeg' });
    const timer = setInterval(() => res.write(Buffer.from([0xff])), 200);
    res.on('close', () => clearInterval(timer));
    return;
  }
  res.writeHead(404).end();
});
const publicPort = await listen(publicServer, '127.0.0.1');

const resolver = async (host: string) => {
  const table: Record<string, string[]> = {
    'public.test': ['127.0.0.1'],
    'evil.test': ['127.0.0.2'],
    'mixed.test': ['127.0.0.1', '10.1.2.3'],
  };
  const addrs = table[host];
  if (!addrs) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  return addrs.map((address) => ({ address, family: 4 }));
};
const server = await startServer(
  { urlTimeoutMs: 1500, urlMaxBytes: 1024 * 1024, urlMaxRedirects: 3 },
  { resolver, isForbiddenAddress: (a) => a !== '127.0.0.1' && isForbiddenAddress(a) },
);
t.teardown(async () => {
  await server.close();
  publicServer.closeAllConnections();
  privateServer.closeAllConnections();
  publicServer.close();
  privateServer.close();
  await cleanupTinyModel();
});

const pub = `http://public.test:${publicPort}`;
const P = privatePort;

t.test('an allowed URL is fetched', async (t) => {
  const res = await postJson(`${server.url}/embed/image`, { url: `${pub}/photo.jpg` });
  t.equal(res.status, 200);
  t.ok(cosine(res.json.embeddings[0], golden.images.find((g) => g.file === 'photo.jpg')!.embedding) >= TOL.imageCos);
});

const refused: [string, string][] = [
  ['loopback literal', `http://127.0.0.2:${P}/photo.jpg`],
  ['localhost-style loopback', `http://127.1.2.3:${P}/`],
  ['RFC 1918 10/8', 'http://10.0.0.1/'],
  ['RFC 1918 172.16/12', 'http://172.16.5.4/'],
  ['RFC 1918 192.168/16', 'http://192.168.1.1/'],
  ['link-local / cloud metadata', 'http://169.254.169.254/latest/meta-data/'],
  ['CGNAT 100.64/10', 'http://100.64.0.1/'],
  ['unspecified 0.0.0.0', `http://0.0.0.0:${P}/`],
  ['IPv6 loopback', `http://[::1]:${P}/`],
  ['IPv4-mapped IPv6', `http://[::ffff:127.0.0.2]:${P}/`],
  ['IPv4-mapped IPv6, hex form', `http://[::ffff:7f00:2]:${P}/`],
  ['IPv6 unique-local', 'http://[fd00::1]/'],
  ['IPv6 link-local', 'http://[fe80::1]/'],
  ['decimal IPv4', `http://2130706434:${P}/`],
  ['octal IPv4', `http://0177.0.0.2:${P}/`],
  ['hex IPv4', `http://0x7f000002:${P}/`],
  ['a public-looking name resolving to loopback', `http://evil.test:${P}/photo.jpg`],
  ['a name with one private address among public ones', `http://mixed.test:${publicPort}/photo.jpg`],
  ['a redirect to a private address', `${pub}/to-private`],
  ['a redirect chain ending at a private name', `${pub}/chain-1`],
];
for (const [label, url] of refused) {
  t.test(`refused: ${label}`, async (t) => {
    const started = Date.now();
    const res = await postJson(`${server.url}/embed/image`, { urls: [`${pub}/photo.jpg`, url] });
    t.equal(res.status, 400, JSON.stringify(res.json).slice(0, 200));
    t.match(res.json.error, { code: 'url_not_allowed', index: 1 });
    t.ok(Date.now() - started < 1500, 'refused without waiting on the network');
  });
}

for (const url of [
  'file:///etc/passwd',
  'ftp://public.test/x.jpg',
  'gopher://public.test:70/',
  'javascript:alert(1)',
  'data:image/png;base64,iVBORw0KGgo=',
  `http://user:pw@public.test:${publicPort}/photo.jpg`,
]) {
  t.test(`refused scheme or form: ${url.slice(0, 30)}`, async (t) => {
    const res = await postJson(`${server.url}/embed/image`, { url });
    t.equal(res.status, 400);
    t.match(res.json.error, { code: /url_not_allowed|invalid_url/, index: 0 });
  });
}

t.test('size, time and redirect limits', async (t) => {
  const big = await postJson(`${server.url}/embed/image`, { url: `${pub}/big` });
  t.equal(big.status, 413, 'declared oversize');
  t.match(big.json.error, { code: 'url_too_large', index: 0 });
  const chunked = await postJson(`${server.url}/embed/image`, { url: `${pub}/big-chunked` });
  t.equal(chunked.status, 413, 'oversize while streaming');
  const started = Date.now();
  const slow = await postJson(`${server.url}/embed/image`, { url: `${pub}/slow` });
  t.equal(slow.status, 502, 'slow drip cut off');
  t.match(slow.json.error, { code: 'url_timeout' });
  t.ok(Date.now() - started < 4000, `cut off after ${Date.now() - started} ms (limit 1500)`);
  const loop = await postJson(`${server.url}/embed/image`, { url: `${pub}/loop` });
  t.equal(loop.status, 502);
  t.match(loop.json.error, { code: 'url_too_many_redirects' });
  const unknown = await postJson(`${server.url}/embed/image`, { url: `http://nowhere.test/x.jpg` });
  t.equal(unknown.status, 502, 'DNS failure');
});

t.test('no connection ever reached the private server', async (t) => {
  t.equal(privateAccepts, 0);
  const res = await postJson(`${server.url}/embed/image`, { url: `${pub}/photo.jpg` });
  t.equal(res.status, 200, 'and the service still works');
});
