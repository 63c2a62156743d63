#!/usr/bin/env node
// albef-embed: the package's command line (docs/cli.md). Each command lives in src/cli/, listed in
// commands.ts.

import { closest } from '../core/argv.js';
import { AppError, UsageError } from '../core/errors.js';
import { PACKAGE_VERSION } from '../core/paths.js';
import { COMMANDS, mainUsage } from './commands.js';

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  switch (name) {
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(mainUsage());
      return;
    case '-v':
    case '--version':
    case 'version':
      process.stdout.write(`${PACKAGE_VERSION}\n`);
      return;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    const near = closest(
      name,
      COMMANDS.map((c) => c.name),
    );
    throw new UsageError(
      `unknown command ${JSON.stringify(name)}${near ? ` (did you mean ${near}?)` : ''}\n\n${mainUsage()}`,
    );
  }
  return (await command.load()).run(rest);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  if (e instanceof UsageError) {
    process.stderr.write(`albef-embed: ${e.message.trimEnd()}\n`);
    process.exit(2);
  }
  const code = e instanceof AppError ? ` [${e.code}]` : '';
  process.stderr.write(`albef-embed: error${code}: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
