// `albef-embed fetch`: download an official checkpoint, then convert it (issue #6 completes this:
// progress bar, resume, integrity checks). Until then it explains the manual route.

import { UsageError } from './args.js';

export async function fetchCommand(_argv: string[]): Promise<void> {
  throw new UsageError(
    'fetch is not available yet. Download the checkpoint yourself and convert it:\n' +
      '  curl -LO https://storage.googleapis.com/sfr-pcl-data-research/ALBEF/ALBEF_4M.pth\n' +
      '  npx albef-embed convert --checkpoint ALBEF_4M.pth --preset albef_4m --out models/albef_4m',
  );
}
