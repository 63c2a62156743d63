// `albef-embed embed --model DIR (--text T ... | --image FILE ...)`: one-off embeddings as JSON on
// stdout, through the same pipeline as the service (no HTTP involved).

import { relative, sep } from 'node:path';
import { resolveConfig, type Config } from '../service/config.js';
import type { Embedder } from '../service/embedder.js';
import { intOption, log, parse } from './args.js';
import { embedToJsonLines, listImages, readTextLines } from './batch-embed.js';
import { imageArg, withService } from './local-service.js';
import { parseShard, shardOf, shardPath, type Shard } from './shard.js';
import { UsageError } from '../core/errors.js';

const USAGE = `
Usage: albef-embed embed --model DIR (--text TEXT ... | --image FILE_OR_URL ...) [options]
       albef-embed embed --model DIR (--images DIR_OR_GLOB | --texts FILE) --out vectors.jsonl
                         [--shard I/N | --shards N]

The first form prints {"model", "modality", "dim", "embeddings"} as JSON. The second embeds a folder
(or glob, e.g. 'photos/**/*.jpg') of images, or a text file with one text per line, into JSON lines
{"id", "embedding"} (id: the image path relative to the folder, or the line number), with progress
on stderr; rerunning it resumes where it stopped. With --shard I/N it embeds only the items whose id
hashes to shard I (0-based), so N machines can split one input; \`albef-embed merge\` joins the parts.

Options:
  --model DIR          model directory
  --text TEXT          a text to embed (repeat for several)
  --image FILE         an image file or http(s) URL (repeat for several)
  --images DIR_OR_GLOB images to index      --texts FILE   texts to index, one per line
  --out FILE           JSON lines output (appended to; ids already there are skipped)
  --batch N            items per inference batch in indexing mode (default 16)
  --shard I/N          embed shard I of N (0 … N-1): the items whose sha256(id) mod N is I
  --shards N           the same, with I from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job);
                       {shard} in --out becomes I, e.g. --out /output/part-{shard}.jsonl
  --no-caption-cleanup embed texts as given (ALBEF's pre_caption is on by default)
  --encoding-format F  float (default) | base64
`;

/** The embed command's options, parsed (exported for the manifest checks). */
export function parseEmbedArgs(argv: string[]) {
  const { values } = parse(
    argv,
    {
      model: { type: 'string' },
      text: { type: 'string', multiple: true },
      image: { type: 'string', multiple: true },
      'no-caption-cleanup': { type: 'boolean' },
      'encoding-format': { type: 'string' },
      images: { type: 'string' },
      texts: { type: 'string' },
      out: { type: 'string' },
      batch: { type: 'string' },
      shard: { type: 'string' },
      shards: { type: 'string' },
    },
    USAGE,
  );
  return values;
}

export async function embedCommand(argv: string[]): Promise<void> {
  const values = parseEmbedArgs(argv);
  if (values.images || values.texts) return indexCommand(indexOptions(values));
  const texts = values.text ?? [];
  const images = values.image ?? [];
  if (!values.model || (texts.length === 0) === (images.length === 0))
    throw new UsageError(`give --model and either --text or --image\n${USAGE}`);
  const format = values['encoding-format'] ?? 'float';
  if (format !== 'float' && format !== 'base64') throw new UsageError('--encoding-format must be float or base64');

  // Embeddings only: the matching graphs (three more sessions) are not loaded.
  const config = resolveConfig({
    models: [values.model],
    warmup: false,
    fusion: false,
    allowPrivateUrls: true,
    maxItems: Math.max(texts.length, images.length, 1),
  });
  await withEmbedder(config, async (embedder) => {
    const model = embedder.model();
    const vectors = texts.length
      ? (await embedder.embedTexts(model, texts, !values['no-caption-cleanup'])).vectors
      : await embedder.embedImages(model, await Promise.all(images.map(imageArg)));
    const embeddings = vectors.map((v) =>
      format === 'base64' ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : Array.from(v),
    );
    process.stdout.write(
      JSON.stringify({ model: model.name, modality: texts.length ? 'text' : 'image', dim: model.dim, embeddings }) +
        '\n',
    );
  });
}

/** The service's own lifecycle (load, embed, drain, release), without HTTP. */
function withEmbedder(config: Config, run: (embedder: Embedder) => Promise<void>): Promise<void> {
  return withService(config, (service) => run(service.requireEmbedder()));
}

export interface IndexOptions {
  model: string;
  images?: string;
  texts?: string;
  /** this shard's output file ({shard} already replaced) */
  out: string;
  batch: number;
  cleanup: boolean;
  shard?: Shard;
}

/** The indexing mode's options, checked before any model is loaded. */
export function indexOptions(
  values: ReturnType<typeof parseEmbedArgs>,
  env: NodeJS.ProcessEnv = process.env,
): IndexOptions {
  if (!values.model || !values.out || (values.images && values.texts))
    throw new UsageError(`give --model, --out and one of --images or --texts\n${USAGE}`);
  const shard = parseShard(values.shard, values.shards, env);
  return {
    model: values.model,
    images: values.images,
    texts: values.texts,
    out: shardPath(values.out, shard),
    batch: intOption(values.batch, '--batch') ?? 16,
    cleanup: !values['no-caption-cleanup'],
    shard,
  };
}

async function indexCommand(o: IndexOptions): Promise<void> {
  let items: { id: string; image?: string; text?: string }[];
  if (o.images) {
    const { root, files } = await listImages(o.images);
    items = files.map((f) => ({ id: relative(root, f).split(sep).join('/'), image: f }));
  } else items = await readTextLines(o.texts!);
  if (items.length === 0) throw new UsageError(`nothing to embed in ${o.images ?? o.texts}`);
  const { shard } = o;
  const owns = shard ? (id: string) => shardOf(id, shard.count) === shard.index : undefined;
  if (shard) {
    const all = items.length;
    items = items.filter((it) => owns!(it.id));
    log(`shard ${shard.index}/${shard.count}: ${items.length} of ${all} items`);
  }

  const config = resolveConfig({
    models: [o.model],
    warmup: false,
    fusion: false,
    maxItems: Math.max(o.batch, 1),
    maxQueueImages: Math.max(64, o.batch),
    requestTimeoutMs: 600_000,
  });
  await withEmbedder(config, async (embedder) => {
    const r = await embedToJsonLines(embedder, embedder.model(), items, o.out, {
      batch: o.batch,
      cleanup: o.cleanup,
      owns,
    });
    log(`${o.out}: ${r.written} written, ${r.skipped} already there, ${r.failed} failed`);
    if (r.failed > 0) process.exitCode = 1;
  });
}
