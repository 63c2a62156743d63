// Getting an official model: download the checkpoint (resumable, verified), then convert it. Used by
// `albef-embed fetch` (progress for a terminal) and `serve --fetch` (progress as JSON log lines): the
// caller says how to report.

import { mkdir } from 'node:fs/promises';
import type { LookupFunction } from 'node:net';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { DownloadError } from '../core/errors.js';
import { pathExists } from '../core/fs-utils.js';
import type { PresetName } from './arch.js';
import { convertCheckpoint } from './convert.js';
import { download, type DownloadProgress } from './download.js';

/** How fetchModel reports: lines of progress, and the download's byte counts. */
export interface FetchLog {
  info: (message: string) => void;
  warn: (message: string) => void;
  progress?: (p: DownloadProgress) => void;
  /** The download ended (done or failed). */
  progressDone?: () => void;
}

export const OFFICIAL_URLS: Record<PresetName, string> = {
  albef_4m: 'https://storage.googleapis.com/sfr-pcl-data-research/ALBEF/ALBEF_4M.pth',
  albef_14m: 'https://storage.googleapis.com/sfr-pcl-data-research/ALBEF/ALBEF.pth',
};

/** sha256 of the official files, recorded once known (the size and the storage's MD5 are always checked). */
export const KNOWN_SHA256: Partial<Record<PresetName, string>> = {};

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

/** `s` as one shell word. */
const shellWord = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/**
 * What a user can do when the download cannot be made from here: commands that make the same model
 * in the same place as the failed run (its --out above all: `serve --models m --fetch` writes to
 * m/<name>, which a plain `fetch` would not).
 */
function nextSteps(o: FetchOptions, file: string, out: string): string {
  const flags = (pairs: [string, string | number | undefined][]): string =>
    pairs
      .filter(([, v]) => v !== undefined)
      .map(([f, v]) => ` ${f} ${shellWord(String(v))}`)
      .join('');
  const model = flags([
    ['--image-res', o.imageRes],
    ['--precision', o.precision],
  ]);
  const convertArch = o.archFile
    ? flags([
        ['--arch', o.archFile],
        ['--name', o.preset],
      ])
    : ` --preset ${o.preset}`;
  return [
    'What to do next:',
    `  - download from a mirror:  albef-embed fetch ${o.preset} --url https://<mirror>/${basename(file)}` +
      flags([
        ['--out', out],
        ['--cache-dir', o.cacheDir],
        ['--arch', o.archFile],
      ]) +
      model,
    `  - or get the file another way and convert it:  albef-embed convert --checkpoint ${basename(file)}${convertArch}${flags([['--out', out]])}${model}`,
    `    (or put it at ${file}: fetch then uses it without downloading)`,
  ].join('\n');
}

export async function fetchModel(o: FetchOptions, log: FetchLog): Promise<string> {
  const out = o.out ?? join('models', o.preset);
  if (!o.force && (await pathExists(join(out, 'model.json')))) {
    log.info(`${out} already holds a model (use --force to rebuild it)`);
    return out;
  }
  const url = o.url ?? OFFICIAL_URLS[o.preset];
  const cacheDir = o.cacheDir ?? join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'albef-embed');
  await mkdir(cacheDir, { recursive: true });
  const file = join(cacheDir, basename(new URL(url).pathname) || `${o.preset}.pth`);
  if (await pathExists(file)) log.info(`using ${file} (already downloaded)`);
  else {
    log.info(`downloading ${url} → ${file}`);
    let r: Awaited<ReturnType<typeof download>>;
    try {
      r = await download({
        url,
        dest: file,
        sha256: o.sha256 ?? KNOWN_SHA256[o.preset],
        timeoutMs: o.timeoutMs,
        lookup: o.lookup,
        onProgress: log.progress,
        onRetry: (a) =>
          log.warn(
            `attempt ${a.attempt} of ${a.of} failed: ${a.reason}; retrying in ${a.delayMs / 1000} s${a.resumeAt ? ` from byte ${a.resumeAt}` : ''}`,
          ),
      });
    } catch (e) {
      if (e instanceof DownloadError) throw new DownloadError(e.url, `${e.reason}.\n${nextSteps(o, file, out)}`);
      throw e;
    } finally {
      log.progressDone?.();
    }
    log.info(`downloaded ${r.bytes} bytes, sha256 ${r.sha256}${r.resumed ? ' (resumed)' : ''}`);
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
    log: (m) => log.info(m),
  });
  log.info(`model ready in ${out}`);
  return out;
}
