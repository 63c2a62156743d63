#!/usr/bin/env node
// albef-embed: the package's command line (docs/cli.md). Each command lives in src/cli/.

import { AppError, UsageError } from '../core/errors.js';

const USAGE = `
Usage: albef-embed <command> [options]

Commands:
  serve     run the HTTP service              (albef-embed serve --help)
  convert   checkpoint (.pth) → model dir      (albef-embed convert --help)
  fetch     download an official model, convert it
  synth     random-weight model of the official shape, for benchmarks
  embed     one-off embeddings as JSON, or a folder / text file to JSON lines (--shard I/N: a part)
  merge     join the parts of a sharded embed run into one JSON lines file
  rerank    one-off image–text matching scores of documents against a query, as JSON
  classify  one-off zero-shot classification of images against labels, as JSON
  eval      recall as the ALBEF paper reports it, on an annotation file in ALBEF's format
  healthcheck  exit 0 when the local service is ready (container HEALTHCHECK)
`;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'convert':
      return (await import('./convert-command.js')).convertCommand(rest);
    case 'synth':
      return (await import('./convert-command.js')).synthCommand(rest);
    case 'serve':
      return (await import('./serve-command.js')).serveCommand(rest);
    case 'embed':
      return (await import('./embed-command.js')).embedCommand(rest);
    case 'rerank':
      return (await import('./match-command.js')).rerankCommand(rest);
    case 'classify':
      return (await import('./match-command.js')).classifyCommand(rest);
    case 'eval':
      return (await import('./eval-command.js')).evalCommand(rest);
    case 'merge':
      return (await import('./merge-command.js')).mergeCommand(rest);
    case 'fetch':
      return (await import('./fetch-command.js')).fetchCommand(rest);
    case 'healthcheck':
      return (await import('./healthcheck-command.js')).healthcheckCommand(rest);
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE.trimStart());
      return;
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  if (e instanceof UsageError) {
    process.stderr.write(`albef-embed: ${e.message}\n`);
    process.exit(2);
  }
  const code = e instanceof AppError ? ` [${e.code}]` : '';
  process.stderr.write(`albef-embed: error${code}: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
