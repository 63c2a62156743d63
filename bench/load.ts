// A closed-loop HTTP load generator on undici: `concurrency` clients, each sending its next request
// as soon as the previous one answers, for a fixed time after a warm-up.

import { Pool } from 'undici';
import { percentile, round } from './stats.js';

export interface LoadResult {
  concurrency: number;
  seconds: number;
  requests: number;
  errors: number;
  statuses: Record<string, number>;
  throughput: number;
  p50: number;
  p95: number;
  p99: number;
}

export interface RequestSpec {
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}

export async function closedLoop(origin: string, make: (i: number) => RequestSpec, concurrency: number, seconds: number, warmupSeconds: number): Promise<LoadResult> {
  const pool = new Pool(origin, { connections: concurrency, pipelining: 1, headersTimeout: 600_000, bodyTimeout: 600_000 });
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let errors = 0;
  let n = 0;
  const warmEnd = performance.now() + warmupSeconds * 1000;
  const end = warmEnd + seconds * 1000;
  const client = async (): Promise<void> => {
    while (performance.now() < end) {
      const spec = make(n++);
      const t0 = performance.now();
      try {
        const res = await pool.request({ method: 'POST', path: spec.path, headers: spec.headers, body: spec.body });
        await res.body.arrayBuffer();
        const t1 = performance.now();
        statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
        if (res.statusCode !== 200) errors++;
        // Completion rate over the measured window (closed loop: completions that end inside it).
        else if (t1 >= warmEnd && t1 <= end) latencies.push(t1 - t0);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  await pool.close();
  latencies.sort((a, b) => a - b);
  return {
    concurrency,
    seconds,
    requests: latencies.length,
    errors,
    statuses,
    throughput: round(latencies.length / seconds),
    p50: round(percentile(latencies, 50), 1),
    p95: round(percentile(latencies, 95), 1),
    p99: round(percentile(latencies, 99), 1),
  };
}
