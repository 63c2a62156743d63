// `albef-embed fetch albef_4m|albef_14m`: download the official checkpoint (resumable, verified),
// then convert it into a model directory.

import { basename } from 'node:path';
import { PRESET_NAMES } from '../convert/arch.js';
import { fetchModel, OFFICIAL_URLS, type FetchLog } from '../convert/fetch-model.js';
import { UsageError } from '../core/errors.js';
import { inputFile, intOption, log, oneOf, parse } from './args.js';
import { progressReporter } from './progress.js';

export const FETCH_USAGE = `
Usage: albef-embed fetch albef_4m|albef_14m [options]

Downloads the official ALBEF checkpoint (resuming an interrupted download, verifying size and MD5),
then converts it into a model directory.

Options:
  --out DIR          model directory (default models/<name>)
  --url URL          download from a mirror instead of the official address
  --cache-dir DIR    where checkpoints are kept (default $XDG_CACHE_HOME/albef-embed or ~/.cache/albef-embed)
  --arch FILE        arch.json (for mirrors of non-official checkpoints)
  --image-res N      serving resolution (default 384)
  --precision P      fp32 (default) | int8 | fp16
  --sha256 HEX       expected sha256 of the checkpoint
  --force            replace the model directory if it exists
`;

export async function fetchCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(
    argv,
    {
      out: { type: 'string' },
      url: { type: 'string' },
      'cache-dir': { type: 'string' },
      arch: { type: 'string' },
      'image-res': { type: 'string' },
      precision: { type: 'string' },
      sha256: { type: 'string' },
      force: { type: 'boolean' },
    },
    FETCH_USAGE,
    { positionals: 1 },
  );
  const preset = oneOf(positionals[0], 'the model name', PRESET_NAMES);
  if (!preset) throw new UsageError(`name one model: ${PRESET_NAMES.join(' or ')}\n\n${FETCH_USAGE.trim()}`);
  if (values.arch) await inputFile(values.arch, '--arch');
  const progress = progressReporter(basename(new URL(values.url ?? OFFICIAL_URLS[preset]).pathname) || preset);
  const report: FetchLog = { info: log, warn: log, progress: progress.update, progressDone: progress.done };
  await fetchModel(
    {
      preset,
      out: values.out,
      url: values.url,
      cacheDir: values['cache-dir'],
      archFile: values.arch,
      imageRes: intOption(values['image-res'], '--image-res'),
      precision: oneOf(values.precision, '--precision', ['fp32', 'int8', 'fp16'] as const),
      sha256: values.sha256,
      force: values.force,
    },
    report,
  );
}
