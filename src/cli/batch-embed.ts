// Offline indexing: a folder (or glob) of images, or a text file with one text per line, embedded
// into JSON lines ({"id", "embedding"}), with progress and resumable output (ids already in the
// file are skipped; a torn last line from an interrupted run is dropped). A shard's output holds its
// own ids only (see shard.ts).

import { createReadStream } from 'node:fs';
import { appendFile, readdir, readFile, truncate } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import { createInterface } from 'node:readline';
import type { Embedder } from '../service/embedder.js';
import { AppError } from '../core/errors.js';
import { isDirectory } from '../core/fs-utils.js';
import type { LoadedModel } from '../inference/model-pool.js';
import { log } from './args.js';

const IMAGE_EXT = /\.(jpe?g|png|webp|gif|tiff?|bmp|dib|avif|heic|heif)$/i;

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** A directory (recursively), or a glob: `*`, `?` within a name, `**` across directories. */
export async function listImages(pattern: string): Promise<{ root: string; files: string[] }> {
  if (await isDirectory(pattern))
    return { root: pattern, files: (await walk(pattern)).filter((f) => IMAGE_EXT.test(f)).sort() };
  const parts = pattern.split(/[\\/]/);
  const firstWild = parts.findIndex((p) => /[*?]/.test(p));
  const root = firstWild <= 0 ? dirname(pattern) : parts.slice(0, firstWild).join(sep) || '.';
  const rel = firstWild <= 0 ? basename(pattern) : parts.slice(firstWild).join('/');
  const re = new RegExp(
    '^' +
      rel
        .split('/')
        .map((seg) =>
          seg === '**'
            ? '(?:.*/)?'
            : seg
                .replace(/[.+^${}()|[\]\\]/g, '\\$&')
                .replace(/\*/g, '[^/]*')
                .replace(/\?/g, '[^/]') + '/',
        )
        .join('')
        .replace(/\/$/, '')
        .replace(/\(\?:\.\*\/\)\?\//g, '(?:.*/)?') +
      '$',
  );
  const files = (await walk(root))
    .filter((f) => re.test(relative(root, f).split(sep).join('/')) && IMAGE_EXT.test(f))
    .sort();
  return { root, files };
}

/** Ids already written to `out`; a torn last line is cut off so that appending stays valid JSON lines. */
async function existingIds(out: string): Promise<Set<string>> {
  const ids = new Set<string>();
  const text = await readFile(out, 'utf8').catch(() => '');
  if (!text) return ids;
  let good = 0;
  for (const line of text.split('\n')) {
    if (!line) {
      good += 1;
      continue;
    }
    try {
      ids.add(String((JSON.parse(line) as { id: unknown }).id));
      good += Buffer.byteLength(line) + 1;
    } catch {
      break;
    }
  }
  if (good < Buffer.byteLength(text)) await truncate(out, Math.min(good, Buffer.byteLength(text)));
  return ids;
}

function itemProgress(total: number): (done: number) => void {
  const started = Date.now();
  const tty = Boolean(process.stderr.isTTY);
  let last = 0;
  return (done) => {
    const now = Date.now();
    if (done < total && now - last < (tty ? 200 : 5000)) return;
    last = now;
    const rate = (done * 1000) / Math.max(1, now - started);
    const eta = rate > 0 ? Math.round((total - done) / rate) : 0;
    const line = `embedded ${done}/${total}  ${rate.toFixed(1)}/s  ETA ${Math.floor(eta / 60)}:${String(eta % 60).padStart(2, '0')}`;
    process.stderr.write(tty ? `\r${line.padEnd(60)}${done === total ? '\n' : ''}` : `${line}\n`);
  };
}

export interface BatchResult {
  written: number;
  skipped: number;
  failed: number;
}

export async function embedToJsonLines(
  embedder: Embedder,
  model: LoadedModel,
  items: { id: string; image?: string; text?: string }[],
  out: string,
  options: {
    batch: number;
    cleanup: boolean;
    /** the ids this run's shard owns (all when absent) */ owns?: (id: string) => boolean;
  },
): Promise<BatchResult> {
  const done = await existingIds(out);
  if (options.owns) {
    const foreign = [...done].filter((id) => !options.owns!(id));
    if (foreign.length) {
      throw new AppError(
        'foreign_ids',
        `${out} already holds ${foreign.length} ids of other shards (e.g. ${JSON.stringify(foreign[0])}): it was written with another --shard; give each shard its own --out`,
      );
    }
  }
  const todo = items.filter((it) => !done.has(it.id));
  const progress = itemProgress(todo.length);
  let written = 0;
  let failed = 0;
  const embedOne = async (chunk: typeof todo): Promise<(Float32Array | AppError)[]> => {
    try {
      if (chunk[0]!.text !== undefined)
        return (
          await embedder.embedTexts(
            model,
            chunk.map((c) => c.text!),
            options.cleanup,
          )
        ).vectors;
      return await embedder.embedImages(
        model,
        await Promise.all(chunk.map(async (c) => ({ bytes: await readFile(c.image!) }))),
      );
    } catch (e) {
      if (chunk.length === 1)
        return [e instanceof AppError ? e : new AppError('embedding_failed', (e as Error).message)];
      // One bad item fails its chunk: retry the items one by one to isolate it.
      return (await Promise.all(chunk.map((c) => embedOne([c])))).flat();
    }
  };
  for (let i = 0; i < todo.length; i += options.batch) {
    const chunk = todo.slice(i, i + options.batch);
    const results = await embedOne(chunk);
    const lines: string[] = [];
    results.forEach((r, j) => {
      if (r instanceof AppError) {
        failed++;
        log(`${chunk[j]!.id}: ${r.code}: ${r.message}`);
      } else lines.push(JSON.stringify({ id: chunk[j]!.id, embedding: Array.from(r) }));
    });
    if (lines.length) await appendFile(out, lines.join('\n') + '\n');
    written += lines.length;
    progress(Math.min(i + chunk.length, todo.length));
  }
  return { written, skipped: items.length - todo.length, failed };
}

export async function readTextLines(file: string): Promise<{ id: string; text: string }[]> {
  const items: { id: string; text: string }[] = [];
  let n = 0;
  for await (const line of createInterface({
    input: createReadStream(file, 'utf8'),
    crlfDelay: Number.POSITIVE_INFINITY,
  })) {
    n++;
    if (line.trim()) items.push({ id: String(n), text: line });
  }
  return items;
}
