// `albef-embed fetch albef_4m|albef_14m`: download the official checkpoint (resumable, verified),
// then convert it into a model directory.

import { mkdir } from 'node:fs/promises';
import type { LookupFunction } from 'node:net';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { PRESET_NAMES, type PresetName } from '../convert/arch.js';
import { convertCheckpoint } from '../convert/convert.js';
import { download, DownloadError } from '../convert/download.js';
import { pathExists } from '../core/fs-utils.js';
import { intOption, log, oneOf, parse, UsageError } from './args.js';
import { progressReporter } from './progress.js';

export const OFFICIAL_URLS: Record<PresetName, string> = {
  albef_4m: 'https://storage.googleapis.com/sfr-pcl-data-research/ALBEF/ALBEF_4M.pth',
  albef_14m: 'https://storage.googleapis.com/sfr-pcl-data-research/ALBEF/ALBEF.pth',
};

/** sha256 of the official files, recorded once known (the size and the storage's MD5 are always checked). */
export const KNOWN_SHA256: Partial<Record<PresetName, string>> = {};

const USAGE = `
Usage: albef-embed fetch albef_4m|albef_14m [options]

Downloads the official ALBEF checkpoint (resuming an interrupted download, verifying size and MD5),
then converts it into a model directory.

Options:
  --out DIR          model directory (default models/<name>)
  --url URL          download from a mirror instead of the official address
  --cache-dir DIR    where checkpoints are kept (default $XDG_CACHE_HOME/albef-embed or ~/.cache/albef-embed)
  --arch FILE        arch.json (for mirrors of non-official checkpoints)
  --image-res N      serving resolution (default 384)
  --precision P      fp32 (default) | int8 | fp16
  --sha256 HEX       expected sha256 of the checkpoint
  --force            replace the model directory if it exists
`;

export interface FetchOptions {
  preset: PresetName;
  out?: string;
  url?: string;
  cacheDir?: string;
  archFile?: string;
  imageRes?: number;
  precision?: 'fp32' | 'int8' | 'fp16';
  sha256?: string;
  force?: boolean;
  /** Network limits of the download (see download.ts); tests shorten the timeout and inject DNS. */
  timeoutMs?: number;
  lookup?: LookupFunction;
}

/** What a user can do when the download cannot be made from here. */
function nextSteps(preset: PresetName, file: string, out: string): string {
  return [
    'What to do next:',
    `  - download from a mirror:  albef-embed fetch ${preset} --url https://<mirror>/${basename(file)}`,
    `  - or get the file another way and convert it:  albef-embed convert --checkpoint ${basename(file)} --preset ${preset} --out ${out}`,
    `    (or put it at ${file}: fetch then uses it without downloading)`,
  ].join('\n');
}

export async function fetchModel(o: FetchOptions): Promise<string> {
  const out = o.out ?? join('models', o.preset);
  if (!o.force && (await pathExists(join(out, 'model.json')))) {
    log(`${out} already holds a model (use --force to rebuild it)`);
    return out;
  }
  const url = o.url ?? OFFICIAL_URLS[o.preset];
  const cacheDir = o.cacheDir ?? join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'albef-embed');
  await mkdir(cacheDir, { recursive: true });
  const file = join(cacheDir, basename(new URL(url).pathname) || `${o.preset}.pth`);
  if (await pathExists(file)) log(`using ${file} (already downloaded)`);
  else {
    log(`downloading ${url} → ${file}`);
    const progress = progressReporter(basename(file));
    let r: Awaited<ReturnType<typeof download>>;
    try {
      r = await download({
        url,
        dest: file,
        sha256: o.sha256 ?? KNOWN_SHA256[o.preset],
        timeoutMs: o.timeoutMs,
        lookup: o.lookup,
        onProgress: progress.update,
        onRetry: (a) =>
          log(
            `attempt ${a.attempt} of ${a.of} failed: ${a.reason}; retrying in ${a.delayMs / 1000} s${a.resumeAt ? ` from byte ${a.resumeAt}` : ''}`,
          ),
      });
    } catch (e) {
      if (e instanceof DownloadError) throw new DownloadError(e.url, `${e.reason}.\n${nextSteps(o.preset, file, out)}`);
      throw e;
    } finally {
      progress.done();
    }
    log(`downloaded ${r.bytes} bytes, sha256 ${r.sha256}${r.resumed ? ' (resumed)' : ''}`);
  }
  await convertCheckpoint({
    checkpoint: file,
    out,
    preset: o.archFile ? undefined : o.preset,
    archFile: o.archFile,
    imageRes: o.imageRes,
    precision: o.precision,
    name: o.preset,
    force: o.force,
    log,
  });
  log(`model ready in ${out}`);
  return out;
}

export async function fetchCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(
    argv,
    {
      out: { type: 'string' },
      url: { type: 'string' },
      'cache-dir': { type: 'string' },
      arch: { type: 'string' },
      'image-res': { type: 'string' },
      precision: { type: 'string' },
      sha256: { type: 'string' },
      force: { type: 'boolean' },
    },
    USAGE,
  );
  const preset = oneOf(positionals[0], 'the model name', PRESET_NAMES);
  if (!preset || positionals.length !== 1)
    throw new UsageError(`name one model: ${PRESET_NAMES.join(' or ')}\n${USAGE}`);
  await fetchModel({
    preset,
    out: values.out,
    url: values.url,
    cacheDir: values['cache-dir'],
    archFile: values.arch,
    imageRes: intOption(values['image-res'], '--image-res'),
    precision: oneOf(values.precision, '--precision', ['fp32', 'int8', 'fp16'] as const),
    sha256: values.sha256,
    force: values.force,
  });
}
