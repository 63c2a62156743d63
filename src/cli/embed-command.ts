// `albef-embed embed --model DIR (--text T ... | --image FILE ...)`: one-off embeddings as JSON on
// stdout, through the same pipeline as the service (no HTTP involved).

import { readFile } from 'node:fs/promises';
import { resolveConfig } from '../config.js';
import { Embedder } from '../embedder.js';
import { ImagePreprocessor } from '../inference/image-preprocessor.js';
import { ModelPool } from '../inference/model-pool.js';
import { UrlFetcher } from '../sources/url-fetcher.js';
import { parse, UsageError } from './args.js';

const USAGE = `
Usage: albef-embed embed --model DIR (--text TEXT ... | --image FILE_OR_URL ...) [options]

Prints {"model", "modality", "dim", "embeddings"} as JSON.

Options:
  --model DIR          model directory
  --text TEXT          a text to embed (repeat for several)
  --image FILE         an image file or http(s) URL (repeat for several)
  --no-caption-cleanup embed texts as given (ALBEF's pre_caption is on by default)
  --encoding-format F  float (default) | base64
`;

export async function embedCommand(argv: string[]): Promise<void> {
  const { values } = parse(
    argv,
    {
      model: { type: 'string' },
      text: { type: 'string', multiple: true },
      image: { type: 'string', multiple: true },
      'no-caption-cleanup': { type: 'boolean' },
      'encoding-format': { type: 'string' },
    },
    USAGE,
  );
  const texts = values.text ?? [];
  const images = values.image ?? [];
  if (!values.model || (texts.length === 0) === (images.length === 0)) throw new UsageError(`give --model and either --text or --image\n${USAGE}`);
  const format = values['encoding-format'] ?? 'float';
  if (format !== 'float' && format !== 'base64') throw new UsageError('--encoding-format must be float or base64');

  const config = resolveConfig({ models: [values.model], warmup: false, maxItems: Math.max(texts.length, images.length, 1) });
  const pool = await ModelPool.load(config.models, { ...config, metrics: undefined });
  const preprocessor = new ImagePreprocessor(config.decodeThreads);
  const fetcher = new UrlFetcher({ allowPrivate: true, timeoutMs: config.urlTimeoutMs, maxBytes: config.urlMaxBytes, maxRedirects: config.urlMaxRedirects });
  try {
    const embedder = new Embedder(pool, preprocessor, fetcher, config);
    const model = pool.get();
    const vectors = texts.length
      ? (await embedder.embedTexts(model, texts, !values['no-caption-cleanup'])).vectors
      : await embedder.embedImages(model, await Promise.all(images.map(async (f) => (/^https?:\/\//.test(f) ? { url: f } : { bytes: await readFile(f) }))));
    const embeddings = vectors.map((v) => (format === 'base64' ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : Array.from(v)));
    process.stdout.write(JSON.stringify({ model: model.name, modality: texts.length ? 'text' : 'image', dim: model.dim, embeddings }) + '\n');
  } finally {
    await Promise.all([preprocessor.close(), fetcher.close(), pool.release()]);
  }
}
