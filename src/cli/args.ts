// Shared command-line parsing: node:util parseArgs with friendly errors and --help.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../core/errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

export function parse<O extends Options>(argv: string[], options: O, usage: string) {
  try {
    const result = parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    if ((result.values as { help?: boolean }).help) {
      process.stdout.write(usage.trimEnd() + '\n');
      process.exit(0);
    }
    return result;
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n\n${usage.trim()}`);
  }
}

export function intOption(value: string | undefined, flag: string, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    throw new UsageError(`${flag} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  return n;
}

export function oneOf<T extends string>(value: string | undefined, flag: string, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value))
    throw new UsageError(`${flag} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  return value as T;
}

/** Progress lines go to stderr so stdout stays machine-readable. */
export const log = (message: string): void => {
  process.stderr.write(`albef-embed: ${message}\n`);
};
