// ALBEF's retrieval annotation format (flickr30k_test.json, coco_test.json) read the way
// dataset/caption_dataset.py's `re_eval_dataset` reads it, with the checks its code leaves to a crash
// or to silent nonsense, and the image paths held to the image root. Hand-written: the format is
// ALBEF's own, with no library that reads it.

import { readFile, realpath } from 'node:fs/promises';
import { posix, relative, resolve, sep } from 'node:path';
import { AnnotationsError, PathOutsideRootError } from '../core/errors.js';
import { preCaption } from '../inference/caption.js';

/** `re_eval_dataset`'s default `max_words`, used by Retrieval.py. */
export const ALBEF_MAX_WORDS = 30;

/** What `re_eval_dataset` builds from an annotation file. Text ids run across images in file order. */
export interface Annotations {
  /** Image paths as the file gives them (relative to the image root), in file order. */
  images: string[];
  /** Every caption after `pre_caption(caption, maxWords)`: image 0's captions, then image 1's, ... */
  texts: string[];
  /** The same captions as the file gives them. */
  rawTexts: string[];
  /** For each text, its image. */
  txt2img: number[];
  /** For each image, its texts (ascending). */
  img2txt: number[][];
}

export interface AnnotationOptions {
  /** Words kept by `pre_caption` (default 30, as Retrieval.py). */
  maxWords?: number;
  /** The file's name, for error messages. */
  source?: string;
}

const kind = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v);

/**
 * Why `path` may not name an image under a root, or undefined when it may: it must be relative and
 * stay inside once normalised (`os.path.join(root, '/abs')` in ALBEF would drop the root altogether).
 */
export function imagePathProblem(path: string): string | undefined {
  if (path.length === 0) return 'is empty';
  if (path.includes('\0')) return 'contains a NUL character';
  if (posix.isAbsolute(path)) return 'is absolute (it must be relative to the image root)';
  const n = posix.normalize(path);
  if (n === '..' || n.startsWith('../')) return 'leaves the image root (..)';
  if (n === '.' || n === './') return 'names the image root itself, not a file';
  return undefined;
}

/** Parses an annotation file's text (see {@link annotationsFromJson}). */
export function parseAnnotations(text: string, options: AnnotationOptions = {}): Annotations {
  const source = options.source ?? 'annotation file';
  let value: unknown;
  try {
    // Editors on Windows write a BOM; JSON.parse (like Python's json) refuses one.
    value = JSON.parse(text.startsWith('\uFEFF') ? text.slice(1) : text);
  } catch (err) {
    throw new AnnotationsError(`${source} is not valid JSON: ${(err as Error).message}`, undefined, undefined, {
      cause: err,
    });
  }
  return annotationsFromJson(value, options);
}

/** Reads and parses an annotation file; a file that cannot be read is an `invalid_annotations` error. */
export async function readAnnotations(file: string, options: AnnotationOptions = {}): Promise<Annotations> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new AnnotationsError(
      `cannot read the annotation file ${file}: ${(err as Error).message}`,
      undefined,
      undefined,
      {
        cause: err,
      },
    );
  }
  return parseAnnotations(text, { ...options, source: options.source ?? file });
}

/**
 * `re_eval_dataset` on an already-parsed JSON value: a list of `{"image": path, "caption": [captions]}`
 * (other keys ignored). Where ALBEF's code would crash (not a list, no `image`, a caption that is not
 * a string) or go silently wrong, this refuses with the entry and field named:
 * - `caption` as a single string is one caption (`re_eval_dataset` would iterate its characters, one
 *   "caption" per letter; a single string is what ALBEF's other datasets mean by it);
 * - an image with no captions, or a caption that `pre_caption` leaves empty, is refused (ALBEF would
 *   count the image as a miss in every recall, or rank an empty text);
 * - the same image twice (after path normalisation) is refused: two identical entries tie on every
 *   score, and a collection cannot hold one id twice;
 * - image paths that are absolute or leave the root are refused.
 * Duplicate caption texts are kept, as ALBEF keeps them (COCO has a few).
 */
export function annotationsFromJson(value: unknown, options: AnnotationOptions = {}): Annotations {
  const source = options.source ?? 'annotation file';
  const maxWords = options.maxWords ?? ALBEF_MAX_WORDS;
  if (!Array.isArray(value)) {
    const coco =
      value !== null && typeof value === 'object' && 'annotations' in value && 'images' in value
        ? ' (this looks like a COCO captions file; ALBEF reads its own format, e.g. coco_test.json)'
        : '';
    throw new AnnotationsError(
      `${source} must be a JSON list of {"image": path, "caption": [captions]} entries, not ${kind(value)}${coco}`,
    );
  }
  if (value.length === 0) throw new AnnotationsError(`${source} holds no entries`);

  const out: Annotations = { images: [], texts: [], rawTexts: [], txt2img: [], img2txt: [] };
  const seen = new Map<string, number>();
  value.forEach((entry: unknown, i) => {
    const at = `${source}: entry ${i}`;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      throw new AnnotationsError(`${at} must be an object with "image" and "caption", not ${kind(entry)}`, i);
    }
    const { image, caption } = entry as { image?: unknown; caption?: unknown };
    if (image === undefined) throw new AnnotationsError(`${at} has no "image"`, i, 'image');
    if (typeof image !== 'string') {
      throw new AnnotationsError(`${at}: "image" must be a string (a path), not ${kind(image)}`, i, 'image');
    }
    const problem = imagePathProblem(image);
    if (problem) throw new AnnotationsError(`${at}: "image" ${JSON.stringify(image)} ${problem}`, i, 'image');
    const key = posix.normalize(image);
    const first = seen.get(key);
    if (first !== undefined) {
      throw new AnnotationsError(`${at}: "image" ${JSON.stringify(image)} is already entry ${first}`, i, 'image');
    }
    seen.set(key, i);

    const named = `${at} (${JSON.stringify(image)})`;
    if (caption === undefined) throw new AnnotationsError(`${named} has no "caption"`, i, 'caption');
    let captions: unknown[];
    if (typeof caption === 'string') captions = [caption];
    else if (Array.isArray(caption)) captions = caption as unknown[];
    else {
      throw new AnnotationsError(
        `${named}: "caption" must be a list of strings (or one string), not ${kind(caption)}`,
        i,
        'caption',
      );
    }
    if (captions.length === 0) throw new AnnotationsError(`${named}: "caption" is an empty list`, i, 'caption');

    const imageId = out.images.length;
    const ids: number[] = [];
    captions.forEach((c, j) => {
      if (typeof c !== 'string') {
        throw new AnnotationsError(`${named}: caption[${j}] must be a string, not ${kind(c)}`, i, 'caption');
      }
      const cleaned = preCaption(c, maxWords);
      if (cleaned.length === 0) {
        throw new AnnotationsError(
          `${named}: caption[${j}] ${JSON.stringify(c)} is empty once cleaned up (pre_caption)`,
          i,
          'caption',
        );
      }
      ids.push(out.texts.length);
      out.txt2img.push(imageId);
      out.texts.push(cleaned);
      out.rawTexts.push(c);
    });
    out.images.push(image);
    out.img2txt.push(ids);
  });
  return out;
}

function outside(root: string, abs: string): boolean {
  const rel = relative(root, abs);
  return rel === '' || rel === '..' || rel.startsWith(`..${sep}`);
}

/**
 * The absolute path of `path` under `root`, refusing what would leave the root (an absolute path,
 * `..`); purely lexical: see {@link realImagePath} for symbolic links.
 */
export function resolveImagePath(root: string, path: string, index?: number): string {
  const problem = imagePathProblem(path);
  const rootAbs = resolve(root);
  const abs = resolve(rootAbs, path);
  if (problem !== undefined || outside(rootAbs, abs)) {
    throw new PathOutsideRootError(
      `image path ${JSON.stringify(path)} ${problem ?? 'leaves the image root'} (root ${rootAbs})`,
      index,
    );
  }
  return abs;
}

/** {@link resolveImagePath} for every image, in order; `index` in an error is the image's position. */
export function resolveImagePaths(root: string, paths: readonly string[]): string[] {
  return paths.map((p, i) => resolveImagePath(root, p, i));
}

/**
 * {@link resolveImagePath} after following symbolic links: the real path of the file, refused when it
 * lies outside the real root (a link inside the root pointing elsewhere). Fails as `realpath` does
 * when the file does not exist.
 */
export async function realImagePath(root: string, path: string, index?: number): Promise<string> {
  const abs = resolveImagePath(root, path, index);
  const [realRoot, real] = await Promise.all([realpath(resolve(root)), realpath(abs)]);
  if (outside(realRoot, real)) {
    throw new PathOutsideRootError(
      `image path ${JSON.stringify(path)} is a link to ${real}, outside the image root ${realRoot}`,
      index,
    );
  }
  return real;
}
