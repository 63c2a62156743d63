// What every command shares on its command line: the checked parse of src/core/argv.ts with --help,
// value checks, and the paths it is given turned into errors in words (a folder where a file is
// wanted, a missing file) before any work starts, instead of EISDIR or ENOENT from deep inside.

import { mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseArgv, type OptionSpecs } from '../core/argv.js';
import { UsageError } from '../core/errors.js';

/** True when --help or -h comes before any `--` (a help request wins over any other mistake). */
const wantsHelp = (argv: string[]): boolean => {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
};

/**
 * Parses a command's arguments: `positionals` is how many plain arguments it takes (0 unless said,
 * Infinity for a list). --help prints `usage` and exits 0; a mistake is a UsageError (exit 2) with
 * the reason, then the usage.
 */
export function parse<O extends OptionSpecs>(
  argv: string[],
  options: O,
  usage: string,
  { positionals = 0 }: { positionals?: number } = {},
) {
  if (wantsHelp(argv)) {
    process.stdout.write(usage.trim() + '\n');
    process.exit(0);
  }
  try {
    return parseArgv(argv, options, { positionals });
  } catch (e) {
    if (e instanceof UsageError) throw new UsageError(`${e.message}\n\n${usage.trim()}`);
    throw e;
  }
}

export function intOption(value: string | undefined, flag: string, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\s*-?\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min)
    throw new UsageError(`${flag} must be a whole number of at least ${min} (got ${JSON.stringify(value)})`);
  return n;
}

export function oneOf<T extends string>(value: string | undefined, flag: string, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value))
    throw new UsageError(`${flag} must be one of ${allowed.join(', ')} (got ${JSON.stringify(value)})`);
  return value as T;
}

/** `flag path: reason` for a path that cannot be what the flag wants. */
const pathError = (flag: string, path: string, reason: string): UsageError =>
  new UsageError(`${flag ? `${flag} ` : ''}${path}: ${reason}`);

function statError(e: NodeJS.ErrnoException, kind: string): string {
  if (e.code === 'ENOENT') return `no such ${kind}`;
  if (e.code === 'EACCES' || e.code === 'EPERM') return `not allowed to read it (${e.code})`;
  if (e.code === 'ENOTDIR') return `a part of the path is a file, not a folder (${e.code})`;
  return `${e.message}`;
}

/**
 * A file the command will read: it exists and is a file. `folderHint` says what to do when it is a
 * folder (e.g. "for a folder of images, use --images").
 */
export async function inputFile(path: string, flag: string, folderHint = ''): Promise<string> {
  const s = await stat(path).catch((e: NodeJS.ErrnoException) => e);
  if (s instanceof Error) throw pathError(flag, path, statError(s, 'file'));
  if (s.isDirectory()) throw pathError(flag, path, `a folder, not a file${folderHint ? ` (${folderHint})` : ''}`);
  return path;
}

/** A folder the command will read: it exists and is a folder. */
export async function inputFolder(path: string, flag: string, fileHint = ''): Promise<string> {
  const s = await stat(path).catch((e: NodeJS.ErrnoException) => e);
  if (s instanceof Error) throw pathError(flag, path, statError(s, 'folder'));
  if (!s.isDirectory()) throw pathError(flag, path, `a file, not a folder${fileHint ? ` (${fileHint})` : ''}`);
  return path;
}

/** A file the command will write: not a folder; its folder is created when missing. */
export async function outputFile(path: string, flag = '--out'): Promise<string> {
  const s = await stat(path).catch(() => undefined);
  if (s?.isDirectory()) throw pathError(flag, path, 'a folder; give the name of a file to write');
  try {
    await mkdir(dirname(path), { recursive: true });
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw pathError(flag, path, `cannot create its folder ${dirname(path)} (${why})`);
  }
  return path;
}

/** Progress lines go to stderr so stdout stays machine-readable. */
export const log = (message: string): void => {
  process.stderr.write(`albef-embed: ${message}\n`);
};
