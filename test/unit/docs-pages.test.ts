// The generated reference pages are what the code generates today: docs/configuration.md from the
// configuration schema, docs/errors.md from the error table (`npm run docs` rewrites them).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { configurationPage, errorsPage } from '../../scripts/docs-pages.js';
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
