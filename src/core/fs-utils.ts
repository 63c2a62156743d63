// Small filesystem predicates used across the converter, the CLI and the model loader.

import { stat } from 'node:fs/promises';

/** True when `path` exists (file or directory). */
export const pathExists = (path: string): Promise<boolean> =>
  stat(path).then(
    () => true,
    () => false,
  );

/** Size in bytes, or 0 when the file does not exist. */
export const fileSize = (path: string): Promise<number> =>
  stat(path).then(
    (s) => s.size,
    () => 0,
  );

export const isDirectory = (path: string): Promise<boolean> =>
  stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
