// `albef-embed embed --model DIR (--text T ... | --image FILE ...)`: one-off embeddings as JSON on
// stdout, and `--images/--texts ... --out FILE`: offline indexing into JSON lines; both through the
// same pipeline as the service (no HTTP involved).

import { appendFile } from 'node:fs/promises';
import { readModelDir } from '../inference/model-dir.js';
import { resolveConfig, type Config } from '../service/config.js';
import type { Embedder } from '../service/embedder.js';
import { intOption, log, oneOf, outputFile, parse } from './args.js';
import { collectImages, collectTexts, embedToJsonLines, type Item } from './batch-embed.js';
import { imageArg, modelArg, withService } from './local-service.js';
import { stopOnSignal } from './stop-on-signal.js';
import { parseShard, shardOf, shardPath, type Shard } from './shard.js';
import { existingOutput, identityOf } from './vector-lines.js';
import { AppError, UsageError } from '../core/errors.js';

export const EMBED_USAGE = `
Usage: albef-embed embed --model DIR (--text TEXT ... | --image FILE_OR_URL ...) [options]
       albef-embed embed --model DIR (--images DIR_OR_GLOB ... | --texts FILE ...) --out vectors.jsonl
                         [--shard I/N | --shards N]

The first form prints {"model", "modality", "dim", "embeddings"} as JSON. The second embeds images
(folders, globs such as 'photos/**/*.jpg', or files; several at once) or text files with one text
per line into JSON lines {"id", "model", "modality", "tower_sha256", "embedding"}: id is the image's
path relative to the folder its inputs share, or the line number (FILE:LINE for several text files).
Progress goes to stderr; rerunning the same command resumes where it stopped (Ctrl-C stops after
the current batch), and a file holding other vectors (the other modality, another model) is refused.
With --shard I/N it embeds only the items whose id hashes to shard I (0-based), so N machines can
split one input; \`albef-embed merge\` joins the parts.

Options:
  --model DIR          model directory
  --text TEXT          a text to embed (repeat for several; quote a text with spaces)
  --image FILE         an image file or http(s) URL (repeat for several)
  --images PATH ...    images to index: folders, globs or files (repeat, or several after it)
  --texts FILE ...     text files to index, one text per line (repeat, or several after it)
  --out FILE           JSON lines output (appended to; ids already there are skipped; its folder is
                       created)
  --batch N            items per inference batch in indexing mode (default 16)
  --shard I/N          embed shard I of N (0 … N-1): the items whose sha256(id) mod N is I
  --shards N           the same, with I from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job);
                       {shard} in --out becomes I, e.g. --out /output/part-{shard}.jsonl
  --no-caption-cleanup embed texts as given (ALBEF's pre_caption is on by default)
  --encoding-format F  float (default) | base64: the JSON on stdout (--out files hold float arrays)
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
      images: { type: 'string', multiple: true, variadic: true },
      texts: { type: 'string', multiple: true, variadic: true },
      out: { type: 'string' },
      batch: { type: 'string' },
      shard: { type: 'string' },
      shards: { type: 'string' },
    },
    EMBED_USAGE,
  );
  return values;
}

export async function embedCommand(argv: string[]): Promise<void> {
  const values = parseEmbedArgs(argv);
  if (values.images || values.texts) return indexCommand(indexOptions(values));
  const texts = values.text ?? [];
  const images = values.image ?? [];
  if (!values.model || (texts.length === 0) === (images.length === 0))
    throw new UsageError(`give --model and either --text or --image\n\n${EMBED_USAGE.trim()}`);
  if (values.out) throw new UsageError('--out is for --images or --texts (indexing); --text and --image print JSON');
  const format = oneOf(values['encoding-format'], '--encoding-format', ['float', 'base64'] as const) ?? 'float';
  await modelArg(values.model);
  const inputs = await Promise.all(images.map((f) => imageArg(f, '--image')));

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
      : await embedder.embedImages(model, inputs);
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
  /** folders, globs or files of images */
  images?: string[];
  /** text files (or globs), one text per line */
  texts?: string[];
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
    throw new UsageError(`give --model, --out and one of --images or --texts\n\n${EMBED_USAGE.trim()}`);
  if (values.text || values.image)
    throw new UsageError('--text and --image print JSON; with --images or --texts, put the inputs in files');
  if (values['encoding-format'] !== undefined && values['encoding-format'] !== 'float')
    throw new UsageError(
      `--encoding-format ${values['encoding-format']} is for the JSON on stdout: --out files hold float arrays (resumed runs and merge read them)`,
    );
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
  const signals = stopOnSignal();
  try {
    await index(o, signals);
  } finally {
    signals.release();
  }
}

async function index(o: IndexOptions, signals: ReturnType<typeof stopOnSignal>): Promise<void> {
  await modelArg(o.model);
  const modality = o.images ? 'image' : 'text';
  const identity = identityOf((await readModelDir(o.model)).manifest, modality);
  let items: Item[] = o.images ? await collectImages(o.images) : await collectTexts(o.texts!);
  if (items.length === 0) {
    throw new UsageError(
      o.images
        ? `nothing to embed: no image files (.jpg, .png, .webp, .gif, .tiff, .bmp, .avif, .heic) in ${o.images.join(', ')}`
        : `nothing to embed: ${o.texts!.join(', ')} holds no text`,
    );
  }
  const { shard } = o;
  const owns = shard ? (id: string) => shardOf(id, shard.count) === shard.index : undefined;
  if (shard) {
    const all = items.length;
    items = items.filter((it) => owns!(it.id));
    log(`shard ${shard.index}/${shard.count}: ${items.length} of ${all} items`);
  }

  // The output is checked, and created, before the model loads: a finished shard always leaves its
  // file, even with no items (merge then reads an empty part).
  await outputFile(o.out);
  const existing = await existingOutput(o.out, identity);
  if (existing.unchecked)
    log(
      `${o.out}: ${existing.unchecked} lines have no model or modality (an older albef-embed wrote them): not checked against this run's ${modality} vectors`,
    );
  if (owns) {
    const foreign = [...existing.ids].filter((id) => !owns(id));
    if (foreign.length) {
      throw new AppError(
        'foreign_ids',
        `${o.out} already holds ${foreign.length} ids of other shards (e.g. ${JSON.stringify(foreign[0])}): it was written with another --shard; give each shard its own --out`,
      );
    }
  }
  await appendFile(o.out, '');
  const todo = items.filter((it) => !existing.ids.has(it.id));
  const skipped = items.length - todo.length;
  if (todo.length === 0) {
    log(`${o.out}: 0 written, ${skipped} already there, 0 failed`);
    return;
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
    const r = await embedToJsonLines(embedder, embedder.model(), todo, o.out, {
      batch: o.batch,
      cleanup: o.cleanup,
      identity,
      stop: signals.stop,
    });
    log(`${o.out}: ${r.written} written, ${skipped} already there, ${r.failed} failed`);
    const signal = signals.signal();
    if (signal) {
      log(`interrupted (${signal}) with ${r.left} of ${todo.length} left: rerun the same command to resume`);
      process.exitCode = signal === 'SIGINT' ? 130 : 143;
    } else if (r.failed > 0) process.exitCode = 1;
  });
}
