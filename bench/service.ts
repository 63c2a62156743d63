// The service as deployed: `albef-embed serve` in its own process, driven over HTTP on 127.0.0.1.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort } from '../kit/cli.js';

export interface RunningService {
  origin: string;
  child: ChildProcess;
  coldStartMs: number;
  stop: () => Promise<number | null>;
}

/** Starts the service and returns once /readyz answers 200 (that time is the cold start). */
export async function startService(modelDir: string, extraArgs: string[] = []): Promise<RunningService> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [
      fileURLToPath(new URL('../src/cli/main.js', import.meta.url)),
      'serve',
      '--models',
      modelDir,
      '--port',
      String(port),
      '--log-level',
      'warn',
      ...extraArgs,
    ],
    {
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  const origin = `http://127.0.0.1:${port}`;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the service exited with ${child.exitCode} before it was ready`);
    try {
      if ((await fetch(`${origin}/readyz`)).status === 200) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const coldStartMs = performance.now() - started;
  return {
    origin,
    child,
    coldStartMs,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', (code) => resolve(code));
        child.kill('SIGTERM');
      }),
  };
}

/**
 * CPU ms spent so far by a process's main thread (the HTTP side of the service; ONNX Runtime, the
 * decoders and the session runner have threads of their own), from Linux /proc; undefined elsewhere.
 */
export function mainThreadCpuMs(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10; // utime + stime, in 100 Hz ticks
  } catch {
    return undefined;
  }
}

/** Resident set size of a process in MB (Linux /proc). */
export function rssMB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(status.match(/VmRSS:\s+(\d+)/)?.[1]);
  return Math.round(kb / 1024);
}

/** Sums and counts of the service's per-stage timings, from /metrics. */
export async function stageTimings(origin: string): Promise<Record<string, { seconds: number; count: number }>> {
  const text = await (await fetch(`${origin}/metrics`)).text();
  const out: Record<string, { seconds: number; count: number }> = {};
  for (const m of text.matchAll(
    /albef_stage_duration_seconds_(sum|count)\{stage="(\w+)",model="[^"]*"\} ([\d.e+-]+)/g,
  )) {
    const [, kind, stage, value] = m;
    out[stage!] ??= { seconds: 0, count: 0 };
    if (kind === 'sum') out[stage!]!.seconds += Number(value);
    else out[stage!]!.count += Number(value);
  }
  return out;
}

export function multipartImage(bytes: Buffer, filename: string): { headers: Record<string, string>; body: Buffer } {
  const boundary = 'albef-bench-boundary';
  const body = Buffer.concat([
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: image/jpeg\r\n\r\n`,
    ),
    bytes,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body };
}
