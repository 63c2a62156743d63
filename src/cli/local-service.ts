// The service's own lifecycle (load, work, drain, release) without HTTP, for the one-off commands.

import type { Config } from '../service/config.js';
import { Metrics } from '../core/metrics.js';
import { Service } from '../service/service.js';

export async function withService<T>(config: Config, run: (service: Service) => Promise<T>): Promise<T> {
  const service = new Service(config, new Metrics());
  try {
    await service.start();
    return await run(service);
  } finally {
    await service.close();
  }
}

/** A CLI image argument: an http(s) URL, or a file to read. */
export async function imageArg(value: string): Promise<{ url: string } | { bytes: Uint8Array }> {
  if (/^https?:\/\//i.test(value)) return { url: value };
  const { readFile } = await import('node:fs/promises');
  return { bytes: await readFile(value) };
}
