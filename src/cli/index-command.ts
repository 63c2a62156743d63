// `albef-embed index`: items into a collection of the store (src/service/indexer.ts does the work):
// a folder, glob or list of image files, a text file of image URLs, text files, or ALBEF's annotation
// format (an image collection and a `-texts` collection). Ids already in the collection are skipped,
// so a rerun resumes and shards of one input can write at once; failures are reported, the rest indexed.

import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { AppError, UsageError } from '../core/errors.js';
import { readAnnotations, resolveImagePaths } from '../retrieval/annotations.js';
import { openStore } from '../retrieval/open-store.js';
import type { CollectionStore } from '../retrieval/store.js';
import { resolveConfig } from '../service/config.js';
import { annotationItems, DEFAULT_BATCH, indexItems, type IndexItem, type IndexProgress } from '../service/indexer.js';
import type { Modality } from '../retrieval/store.js';
import { inputFile, inputFolder, intOption, log, parse } from './args.js';
import { collectImagesUnder, collectTexts } from './batch-embed.js';
import { modelArg, withService } from './local-service.js';
import { parseShard, shardOf, type Shard } from './shard.js';
import { stopOnSignal } from './stop-on-signal.js';
import { storeSpec, STORE_OPTION_HELP } from './store-option.js';

export const INDEX_USAGE = `
Usage: albef-embed index --model DIR --collection NAME [--store S] INPUT [options]

Embeds items into a collection of the store (created on first use, recording the model that made it),
for POST /v1/search and \`albef-embed search\`. Ids already in the collection are skipped: a rerun
resumes, and shards of one input may run at once. Items that fail are reported; the rest are indexed.

INPUT, one of:
  --images PATH ...   image files, folders (recursively) or globs ('photos/**/*.jpg'); ids are the paths
                      relative to the folder they share, which the collection records as its root; or
                      one .txt file of image URLs, one per line (the URL is the id)
  --texts FILE ...    text files, one text per line (ids: line numbers; FILE:LINE for several files)
  --ann FILE          ALBEF's annotation format (flickr30k_test.json, coco_test.json), with --image-root:
                      collection NAME gets the images (metadata.captions), NAME-texts the captions
                      (ids: their position in the file; metadata.image)

Options:
  --model DIR          model directory
  --collection NAME    1-63 characters of a-z, 0-9, _ and -
${STORE_OPTION_HELP}
  --image-root DIR     with --ann: the folder its image paths are relative to
  --metadata FILE      JSON lines {"id": …, more fields}: every field but id becomes the item's metadata
  --batch N            items per inference batch and store write (default 16 images, 256 texts)
  --shard I/N          index shard I of N (0 … N-1): the items whose sha256(id) mod N is I
  --shards N           the same, with I from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job)
  --no-caption-cleanup texts as given (ALBEF's pre_caption is on by default)
`;

const IMAGE_BATCH = DEFAULT_BATCH.image;
const TEXT_BATCH = DEFAULT_BATCH.text;

interface Target {
  collection: string;
  modality: Modality;
  root?: string;
  items: IndexItem[];
}

/**
 * The command's arguments, checked without reading a file: the inputs, the shard (I from
 * JOB_COMPLETION_INDEX with --shards) and the store (--store, else ALBEF_STORE) as the run would take
 * them. The Kubernetes Job's test parses its arguments with this.
 */
export function parseIndexArgs(argv: string[], env: NodeJS.ProcessEnv = process.env) {
  const { values } = parse(
    argv,
    {
      model: { type: 'string' },
      collection: { type: 'string' },
      store: { type: 'string' },
      images: { type: 'string', multiple: true, variadic: true },
      texts: { type: 'string', multiple: true, variadic: true },
      ann: { type: 'string' },
      'image-root': { type: 'string' },
      metadata: { type: 'string' },
      batch: { type: 'string' },
      shard: { type: 'string' },
      shards: { type: 'string' },
      'no-caption-cleanup': { type: 'boolean' },
    },
    INDEX_USAGE,
  );
  const inputs = [values.images, values.texts, values.ann].filter((v) => v !== undefined).length;
  if (!values.model || !values.collection || inputs !== 1)
    throw new UsageError(`give --model, --collection and one of --images, --texts or --ann\n\n${INDEX_USAGE.trim()}`);
  if (values.ann && !values['image-root'])
    throw new UsageError('--ann needs --image-root, the folder its images are in');
  if (values['image-root'] && !values.ann) throw new UsageError('--image-root goes with --ann');
  return {
    ...values,
    model: values.model,
    collection: values.collection,
    batch: intOption(values.batch, '--batch'),
    shard: parseShard(values.shard, values.shards, env),
    store: storeSpec(values.store, env),
  };
}

export async function indexCommand(argv: string[]): Promise<void> {
  const values = parseIndexArgs(argv);
  const { batch, shard } = values;
  await modelArg(values.model);
  const metadata = values.metadata ? await readMetadata(await inputFile(values.metadata, '--metadata')) : undefined;

  let targets: Target[];
  if (values.ann) {
    const root = resolve(await inputFolder(values['image-root']!, '--image-root'));
    const ann = await readAnnotations(await inputFile(values.ann, '--ann'));
    const items = annotationItems(ann, resolveImagePaths(root, ann.images));
    targets = [
      { collection: values.collection, modality: 'image', root, items: items.images },
      { collection: `${values.collection}-texts`, modality: 'text', items: items.texts },
    ];
  } else if (values.texts) {
    const items = (await collectTexts(values.texts)).map((it) => ({ id: it.id, source: it.text! }));
    targets = [{ collection: values.collection, modality: 'text', items }];
  } else {
    targets = [await imageTarget(values.collection, values.images!)];
  }
  for (const target of targets) {
    if (target.items.length === 0) throw new UsageError(`nothing to index for ${target.collection}`);
    if (metadata) joinMetadata(target, metadata);
    if (shard) {
      const all = target.items.length;
      target.items = target.items.filter((it) => shardOf(it.id, shard.count) === shard.index);
      log(`${target.collection}: shard ${shard.index}/${shard.count}: ${target.items.length} of ${all} items`);
    }
  }

  const spec = values.store;
  const config = resolveConfig({
    models: [values.model],
    warmup: false,
    fusion: false,
    store: '',
    // The operator's own list: image URLs on the local network are theirs to index.
    allowPrivateUrls: true,
    maxItems: Math.max(batch ?? TEXT_BATCH, 1),
    maxQueueImages: Math.max(64, batch ?? IMAGE_BATCH),
    maxQueueTexts: Math.max(1024, batch ?? TEXT_BATCH),
    requestTimeoutMs: 600_000,
  });
  const store = await openStore(spec);
  const signals = stopOnSignal();
  const stop = new AbortController();
  const watch = setInterval(() => signals.stop() && stop.abort(), 100);
  let failed = 0;
  try {
    await withService(config, async (service) => {
      const embedder = service.requireEmbedder();
      for (const target of targets) {
        failed += await indexTarget(store, target, embedder, shard, {
          batch,
          captionCleanup: !values['no-caption-cleanup'],
          signal: stop.signal,
        });
      }
    });
  } catch (e) {
    if (!stop.signal.aborted) throw e;
    log(`interrupted: what was written stays; rerun the same command to resume`);
    process.exitCode = 130;
    return;
  } finally {
    clearInterval(watch);
    signals.release();
    await store.close();
  }
  if (failed > 0) process.exitCode = 1;
}

async function indexTarget(
  store: CollectionStore,
  target: Target,
  embedder: Parameters<typeof indexItems>[0],
  shard: Shard | undefined,
  o: { batch: number | undefined; captionCleanup: boolean; signal: AbortSignal },
): Promise<number> {
  const model = embedder.model();
  const progress = indexProgress(target.collection);
  const r = await indexItems(embedder, model, store, target.items, {
    collection: target.collection,
    modality: target.modality,
    ...(target.root !== undefined ? { root: target.root } : {}),
    batch: o.batch ?? (target.modality === 'text' ? TEXT_BATCH : IMAGE_BATCH),
    captionCleanup: o.captionCleanup,
    onProgress: progress,
    signal: o.signal,
  });
  for (const f of r.failed.slice(0, 20)) log(`${target.collection}: ${f.id}: ${f.code}: ${f.message}`);
  if (r.failed.length > 20) log(`${target.collection}: … and ${r.failed.length - 20} more failed`);
  log(
    `${target.collection}: ${r.added} added, ${r.skipped} already there, ${r.failed.length} failed${shard ? ` (shard ${shard.index}/${shard.count})` : ''} (${store.description})`,
  );
  process.stdout.write(
    JSON.stringify({ collection: target.collection, added: r.added, skipped: r.skipped, failed: r.failed }) + '\n',
  );
  return r.failed.length;
}

/** Image items from files, folders and globs (root: the folder they share), or from a .txt list of URLs. */
async function imageTarget(collection: string, inputs: string[]): Promise<Target> {
  if (inputs.length === 1 && /\.txt$/i.test(inputs[0]!)) {
    const file = await inputFile(inputs[0]!, '--images');
    const items: IndexItem[] = [];
    const lines = (await readFile(file, 'utf8')).split(/\r?\n/);
    lines.forEach((raw, n) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      if (!/^https?:\/\/\S+$/i.test(line))
        throw new UsageError(
          `--images ${file} line ${n + 1}: not an http(s) URL: ${JSON.stringify(line.slice(0, 80))}`,
        );
      items.push({ id: line, source: line });
    });
    return { collection, modality: 'image', items };
  }
  const { root, items } = await collectImagesUnder(inputs);
  return {
    collection,
    modality: 'image',
    root,
    items: items.map((it) => ({ id: it.id, source: it.id, file: resolve(it.image!) })),
  };
}

/** `--metadata`: JSON lines, each an object with an id; every other field is the item's metadata. */
async function readMetadata(file: string): Promise<Map<string, Record<string, unknown>>> {
  const out = new Map<string, Record<string, unknown>>();
  (await readFile(file, 'utf8')).split(/\r?\n/).forEach((line, n) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new AppError('invalid_metadata', `${file} line ${n + 1}: not JSON (${(e as Error).message})`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw new AppError('invalid_metadata', `${file} line ${n + 1}: not a JSON object`);
    const { id, ...fields } = value as { id?: unknown };
    if (typeof id !== 'string' && typeof id !== 'number')
      throw new AppError('invalid_metadata', `${file} line ${n + 1}: no "id" (a string naming the item)`);
    if (out.has(String(id)))
      throw new AppError('invalid_metadata', `${file} line ${n + 1}: id ${JSON.stringify(id)} again`);
    out.set(String(id), fields);
  });
  return out;
}

function joinMetadata(target: Target, metadata: Map<string, Record<string, unknown>>): void {
  const ids = new Set(target.items.map((it) => it.id));
  for (const it of target.items) {
    const extra = metadata.get(it.id);
    if (extra) it.metadata = { ...it.metadata, ...extra };
  }
  const unknown = [...metadata.keys()].filter((id) => !ids.has(id));
  if (unknown.length)
    log(
      `${target.collection}: --metadata names ${unknown.length} ids that are not items (e.g. ${JSON.stringify(unknown[0])})`,
    );
}

function indexProgress(collection: string): (p: IndexProgress) => void {
  const started = Date.now();
  const tty = Boolean(process.stderr.isTTY);
  let last = 0;
  return (p) => {
    const now = Date.now();
    if (p.done < p.total && now - last < (tty ? 200 : 5000)) return;
    last = now;
    const rate = (p.done * 1000) / Math.max(1, now - started);
    const eta = rate > 0 ? Math.round((p.total - p.done) / rate) : 0;
    const line = `${collection}: indexed ${p.added}/${p.total}${p.failed ? `, ${p.failed} failed` : ''}  ${rate.toFixed(1)}/s  ETA ${Math.floor(eta / 60)}:${String(eta % 60).padStart(2, '0')}`;
    process.stderr.write(tty ? `\r${line.padEnd(70)}${p.done === p.total ? '\n' : ''}` : `albef-embed: ${line}\n`);
  };
}
