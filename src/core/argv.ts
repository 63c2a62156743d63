// Command-line parsing shared by every command and by the service configuration: node:util's
// parseArgs, whose strict mode reports an unknown flag as `Unknown option '--txt'. To specify a
// positional argument starting with a '-', place it at the end of the command after '--', as in
// '-- "--txt"'`, silently keeps the last of a repeated single-value flag, and gives the extra words of
// an unquoted `--text a extra` to whoever asks for positionals. This reads parseArgs' tokens first and
// says what is wrong in words (the closest known flag for a typo, the stray arguments by name), lets
// a flag take the arguments after it where the shell has expanded a glob (`--images photos/*.jpg`),
// then lets parseArgs build the typed values from the checked arguments.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './errors.js';

type NodeOption = NonNullable<ParseArgsConfig['options']>[string];

/** A flag: parseArgs' option, and `variadic` for a `multiple` string flag that also takes the plain arguments after it. */
export type OptionSpec = NodeOption & { variadic?: boolean };
export type OptionSpecs = Record<string, OptionSpec>;

type Values<O extends OptionSpecs> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: true }>
>['values'];

export interface ParsedArgv<O extends OptionSpecs> {
  values: Values<O>;
  positionals: string[];
}

/** Edit distance (insertions, deletions, substitutions, adjacent swaps). */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The known word (a flag without dashes, a command) closest to `name`, when close enough to be the one meant. */
export function closest(name: string, known: string[]): string | undefined {
  let best: { flag: string; d: number } | undefined;
  for (const flag of known) {
    const d = flag.startsWith(name) || name.startsWith(flag) ? 1 : distance(name, flag);
    if (!best || d < best.d) best = { flag, d };
  }
  return best && best.d <= Math.max(2, Math.floor(name.length / 3)) ? best.flag : undefined;
}

const quote = (s: string): string => JSON.stringify(s);

/** Words for the arguments left over: each named, and the likely cause. */
function strayMessage(stray: { value: string; after?: string }[], options: OptionSpecs): string {
  const names = stray.map((s) => quote(s.value)).join(', ');
  const after = stray[0]!.after;
  const hint =
    after === undefined
      ? ''
      : ` (--${after} takes one value: put quotes around a value with spaces${options[after]!.multiple ? `, or repeat --${after} for several` : ''})`;
  return `unexpected argument${stray.length > 1 ? 's' : ''} ${names}${hint}`;
}

/**
 * Parses `args` against `options`. `positionals` is how many plain arguments the command takes
 * (`Infinity` for a list); more is an error that names them. Throws UsageError with the reason only
 * (the caller adds its usage text).
 */
export function parseArgv<O extends OptionSpecs>(
  args: string[],
  options: O,
  { positionals: maxPositionals = 0 }: { positionals?: number } = {},
): ParsedArgv<O> {
  const nodeOptions: Record<string, NodeOption> = {};
  for (const [name, { variadic: _variadic, ...spec }] of Object.entries(options)) nodeOptions[name] = spec;
  const { tokens } = parseArgs({ args, options: nodeOptions, strict: false, allowPositionals: true, tokens: true });
  const known = Object.keys(options);
  const isOption = (word: string): boolean =>
    word.startsWith('--')
      ? known.includes(word.slice(2).split('=')[0]!)
      : Object.values(options).some((o) => o.short !== undefined && word === `-${o.short}`);

  const checked: string[] = [];
  const positionals: string[] = [];
  const stray: { value: string; after?: string }[] = [];
  /** The flag the last value belonged to, while plain arguments may still follow it. */
  let last: string | undefined;
  let terminated = false;
  for (const token of tokens) {
    if (token.kind === 'option-terminator') {
      terminated = true;
      last = undefined;
      continue;
    }
    if (token.kind === 'positional') {
      if (!terminated && last !== undefined && options[last]!.variadic) checked.push(`--${last}=${token.value}`);
      else if (positionals.length < maxPositionals) positionals.push(token.value);
      else stray.push({ value: token.value, ...(last !== undefined ? { after: last } : {}) });
      continue;
    }
    const spec = options[token.name];
    if (!spec) {
      const near = token.rawName.startsWith('--') ? closest(token.name, known) : undefined;
      throw new UsageError(`unknown option ${token.rawName}${near ? ` (did you mean --${near}?)` : ''}`);
    }
    const flag = `--${token.name}`;
    if (spec.type === 'boolean') {
      if (token.inlineValue) throw new UsageError(`${flag} takes no value (got ${flag}=${token.value})`);
      checked.push(flag);
      last = undefined;
      continue;
    }
    if (token.value === undefined || (!token.inlineValue && isOption(token.value))) {
      throw new UsageError(
        `${flag} needs a value${token.value === undefined ? '' : ` (it is followed by ${token.value}; for a value that starts with "-", write ${flag}=${token.value})`}`,
      );
    }
    if (!spec.multiple && checked.some((c) => c.startsWith(`${flag}=`)))
      throw new UsageError(`${flag} is given twice: it takes one value`);
    checked.push(`${flag}=${token.value}`);
    last = token.name;
  }
  if (stray.length) throw new UsageError(strayMessage(stray, options));
  const { values } = parseArgs({ args: checked, options: nodeOptions, strict: true, allowPositionals: false });
  return { values: values as Values<O>, positionals };
}
