// Recall as the ALBEF paper reports it: Retrieval.py's `evaluation()` + `itm_eval()` on an annotation
// file, with a loaded model. Every text and image goes through its tower once (the per-token graphs
// give the embedding and the states the fusion needs); the ITC cosines pick each image's k best texts
// and each text's k best images; every distinct (image, text) candidate pair goes through the fusion
// graph once, the pairs of one image together (its keys and values projected once per run); the ITM
// match logit re-ranks the candidates (−100 elsewhere) and `itm_eval` counts R@1/5/10 both ways.
// All work is kept in a work directory (retrieval/eval-work.ts), so an interrupted run resumes.

import { AppError, ModelDirError, UsageError } from '../core/errors.js';
import type { LoadedModel } from '../inference/model-pool.js';
import type { ImageState, MatchingTowers, Pair, TextState } from '../inference/matching-towers.js';
import type { Annotations } from '../retrieval/annotations.js';
import { realImagePath } from '../retrieval/annotations.js';
import { itcStage, type TopK } from '../retrieval/candidates.js';
import { EvalWork, type EvalPlan, type StoredText } from '../retrieval/eval-work.js';
import { itmEvalCandidates, type Recall } from '../retrieval/recall.js';
import type { ImageIntake, TextIntake } from './intake.js';
import { readFile } from 'node:fs/promises';

export type EvalStage = 'texts' | 'images' | 'itc' | 'itm';

export interface EvalProgress {
  stage: EvalStage;
  done: number;
  total: number;
  /** In the ITM stage: pairs through the fusion graph so far (this run) and in all. */
  pairs?: { done: number; total: number };
}

export interface EvalOptions {
  annotations: Annotations;
  /** sha256 of the annotation file, to tie the work directory to it. */
  annotationsSha256: string;
  imageRoot: string;
  kTest: number;
  workDir: string;
  /** Most pairs per fusion run (all of one image; more images' pairs never share a run). */
  pairsPerRun?: number;
  onProgress?: (p: EvalProgress) => void;
}

export interface EvalReport {
  model: string;
  k_test: number;
  images: number;
  texts: number;
  /** itm_eval on the ITM-re-ranked score matrices: the paper's figures. */
  itm: Recall;
  /** itm_eval on the cosines alone (the first stage). */
  itc: Recall;
  /** Pairs through the fusion graph (distinct candidate pairs of both directions). */
  pairs: number;
}

/** What each query re-ranked, for checks against the reference and for a closer look. */
export interface EvalDetails {
  /** Each image's k best texts by cosine (best first), their cosines and their ITM match logits. */
  i2t: TopK;
  i2tItm: Float32Array;
  /** Each text's k best images, likewise. */
  t2i: TopK;
  t2iItm: Float32Array;
}

export const MIN_K_TEST = 10;

export async function evaluateRetrieval(
  model: LoadedModel,
  intake: { texts: TextIntake; images: ImageIntake },
  o: EvalOptions,
): Promise<EvalReport> {
  return (await evaluateRetrievalInDetail(model, intake, o)).report;
}

/** {@link evaluateRetrieval}, with the candidates and scores behind the report. */
export async function evaluateRetrievalInDetail(
  model: LoadedModel,
  intake: { texts: TextIntake; images: ImageIntake },
  o: EvalOptions,
): Promise<{ report: EvalReport; details: EvalDetails }> {
  const towers = model.matching;
  if (!towers) throw new ModelDirError(`model ${model.name} has no image–text matching part: reconvert it`);
  const a = o.annotations;
  if (!Number.isInteger(o.kTest) || o.kTest < MIN_K_TEST) {
    throw new UsageError(
      `--k-test must be an integer ≥ ${MIN_K_TEST} (got ${o.kTest}): below it R@10 would depend on how ties at −100 sort`,
    );
  }
  const paths = await imageFiles(o.imageRoot, a.images);
  const { vision, text, embed_dim } = model.manifest.architecture;
  const size = model.manifest.preprocessing.image.size;
  const imageTokens = (size / vision.patch) ** 2 + 1;
  const plan: EvalPlan = {
    format: 'albef-embed/eval-work@1',
    model: model.name,
    modelId: `${model.manifest.source.sha256}/${model.manifest.precision}/${size}`,
    annotations: o.annotationsSha256,
    kTest: o.kTest,
    images: a.images.length,
    texts: a.texts.length,
    imageFloats: embed_dim + imageTokens * vision.dim,
    embedDim: embed_dim,
    textDim: text.dim,
  };
  const work = await EvalWork.open(o.workDir, plan);
  const progress = (p: EvalProgress): void => o.onProgress?.(p);

  const texts = (await work.readTexts()) ?? (await textStates(model, towers, intake.texts, a.texts, work, progress));
  await imageStates(model, towers, intake.images, paths, work, progress);

  progress({ stage: 'itc', done: 0, total: a.images.length });
  const itc = itcStage(
    { data: await work.imageEmbeddings(), count: a.images.length, dim: embed_dim },
    { data: joined(texts.map((t) => t.embedding)), count: a.texts.length, dim: embed_dim },
    {
      k: o.kTest,
      txt2img: a.txt2img,
      img2txt: a.img2txt,
      onProgress: (done, total) => progress({ stage: 'itc', done, total }),
    },
  );

  const pairsOf = candidatePairs(itc.i2t, itc.t2i, a.images.length, texts);
  const logits = await matchLogits(
    towers,
    work,
    texts,
    pairsOf,
    imageTokens,
    vision.dim,
    o.pairsPerRun ?? 64,
    progress,
  );
  const lookup = pairLookup(logits);
  const i2tScores = new Float32Array(itc.i2t.index.length);
  for (let i = 0; i < itc.i2t.count; i++) {
    for (let j = 0; j < itc.i2t.k; j++) i2tScores[i * itc.i2t.k + j] = lookup(i, itc.i2t.index[i * itc.i2t.k + j]!);
  }
  const t2iScores = new Float32Array(itc.t2i.index.length);
  for (let t = 0; t < itc.t2i.count; t++) {
    for (let j = 0; j < itc.t2i.k; j++) t2iScores[t * itc.t2i.k + j] = lookup(itc.t2i.index[t * itc.t2i.k + j]!, t);
  }
  const report: EvalReport = {
    model: model.name,
    k_test: o.kTest,
    images: a.images.length,
    texts: a.texts.length,
    itm: itmEvalCandidates(itc.i2t, i2tScores, itc.t2i, t2iScores, a.txt2img, a.img2txt),
    itc: itc.recall!,
    pairs: pairsOf.reduce((n, p) => n + p.length, 0),
  };
  return { report, details: { i2t: itc.i2t, i2tItm: i2tScores, t2i: itc.t2i, t2iItm: t2iScores } };
}

/** Every image's file under the root; all missing ones are named before any work starts. */
async function imageFiles(root: string, images: string[]): Promise<string[]> {
  const found = await Promise.allSettled(images.map((p, i) => realImagePath(root, p, i)));
  const missing = images.filter((_, i) => {
    const r = found[i]!;
    return r.status === 'rejected' && (r.reason as NodeJS.ErrnoException).code === 'ENOENT';
  });
  if (missing.length) {
    const named = missing.slice(0, 5).map((m) => JSON.stringify(m));
    throw new UsageError(
      `${missing.length} of ${images.length} images are missing under ${root}: ${named.join(', ')}${missing.length > 5 ? ', …' : ''} (is --image-root the folder the annotation paths are relative to?)`,
    );
  }
  return found.map((r) => {
    if (r.status === 'rejected') throw r.reason;
    return r.value;
  });
}

/** Every text through the text tower once, in batches of similar length; written to the work dir. */
async function textStates(
  model: LoadedModel,
  towers: MatchingTowers,
  intake: TextIntake,
  captions: string[],
  work: EvalWork,
  report: (p: EvalProgress) => void,
): Promise<StoredText[]> {
  // The captions already went through pre_caption (as re_eval_dataset holds them).
  const ids = intake.tokenize(model, captions, false);
  const order = ids.map((_, i) => i).sort((x, y) => ids[x]!.length - ids[y]!.length || x - y);
  const out = new Array<StoredText>(ids.length);
  const batch = towers.textBatcher.maxBatch;
  for (let at = 0; at < order.length; at += batch) {
    const rows = order.slice(at, at + batch);
    const states = await towers.runTexts(rows.map((r) => ids[r]!));
    rows.forEach((r, j) => (out[r] = states[j]!));
    report({ stage: 'texts', done: Math.min(at + batch, order.length), total: order.length });
  }
  await work.writeTexts(out);
  return out;
}

/** Every image not yet in the work dir through the image tower once, appended in order. */
async function imageStates(
  model: LoadedModel,
  towers: MatchingTowers,
  intake: ImageIntake,
  paths: string[],
  work: EvalWork,
  report: (p: EvalProgress) => void,
): Promise<void> {
  const batch = towers.imageBatcher.maxBatch;
  let next = await work.imagesDone();
  report({ stage: 'images', done: next, total: paths.length });
  // Decodes run ahead on the decode pool while the tower runs the previous batch.
  const decode = (i: number): Promise<Uint8Array> =>
    readFile(paths[i]!)
      .then((bytes) => intake.resizedPixels(model, bytes, i))
      .catch((e: unknown) => {
        // Name the file, not the item: the annotation's entry is what the user can look up.
        if (e instanceof AppError) throw new AppError(e.code, `${paths[i]}: ${e.message.replace(/^item \d+: /, '')}`);
        throw e;
      });
  const ahead = new Map<number, Promise<Uint8Array>>();
  const window = batch * 4;
  const fill = (): void => {
    for (let i = next; i < Math.min(paths.length, next + window); i++) {
      if (ahead.has(i)) continue;
      const p = decode(i);
      // Awaited (and its failure reported) in order; left unawaited if an earlier one fails.
      p.catch(() => undefined);
      ahead.set(i, p);
    }
  };
  while (next < paths.length) {
    fill();
    const rows = Array.from({ length: Math.min(batch, paths.length - next) }, (_, j) => next + j);
    const pixels = await Promise.all(rows.map((i) => ahead.get(i)!));
    rows.forEach((i) => ahead.delete(i));
    const states: ImageState[] = await towers.runImages(pixels);
    await work.appendImages(states.map((s) => joined([s.embedding, s.tokens])));
    next += rows.length;
    report({ stage: 'images', done: next, total: paths.length });
  }
}

/**
 * Each image's distinct candidate texts, both directions: its own k best texts, and every text that
 * has it among its k best images; sorted by text length (then index), so that a run pads little.
 */
function candidatePairs(i2t: TopK, t2i: TopK, images: number, texts: StoredText[]): Int32Array[] {
  const sets = Array.from({ length: images }, () => new Set<number>());
  for (let i = 0; i < i2t.count; i++) for (let j = 0; j < i2t.k; j++) sets[i]!.add(i2t.index[i * i2t.k + j]!);
  for (let t = 0; t < t2i.count; t++) for (let j = 0; j < t2i.k; j++) sets[t2i.index[t * t2i.k + j]!]!.add(t);
  return sets.map((s) => Int32Array.from([...s].sort((x, y) => texts[x]!.length - texts[y]!.length || x - y)));
}

/**
 * The match logit of every candidate pair, image by image (skipping images the work dir already has):
 * an image's tokens are read once, its pairs run in runs of at most `pairsPerRun`, two runs in flight
 * so that the fusion session never waits for the next run to be built.
 */
async function matchLogits(
  towers: MatchingTowers,
  work: EvalWork,
  texts: StoredText[],
  pairsOf: Int32Array[],
  imageTokens: number,
  imageDim: number,
  pairsPerRun: number,
  report: (p: EvalProgress) => void,
): Promise<Map<number, { texts: Int32Array; logits: Float32Array }>> {
  const done = await work.readItm();
  for (const [i, r] of done) {
    if (r.texts.length !== pairsOf[i]!.length || r.texts.some((t, j) => t !== pairsOf[i]![j]))
      throw new Error(`${work.dir}: the pairs kept for image ${i} are not this run's candidates; remove the work dir`);
  }
  const totalPairs = pairsOf.reduce((n, p) => n + p.length, 0);
  let pairsDone = [...done.values()].reduce((n, r) => n + r.texts.length, 0);
  const todo = pairsOf.map((_, i) => i).filter((i) => !done.has(i));
  const progress = (): void =>
    report({
      stage: 'itm',
      done: done.size,
      total: pairsOf.length,
      pairs: { done: pairsDone, total: totalPairs },
    });
  progress();
  const fh = await work.openImages();
  try {
    let imageId = -1;
    const imageState = async (i: number): Promise<ImageState> => {
      const tokens = new Float32Array(imageTokens * imageDim);
      await work.readImageTokens(fh, i, tokens);
      return { id: imageId--, tokens, embedding: new Float32Array(0) };
    };
    const asText = (t: number): TextState => texts[t]!;
    // One image's runs in flight at a time, plus the next image's tokens being read.
    // Work started ahead is awaited later: marked handled now, so that a failure elsewhere meanwhile
    // is the error the run reports instead of an unhandled rejection that ends the process.
    const ahead = <T>(p: Promise<T>): Promise<T> => (p.catch(() => undefined), p);
    let nextImage = todo.length ? ahead(imageState(todo[0]!)) : undefined;
    for (let n = 0; n < todo.length; n++) {
      const i = todo[n]!;
      const image = await nextImage!;
      nextImage = n + 1 < todo.length ? ahead(imageState(todo[n + 1]!)) : undefined;
      const pairs = pairsOf[i]!;
      const runs: Promise<[number, number][]>[] = [];
      for (let at = 0; at < pairs.length; at += pairsPerRun) {
        const run: Pair[] = Array.from(pairs.subarray(at, at + pairsPerRun), (t) => ({ image, text: asText(t) }));
        runs.push(ahead(towers.runPairs(run)));
        // Two runs queued on the session thread: the second is built while the first runs.
        if (runs.length >= 2) await runs[runs.length - 2];
      }
      const out = (await Promise.all(runs)).flat();
      const logits = Float32Array.from(out, (l) => l[1]);
      await work.appendItm(i, pairs, logits);
      done.set(i, { texts: pairs, logits });
      pairsDone += pairs.length;
      progress();
    }
  } finally {
    await fh.close();
  }
  return done;
}

function joined(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The logit of (image, text) among an image's computed pairs, by binary search over its texts in index order. */
function pairLookup(
  logits: Map<number, { texts: Int32Array; logits: Float32Array }>,
): (image: number, text: number) => number {
  const sorted = new Map<number, { texts: Int32Array; logits: Float32Array }>();
  for (const [i, r] of logits) {
    const order = Array.from(r.texts.keys()).sort((x, y) => r.texts[x]! - r.texts[y]!);
    sorted.set(i, {
      texts: Int32Array.from(order, (j) => r.texts[j]!),
      logits: Float32Array.from(order, (j) => r.logits[j]!),
    });
  }
  return (image, text) => {
    const r = sorted.get(image)!;
    let lo = 0;
    let hi = r.texts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (r.texts[mid]! < text) lo = mid + 1;
      else hi = mid;
    }
    if (r.texts[lo] !== text) throw new Error(`no ITM logit for image ${image} and text ${text}`);
    return r.logits[lo]!;
  };
}
