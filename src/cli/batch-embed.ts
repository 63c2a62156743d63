// Offline indexing: images (folders, globs or files, several at once) or text files with one text per
// line, embedded into JSON lines (vector-lines.ts), with progress and resumable output (ids already in
// the file are skipped; a torn last line from an interrupted run is dropped). A shard's output holds
// its own ids only (see shard.ts). The glob matching is a few lines for `*`, `?` and `**`: no
// dependency for that.

import { createReadStream } from 'node:fs';
import { appendFile, readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { createInterface } from 'node:readline';
import { embedEachOrError, type Embedder } from '../service/embedder.js';
import { AppError, UsageError } from '../core/errors.js';
import type { LoadedModel } from '../inference/model-pool.js';
import { log } from './args.js';
import { vectorLine, type VectorsIdentity } from './vector-lines.js';

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

const hasWildcard = (pattern: string): boolean => /[*?]/.test(pattern);

/** The files a glob matches (`*`, `?` within a name, `**` across folders), and the folder before its first wildcard. */
async function globFiles(pattern: string): Promise<{ root: string; files: string[] }> {
  const parts = pattern.split(/[\\/]/);
  const firstWild = parts.findIndex((p) => hasWildcard(p));
  const root = firstWild === 0 ? '.' : parts.slice(0, firstWild).join(sep) || sep;
  const rel = parts.slice(firstWild).join('/');
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
  const s = await stat(root).catch(() => undefined);
  if (!s?.isDirectory()) return { root, files: [] };
  const files = (await walk(root)).filter((f) => re.test(relative(root, f).split(sep).join('/'))).sort();
  return { root, files };
}

/** A folder (recursively), a glob, or one file: its image files, and the folder ids are relative to. */
export async function listImages(input: string, flag = '--images'): Promise<{ root: string; files: string[] }> {
  if (hasWildcard(input)) {
    const { root, files } = await globFiles(input);
    if (!(await stat(root).catch(() => undefined))?.isDirectory())
      throw new UsageError(`${flag} ${input}: no such folder ${root}`);
    return { root, files: files.filter((f) => IMAGE_EXT.test(f)) };
  }
  const s = await stat(input).catch((e: NodeJS.ErrnoException) => e);
  if (s instanceof Error)
    throw new UsageError(`${flag} ${input}: ${s.code === 'ENOENT' ? 'no such file or folder' : s.message}`);
  if (s.isDirectory()) return { root: input, files: (await walk(input)).filter((f) => IMAGE_EXT.test(f)).sort() };
  return { root: dirname(input), files: IMAGE_EXT.test(input) ? [input] : [] };
}

/** The deepest folder that holds all of `dirs`. */
function commonFolder(dirs: string[]): string {
  const split = dirs.map((d) => resolve(d).split(sep));
  const first = split[0]!;
  let n = 0;
  while (n < first.length && split.every((p) => p[n] === first[n])) n++;
  return first.slice(0, n).join(sep) || sep;
}

export interface Item {
  id: string;
  image?: string;
  text?: string;
}

const idOf = (root: string, file: string): string => relative(root, resolve(file)).split(sep).join('/');

/**
 * Image items of several inputs (folders, globs, files, as given or as the shell expanded a glob):
 * each id is the file's path relative to the folder the inputs share (with one input, its folder or
 * the folder before its glob), each file once.
 */
export async function collectImages(inputs: string[]): Promise<Item[]> {
  return (await collectImagesUnder(inputs)).items;
}

/** {@link collectImages}, with the folder the ids are relative to (absolute). */
export async function collectImagesUnder(inputs: string[]): Promise<{ root: string; items: Item[] }> {
  const lists = await Promise.all(inputs.map((input) => listImages(input)));
  const root = lists.length === 1 ? resolve(lists[0]!.root) : commonFolder(lists.map((l) => l.root));
  const items = new Map<string, Item>();
  for (const { files } of lists) for (const f of files) items.set(idOf(root, f), { id: idOf(root, f), image: f });
  return { root, items: [...items.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)) };
}

/**
 * Text items of one or more files (or globs) with one text per line: ids are line numbers for one
 * file, `FILE:LINE` (FILE relative to the folder the files share) for several.
 */
export async function collectTexts(inputs: string[]): Promise<Item[]> {
  const files: string[] = [];
  for (const input of inputs) {
    if (hasWildcard(input)) {
      const { root, files: matched } = await globFiles(input);
      if (!(await stat(root).catch(() => undefined))?.isDirectory())
        throw new UsageError(`--texts ${input}: no such folder ${root}`);
      files.push(...matched);
      continue;
    }
    const s = await stat(input).catch((e: NodeJS.ErrnoException) => e);
    if (s instanceof Error)
      throw new UsageError(`--texts ${input}: ${s.code === 'ENOENT' ? 'no such file' : s.message}`);
    if (s.isDirectory())
      throw new UsageError(`--texts ${input}: a folder, not a file (give text files with one text per line)`);
    files.push(input);
  }
  const unique = [...new Set(files.map((f) => resolve(f)))];
  if (unique.length === 1) return readTextLines(unique[0]!);
  const root = commonFolder(unique.map((f) => dirname(f)));
  const items: Item[] = [];
  for (const f of unique) {
    for (const it of await readTextLines(f)) items.push({ id: `${idOf(root, f)}:${it.id}`, text: it.text });
  }
  return items;
}

function itemProgress(total: number): (embedded: number, failed: number) => void {
  const started = Date.now();
  const tty = Boolean(process.stderr.isTTY);
  let last = 0;
  return (embedded, failed) => {
    const done = embedded + failed;
    const now = Date.now();
    if (done < total && now - last < (tty ? 200 : 5000)) return;
    last = now;
    const rate = (done * 1000) / Math.max(1, now - started);
    const eta = rate > 0 ? Math.round((total - done) / rate) : 0;
    const line = `embedded ${embedded}/${total}${failed ? `, ${failed} failed` : ''}  ${rate.toFixed(1)}/s  ETA ${Math.floor(eta / 60)}:${String(eta % 60).padStart(2, '0')}`;
    process.stderr.write(tty ? `\r${line.padEnd(60)}${done === total ? '\n' : ''}` : `${line}\n`);
  };
}

export interface BatchResult {
  written: number;
  failed: number;
  /** items not reached because the run was asked to stop */
  left: number;
}

/**
 * Embeds `todo` (the items not yet in `out`) batch by batch, appending whole lines after each batch.
 * `stop()` is asked before each batch: an interrupted run ends between batches, never mid-line.
 */
export async function embedToJsonLines(
  embedder: Embedder,
  model: LoadedModel,
  todo: Item[],
  out: string,
  options: { batch: number; cleanup: boolean; identity: VectorsIdentity; stop?: () => boolean },
): Promise<BatchResult> {
  const progress = itemProgress(todo.length);
  let written = 0;
  let failed = 0;
  const embedOne = (chunk: Item[]): Promise<(Float32Array | AppError)[]> =>
    embedEachOrError(chunk, async (items) =>
      items[0]!.text !== undefined
        ? (
            await embedder.embedTexts(
              model,
              items.map((c) => c.text!),
              options.cleanup,
            )
          ).vectors
        : embedder.embedImages(model, await Promise.all(items.map(async (c) => ({ bytes: await readFile(c.image!) })))),
    );
  let i = 0;
  for (; i < todo.length && !options.stop?.(); i += options.batch) {
    const chunk = todo.slice(i, i + options.batch);
    const results = await embedOne(chunk);
    const lines: string[] = [];
    results.forEach((r, j) => {
      if (r instanceof AppError) {
        failed++;
        log(`${chunk[j]!.id}: ${r.code}: ${r.message}`);
      } else lines.push(vectorLine(chunk[j]!.id, options.identity, r));
    });
    if (lines.length) await appendFile(out, lines.join('\n') + '\n');
    written += lines.length;
    progress(written, failed);
  }
  return { written, failed, left: Math.max(0, todo.length - i) };
}

export async function readTextLines(file: string): Promise<Item[]> {
  const items: Item[] = [];
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
