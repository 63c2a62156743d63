// Locates files that ship with the package (assets/), from src/ under tsx/tap, from dist/ when built
// or from build/src/ in the bench, and reads the package's version.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('albef-embed: cannot find the package root');
    dir = up;
  }
  return dir;
}

export const PACKAGE_ROOT = findPackageRoot();
export const ASSETS_DIR = join(PACKAGE_ROOT, 'assets');
export const PACKAGE_VERSION = (
  JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }
).version;
