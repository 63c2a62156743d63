// `albef-embed healthcheck`: exit 0 when the local service answers /readyz 200, 1 when not, saying
// why on stderr (a container HEALTHCHECK keeps the output of its last runs: `docker inspect`).

import { describeNetworkFailure } from '../convert/download-failure.js';
import { intOption, parse } from './args.js';

export const HEALTHCHECK_USAGE = `
Usage: albef-embed healthcheck [--port N] [--host HOST] [--timeout MS] [--verbose]

Asks the service on this machine for GET /readyz: exit 0 when it answers 200 (ready), 1 when it does
not (still loading, draining, failed, or not running), with the reason on stderr.

Options:
  --port N      the service's port (default $ALBEF_PORT, else 8080)
  --host HOST   the address to ask (default 127.0.0.1)
  --timeout MS  how long to wait for the answer (default 2500)
  --verbose     also print the readiness answer when ready
`;

export async function healthcheckCommand(argv: string[]): Promise<void> {
  const { values } = parse(
    argv,
    {
      port: { type: 'string' },
      host: { type: 'string' },
      timeout: { type: 'string' },
      verbose: { type: 'boolean' },
    },
    HEALTHCHECK_USAGE,
  );
  const port =
    intOption(values.port, '--port', 1) ??
    (process.env.ALBEF_PORT ? intOption(process.env.ALBEF_PORT, 'ALBEF_PORT', 1) : undefined) ??
    8080;
  const host = values.host ?? '127.0.0.1';
  const timeout = intOption(values.timeout, '--timeout') ?? 2500;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/readyz`;
  let status: number;
  let body: string;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeout) });
    status = res.status;
    body = (await res.text()).trim();
  } catch (e) {
    const why =
      (e as Error).name === 'TimeoutError'
        ? `no answer within ${timeout} ms`
        : describeNetworkFailure(e, new URL(url), timeout).reason;
    process.stderr.write(`albef-embed healthcheck: not ready: ${url}: ${why}\n`);
    process.exit(1);
  }
  if (status === 200) {
    if (values.verbose) process.stdout.write(`albef-embed healthcheck: ready: ${url} answered 200 ${body}\n`);
    process.exit(0);
  }
  process.stderr.write(`albef-embed healthcheck: not ready: ${url} answered ${status} ${body.slice(0, 500)}\n`);
  process.exit(1);
}
