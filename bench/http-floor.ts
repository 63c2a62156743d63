// What a bare node:http server costs per request under the bench's text load: it reads a
// single-text JSON body, parses it and answers a prebuilt 256-float embedding. No framework, no
// validation, no model: the least CPU any Node.js service spends per one-text request, on the same
// cores as the model. With it the bench states the best service/ceiling ratio one text per request
// can reach on this machine (see docs/performance.md).

import { fork } from 'node:child_process';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { closedLoop, type RequestSpec } from './load.js';

export interface HttpFloor {
  requestsPerSecond: number;
  /** CPU ms per request: the server's and the load generator's. */
  serverCpuMs: number;
  clientCpuMs: number;
}

function serve(): void {
  const vector = Array.from({ length: 256 }, (_, i) => Math.sin(i) / 16);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      JSON.parse(Buffer.concat(chunks).toString());
      const out = JSON.stringify({ model: 'm', modality: 'text', dim: 256, embeddings: [vector] });
      res.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(out),
      });
      res.end(out);
    });
  });
  server.listen(0, '127.0.0.1', () => process.send!((server.address() as { port: number }).port));
  process.on('message', () => {
    const u = process.cpuUsage();
    process.send!((u.user + u.system) / 1000);
  });
}

/** The floor, at the bench's text concurrency, in a child process of its own (as the service runs). */
export async function measureHttpFloor(specs: RequestSpec[], concurrency: number, seconds: number): Promise<HttpFloor> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const port = await new Promise<number>((r) => child.once('message', (m) => r(m as number)));
    const origin = `http://127.0.0.1:${port}`;
    const cpu = () =>
      new Promise<number>((r) => {
        child.once('message', (m) => r(m as number));
        child.send('cpu');
      });
    const request = (i: number): RequestSpec => specs[i % specs.length]!;
    await closedLoop(origin, request, concurrency, 1, 0);
    const server0 = await cpu();
    const client0 = process.cpuUsage();
    const r = await closedLoop(origin, request, concurrency, seconds, 0);
    const client = process.cpuUsage(client0);
    const server = (await cpu()) - server0;
    const n = Math.max(1, r.sent);
    return {
      requestsPerSecond: r.throughput,
      serverCpuMs: server / n,
      clientCpuMs: (client.user + client.system) / 1000 / n,
    };
  } finally {
    child.kill();
  }
}

if (process.argv[2] === '--serve') serve();
