// Worker-thread entry for image preprocessing (run by DecodePool through piscina).

import { move, transferableSymbol, valueSymbol } from 'piscina';
import sharp from 'sharp';
import { preprocessImage } from './decode.js';
import type { PreprocessOptions, PreprocessResult } from './decoded.js';

// Each worker decodes one image at a time; parallelism comes from the number of workers.
sharp.concurrency(1);
sharp.cache(false);

export default async function preprocess(task: {
  bytes: Uint8Array;
  options: PreprocessOptions;
}): Promise<PreprocessResult> {
  const result = await preprocessImage(task.bytes, task.options);
  if (!result.ok) return result;
  // The resized pixels move to the main thread instead of being copied.
  return move({ [transferableSymbol]: result.rgb.buffer, [valueSymbol]: result }) as unknown as PreprocessResult;
}
