// The real process: `albef-embed serve` on 127.0.0.1; SIGTERM while requests are in flight lets every
// one of them complete, then the process exits 0.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { IMAGES_DIR } from '../../kit/golden.js';
import { spawnCli } from '../../kit/cli.js';
import { cleanupTinyModel, postJson, startServer, startStaticServer, tinyModel } from '../../kit/server.js';

t.teardown(cleanupTinyModel);

t.test('SIGTERM drains in-flight requests and exits 0', async (t) => {
  const { dir } = await tinyModel();
  const child = spawnCli(['serve', '--models', dir, '--port', '0', '--decode-threads', '1', '--allow-private-urls'], {
    ALBEF_LOG_LEVEL: 'info',
  });
  let log = '';
  const listening = new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      log += d.toString();
      const m = log.match(/Server listening at (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`exited ${code} before listening: ${log}`)));
  });
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const url = await listening;
  for (let i = 0; i < 100; i++) {
    if ((await fetch(`${url}/readyz`)).status === 200) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.equal((await fetch(`${url}/readyz`)).status, 200, 'ready');

  // Each image request fetches its image from a server that answers slowly; once that server has seen
  // every fetch, all requests are accepted and in flight, and then the signal is sent.
  const photo = await readFile(join(IMAGES_DIR, 'photo.jpg'));
  let fetches = 0;
  let allSeen: () => void;
  const seen = new Promise<void>((r) => (allSeen = r));
  const slow = await startStaticServer(IMAGES_DIR, {
    '/slow.jpg': (res) => {
      if (++fetches === 3) allSeen();
      setTimeout(() => res.writeHead(200, { 'content-type': 'image/jpeg' }).end(photo), 700);
    },
  });
  t.teardown(() => slow.close());
  const inflight = Array.from({ length: 6 }, (_, i) =>
    i % 2
      ? postJson(`${url}/embed/image`, { url: `${slow.url}/slow.jpg` })
      : postJson(`${url}/embed/text`, { texts: Array(50).fill('a dog on a skateboard') }),
  );
  await seen;
  child.kill('SIGTERM');
  const results = await Promise.all(inflight);
  t.same(
    results.map((r) => r.status),
    Array(6).fill(200),
    'every accepted request completed',
  );
  t.ok(results.every((r) => r.json.embeddings.length > 0));
  t.equal(await exited, 0, 'exit code 0');
  t.match(log, /draining/);
});

t.test(
  'while draining: /readyz 503, /healthz 200, requests that still arrive are served and close their connection',
  async (t) => {
    const server = await startServer();
    t.teardown(() => server.close());
    t.equal((await fetch(`${server.url}/readyz`)).status, 200);
    server.app.service.beginDrain();
    const ready = await fetch(`${server.url}/readyz`);
    t.equal(ready.status, 503, 'readyz: 503');
    t.match(await ready.json(), { status: 'draining' });
    t.equal((await fetch(`${server.url}/healthz`)).status, 200, 'healthz: 200 while the process lives');
    const res = await postJson(`${server.url}/embed/text`, { text: 'a dog on a skateboard' });
    t.equal(
      res.status,
      200,
      'a request that still reaches it is served (a load balancer may not have seen /readyz yet)',
    );
    t.equal(res.headers.get('connection'), 'close', 'and its connection closes');
  },
);

t.test('serve with no model says what to run', async (t) => {
  const { runCli } = await import('../../kit/cli.js');
  const res = await runCli(['serve', '--models', join(IMAGES_DIR, 'no-such-dir')]);
  t.equal(res.code, 1);
  t.match(res.stderr, /albef-embed fetch albef_4m/);
  t.match(res.stderr, /albef-embed convert --checkpoint/);
});
