// The service's own lifecycle (load, work, drain, release) without HTTP, for the one-off commands.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../service/config.js';
import { Metrics } from '../core/metrics.js';
import { Service } from '../service/service.js';
import { UsageError } from '../core/errors.js';
import { pathExists } from '../core/fs-utils.js';
import { inputFile, inputFolder } from './args.js';

export async function withService<T>(config: Config, run: (service: Service) => Promise<T>): Promise<T> {
  const service = new Service(config, new Metrics());
  try {
    await service.start();
    return await run(service);
  } finally {
    await service.close();
  }
}

/** A CLI image argument of `flag`: an http(s) URL, or a file to read (a folder or a missing file is a usage error). */
export async function imageArg(value: string, flag: string): Promise<{ url: string } | { bytes: Uint8Array }> {
  if (/^https?:\/\//i.test(value)) return { url: value };
  await inputFile(
    value,
    flag,
    flag === '--image' ? 'several images: --image once per file, or index a folder with embed --images' : '',
  );
  return { bytes: await readFile(value) };
}

/** `--model DIR`: a folder with a model.json, else a usage error saying how to make one. */
export async function modelArg(dir: string): Promise<string> {
  await inputFolder(dir, '--model', 'give the model directory that holds model.json');
  if (!(await pathExists(join(dir, 'model.json'))))
    throw new UsageError(
      `--model ${dir}: not a model directory (no model.json); make one with \`albef-embed fetch\` or \`albef-embed convert\``,
    );
  return dir;
}
