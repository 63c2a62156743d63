// The commands of `albef-embed`, in the order --help lists them: main.ts dispatches through this
// table, and scripts/docs-pages.ts writes docs/cli.md from each command's --help text. A command's
// module loads only when it runs, so that `healthcheck` does not load ONNX Runtime.

export interface Command {
  name: string;
  summary: string;
  load: () => Promise<{ run: (argv: string[]) => Promise<void>; usage: string }>;
}

export const COMMANDS: Command[] = [
  {
    name: 'serve',
    summary: 'run the HTTP service',
    load: async () => {
      const m = await import('./serve-command.js');
      return { run: m.serveCommand, usage: m.serveUsage() };
    },
  },
  {
    name: 'fetch',
    summary: 'download an official checkpoint and convert it into a model directory',
    load: async () => {
      const m = await import('./fetch-command.js');
      return { run: m.fetchCommand, usage: m.FETCH_USAGE };
    },
  },
  {
    name: 'convert',
    summary: 'convert a checkpoint (.pth) into a model directory',
    load: async () => {
      const m = await import('./convert-command.js');
      return { run: m.convertCommand, usage: m.CONVERT_USAGE };
    },
  },
  {
    name: 'synth',
    summary: 'write a model of the official shape with random weights, for trying out and benchmarks',
    load: async () => {
      const m = await import('./convert-command.js');
      return { run: m.synthCommand, usage: m.SYNTH_USAGE };
    },
  },
  {
    name: 'embed',
    summary: 'one-off embeddings as JSON, or images / texts indexed into JSON lines (--shard I/N: a part)',
    load: async () => {
      const m = await import('./embed-command.js');
      return { run: m.embedCommand, usage: m.EMBED_USAGE };
    },
  },
  {
    name: 'merge',
    summary: 'join the parts of a sharded embed run into one JSON lines file',
    load: async () => {
      const m = await import('./merge-command.js');
      return { run: m.mergeCommand, usage: m.MERGE_USAGE };
    },
  },
  {
    name: 'rerank',
    summary: 'one-off image–text matching scores of documents against a query, as JSON',
    load: async () => {
      const m = await import('./match-command.js');
      return { run: m.rerankCommand, usage: m.RERANK_USAGE };
    },
  },
  {
    name: 'classify',
    summary: 'one-off zero-shot classification of images against labels, as JSON',
    load: async () => {
      const m = await import('./match-command.js');
      return { run: m.classifyCommand, usage: m.CLASSIFY_USAGE };
    },
  },
  {
    name: 'index',
    summary: "images or texts into a collection of the store (for search), ALBEF's annotation format too",
    load: async () => {
      const m = await import('./index-command.js');
      return { run: m.indexCommand, usage: m.INDEX_USAGE };
    },
  },
  {
    name: 'search',
    summary: 'one query against a collection: ITC, then the ITM re-rank of the top K, as JSON',
    load: async () => {
      const m = await import('./search-command.js');
      return { run: m.searchCommand, usage: m.SEARCH_USAGE };
    },
  },
  {
    name: 'collections',
    summary: 'the collections of a store: list, info, drop, optimize (build the ANN index)',
    load: async () => {
      const m = await import('./collections-command.js');
      return { run: m.collectionsCommand, usage: m.COLLECTIONS_USAGE };
    },
  },
  {
    name: 'export',
    summary: 'a collection to Parquet or JSON lines, for bulk loads elsewhere',
    load: async () => {
      const m = await import('./collections-command.js');
      return { run: m.exportCommand, usage: m.EXPORT_USAGE };
    },
  },
  {
    name: 'eval',
    summary: "recall as the ALBEF paper reports it, on an annotation file in ALBEF's format",
    load: async () => {
      const m = await import('./eval-command.js');
      return { run: m.evalCommand, usage: m.EVAL_USAGE };
    },
  },
  {
    name: 'healthcheck',
    summary: 'exit 0 when the local service is ready, 1 when not (a container HEALTHCHECK)',
    load: async () => {
      const m = await import('./healthcheck-command.js');
      return { run: m.healthcheckCommand, usage: m.HEALTHCHECK_USAGE };
    },
  },
];

export function mainUsage(): string {
  const w = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return [
    'Usage: albef-embed <command> [options]',
    '       albef-embed --version',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(w)}${c.summary}`),
    '',
    '`albef-embed <command> --help` lists the options of a command. Exit codes: 0 done, 1 failed,',
    '2 a wrong command line (the reason, then the usage).',
    '',
  ].join('\n');
}
