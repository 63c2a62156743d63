// The generated reference pages are what the code generates today: docs/configuration.md from the
// configuration schema, docs/errors.md from the error table, docs/cli.md from every command's --help
// (`npm run docs` rewrites them); README.md and docs/api.md point to docs/cli.md where they list commands.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { cliPage, configurationPage, errorsPage } from '../../scripts/docs-pages.js';
import { COMMANDS } from '../../src/cli/commands.js';
import { PACKAGE_ROOT } from '../../src/core/paths.js';
import { describeConfig } from '../../src/service/config.js';
import { ERROR_TABLE } from '../../src/http/error-table.js';

const page = (name: string): string => readFileSync(join(PACKAGE_ROOT, 'docs', name), 'utf8');

t.test('docs/configuration.md is generated from the configuration schema', async (t) => {
  t.equal(page('configuration.md'), configurationPage(), 'run `npm run docs` after changing an option');
  for (const r of describeConfig()) t.match(page('configuration.md'), `| \`${r.flag}\` | \`${r.env}\` |`);
});

t.test('docs/errors.md is generated from the error table', async (t) => {
  t.equal(page('errors.md'), errorsPage(), 'run `npm run docs` after changing the error table');
  for (const [code, e] of Object.entries(ERROR_TABLE)) t.match(page('errors.md'), `| ${e.status} | \`${code}\` |`);
});

t.test("docs/cli.md is generated from every command's --help", async (t) => {
  t.equal(page('cli.md'), await cliPage(), "run `npm run docs` after changing a command's --help");
  for (const c of COMMANDS) {
    t.match(page('cli.md'), `## ${c.name}\n`);
    t.match(page('cli.md'), (await c.load()).usage.trim(), `${c.name}'s --help, whole`);
  }
  const readme = readFileSync(join(PACKAGE_ROOT, 'README.md'), 'utf8');
  t.match(readme, '(docs/cli.md)', 'README.md links docs/cli.md');
  t.match(page('api.md'), '(cli.md)', 'docs/api.md links docs/cli.md');
});

t.test('the collection codes answer with the statuses the store contract says', async (t) => {
  const want: Record<string, number> = {
    collection_not_found: 404,
    collection_conflict: 409,
    invalid_collection_name: 400,
    invalid_metadata: 400,
    invalid_item: 400,
    dimension_mismatch: 400,
    invalid_filter: 400,
    store_unavailable: 503,
    model_mismatch: 409,
    rerank_unavailable: 400,
    item_not_found: 404,
    source_unavailable: 502,
  };
  for (const [code, status] of Object.entries(want))
    t.equal(ERROR_TABLE[code as keyof typeof ERROR_TABLE].status, status, code);
});
