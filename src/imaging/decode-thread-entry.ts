// Worker-thread entry for image preprocessing (run by DecodePool through piscina).

import { move, transferableSymbol, valueSymbol } from 'piscina';
import sharp from 'sharp';
import { preprocessImage } from './decode.js';
import type { PreprocessOptions, PreprocessResult } from './decoded.js';

// Each worker decodes one image at a time; parallelism comes from the number of workers.
sharp.concurrency(1);
sharp.cache(false);

/** Runs until libvips' JPEG path is loaded and the resampler compiled at its optimising tier. */
async function warmup(size: number): Promise<PreprocessResult> {
  const jpeg = await sharp({ create: { width: 640, height: 480, channels: 3, background: '#808080' } })
    .jpeg()
    .toBuffer();
  let result: PreprocessResult | undefined;
  for (let i = 0; i < 4; i++) result = await preprocessImage(jpeg, { size, maxPixels: 640 * 480 });
  return result!;
}

export default async function preprocess(task: {
  bytes?: Uint8Array;
  options: PreprocessOptions;
  warmup?: boolean;
}): Promise<PreprocessResult> {
  const result = task.warmup ? await warmup(task.options.size) : await preprocessImage(task.bytes!, task.options);
  if (!result.ok) return result;
  // The resized pixels move to the main thread instead of being copied.
  return move({ [transferableSymbol]: result.rgb.buffer, [valueSymbol]: result }) as unknown as PreprocessResult;
}
