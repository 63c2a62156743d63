// Runs the real command line in a child process: the built one (dist/cli/main.js, what `npm test`
// builds first and users run), which starts several times faster than the TypeScript source under
// the tests' loader (every CLI test spawns it, and each of its worker threads loads the code again).

import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PACKAGE_ROOT } from '../src/core/paths.js';

export const CLI = join(PACKAGE_ROOT, 'dist', 'cli', 'main.js');

/** The newest modification time under a folder. */
function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

let checked = false;
/** A build older than the source would test old code: say so instead. */
function checkBuild(): void {
  if (checked) return;
  const built = statSync(CLI, { throwIfNoEntry: false })?.mtimeMs ?? 0;
  if (built < newest(join(PACKAGE_ROOT, 'src')))
    throw new Error(`${CLI} is missing or older than src/: run \`npm run build\` (npm test does) before the CLI tests`);
  checked = true;
}

/** node flags that load TypeScript in the child: the tests' own loader (.taprc). */
export function loaderArgs(): string[] {
  return [`--import=${pathToFileURL(join(PACKAGE_ROOT, 'kit', 'ts-loader.mjs')).href}`, '--enable-source-maps'];
}

export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  checkBuild();
  return spawn(process.execPath, ['--enable-source-maps', CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export async function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnCli(args, env);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { code, stdout, stderr };
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/**
 * `serve` with `--on-load-error not-ready` and models that fail to load: resolves once it listens and
 * /readyz reports "failed" (or after 10 s), with the last /readyz answer and the log so far.
 */
export async function serveUntilFailed(
  args: string[],
): Promise<{ child: ChildProcess; url: string; ready: Response; log: () => string; stop: () => Promise<void> }> {
  const child = spawnCli(['serve', ...args, '--port', '0', '--on-load-error', 'not-ready']);
  let log = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      log += d.toString();
      const m = log.match(/Server listening at (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`exited ${code}: ${log}`)));
  });
  let ready = await fetch(`${url}/readyz`);
  for (let i = 0; i < 100 && ((await ready.clone().json()) as { status: string }).status !== 'failed'; i++) {
    await new Promise((r) => setTimeout(r, 100));
    ready = await fetch(`${url}/readyz`);
  }
  const stop = async (): Promise<void> => {
    child.kill('SIGTERM');
    await new Promise((r) => child.on('exit', r));
  };
  return { child, url, ready, log: () => log, stop };
}
