// Image–text matching without HTTP (docs/api.md): re-ranking documents against a query with ALBEF's ITM
// head, and zero-shot classification. Routes and the CLI call this. Work is shared: each distinct
// image (by the SHA-256 of its bytes, through the model's state cache) and each distinct text runs its
// tower once per request, and the pairs go to the fusion batcher grouped by image.

import { createHash } from 'node:crypto';
import type { Embedder } from './embedder.js';
import type { ImageInput } from '../sources/image-value.js';
import { allOrFirstError, checkCount, relabel, type ImageIntake, type Limits, type TextIntake } from './intake.js';
import { BadRequestError, FusionUnavailableError } from '../core/errors.js';
import type { Departure, Reservation } from '../inference/batcher.js';
import { MatchingTowers, type ImageState, type TextState } from '../inference/matching-towers.js';
import type { LoadedModel } from '../inference/model-pool.js';
import { reconvertCommand } from '../inference/model-warnings.js';
import type { Metrics } from '../core/metrics.js';
import type { LabelScore, PairScore } from './answers.js';

export type MatchItem = { text: string } | { image: ImageInput };

export interface MatchOptions {
  captionCleanup: boolean;
  signal?: AbortSignal;
  deadline?: number;
  /** How an error names document i (default `documents[i]`, with its index). */
  documentLabel?: (i: number) => { label: string; index?: number };
}

/** The model cannot do `what`: no fusion part in its directory, not loaded, or no temperature. */
function fusionUnavailable(model: LoadedModel, what: string): FusionUnavailableError {
  const fusion = model.manifest.fusion;
  const why =
    fusion && what === 'classify'
      ? 'its checkpoint holds no temperature (temp), which zero-shot scores need'
      : fusion
        ? 'its fusion graphs were not loaded (the service runs with --no-fusion)'
        : `its directory was written by converter ${model.manifest.converter_version}, before image–text matching; reconvert it: ${reconvertCommand(model.manifest, model.dir)}`;
  return new FusionUnavailableError(`model ${JSON.stringify(model.name)} cannot ${what}: ${why}`);
}

const dot = (a: Float32Array, b: Float32Array): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

/**
 * Labels and template a softmax over labels can use: at least two labels, each once (equal labels
 * would split one score between them, shifting every other), and a template with the `{}` each
 * label goes into (without it every label is the same text, every score 1/n).
 */
function checkLabels(labels: string[], template: string): void {
  if (labels.length < 2)
    throw new BadRequestError(
      `give at least two labels (got ${labels.length})`,
      undefined,
      'invalid_request',
      'labels',
    );
  if (!template.includes('{}'))
    throw new BadRequestError(
      `template ${JSON.stringify(template)} has no {} placeholder for the label, so every label would be the same text with the same score; put {} where the label goes, e.g. "a photo of a {}"`,
      undefined,
      'bad_request',
      'template',
    );
  const first = new Map<string, number>();
  labels.forEach((label, j) => {
    const i = first.get(label);
    if (i !== undefined)
      throw new BadRequestError(
        `labels[${j}] repeats labels[${i}] (${JSON.stringify(label)}): give each label once, as equal labels split one score between them`,
        j,
        'bad_request',
        'labels',
      );
    first.set(label, j);
  });
}

export const documentAt = (i: number) => ({ label: `documents[${i}]`, index: i });
export const imageAt = (i: number) => ({ label: `images[${i}]`, index: i });
const labelAt = (i: number) => ({ label: `labels[${i}]`, index: i });
export const queryAt = () => ({ label: 'query' });

export class Matcher {
  constructor(
    private readonly texts: TextIntake,
    private readonly images: ImageIntake,
    private readonly embedder: Embedder,
    private readonly metrics?: Metrics,
  ) {}

  private get limits(): Limits {
    return this.texts.limits;
  }

  private towers(model: LoadedModel, what: string): MatchingTowers {
    if (!model.matching) throw fusionUnavailable(model, what);
    return model.matching;
  }

  /**
   * States of the given images through the cache, once per distinct image (a hit skips decoding and
   * the image tower). The images not cached or under way get their queue places all at once, after
   * their bytes are known: a request never half-enters, and one larger than the queue is 413.
   */
  private async imageStates(
    model: LoadedModel,
    towers: MatchingTowers,
    inputs: ImageInput[],
    options: { deadline: number; signal?: AbortSignal },
  ): Promise<ImageState[]> {
    const bytes = await allOrFirstError(inputs.map((input, i) => this.images.bytes(model, input, i, options.signal)));
    const keys = bytes.map((b) => createHash('sha256').update(b).digest('hex'));
    const places = towers.imageBatcher.reserve(new Set(keys.filter((k) => !towers.cache.has(k))).size, options);
    try {
      return await allOrFirstError(
        keys.map((key, i) =>
          towers.cache.get(key, () => this.imageState(model, towers, bytes[i]!, i, places, options.signal)),
        ),
      );
    } finally {
      places.release();
    }
  }

  private async imageState(
    model: LoadedModel,
    towers: MatchingTowers,
    bytes: Uint8Array,
    index: number,
    places: Reservation<Uint8Array, ImageState>,
    signal?: AbortSignal,
  ): Promise<ImageState> {
    let rgb: Uint8Array;
    try {
      rgb = await this.images.resizedPixels(model, bytes, index, signal);
    } catch (e) {
      places.release(1);
      throw e;
    }
    return (await allOrFirstError(places.enqueue([rgb])))[0]!;
  }

  /** Text states of the given texts, once per distinct token sequence. */
  private async textStates(
    model: LoadedModel,
    towers: MatchingTowers,
    texts: string[],
    cleanup: boolean,
    options: { deadline: number; signal?: Departure },
  ): Promise<TextState[]> {
    const ids = this.texts.tokenize(model, texts, cleanup);
    const distinct = new Map<string, number>();
    const unique: number[][] = [];
    const slot = ids.map((row) => {
      const key = row.join(',');
      let k = distinct.get(key);
      if (k === undefined) {
        k = unique.push(row) - 1;
        distinct.set(key, k);
      }
      return k;
    });
    const states = await allOrFirstError(towers.textBatcher.submitAll(unique, options));
    return slot.map((k) => states[k]!);
  }

  /**
   * ITM logits of each pair, each distinct pair (same image state and text state) run once: the same
   * pair in batches of other sizes can differ in the last bits, and equal documents must tie.
   */
  private async logits(
    towers: MatchingTowers,
    pairs: { image: ImageState; text: TextState }[],
    options: { deadline: number; signal?: Departure },
  ): Promise<[number, number][]> {
    const seen = new Map<ImageState, Map<TextState, number>>();
    const unique: { image: ImageState; text: TextState }[] = [];
    const slot = pairs.map((p) => {
      let byText = seen.get(p.image);
      if (!byText) seen.set(p.image, (byText = new Map<TextState, number>()));
      let k = byText.get(p.text);
      if (k === undefined) byText.set(p.text, (k = unique.push(p) - 1));
      return k;
    });
    const logits = await allOrFirstError(towers.pairBatcher.submitAll(unique, options));
    return slot.map((k) => logits[k]!);
  }

  /**
   * Scores every document against the query with the ITM head, best first (ties by index).
   * One of query and document is a text, the other an image, for every pair.
   */
  async rerank(
    model: LoadedModel,
    query: MatchItem,
    documents: MatchItem[],
    options: MatchOptions,
  ): Promise<PairScore[]> {
    const towers = this.towers(model, 'rerank');
    checkCount(this.limits, documents.length, 'documents');
    const queryIsText = 'text' in query;
    documents.forEach((d, i) => {
      if ('text' in d === queryIsText) {
        throw new BadRequestError(
          `documents[${i}]: ${queryIsText ? 'a text document for a text' : 'an image document for an image'} query; every pair must be one text and one image`,
          i,
          'modality_mismatch',
        );
      }
    });
    const deadline = options.deadline ?? Date.now() + this.limits.requestTimeoutMs;
    const texts = (queryIsText ? [query] : documents) as { text: string }[];
    const images = (queryIsText ? documents : [query]) as { image: ImageInput }[];
    const signal = options.signal;
    const docAt = options.documentLabel ?? documentAt;
    const [textStates, imageStates] = await Promise.all([
      this.textStates(
        model,
        towers,
        texts.map((t) => t.text),
        options.captionCleanup,
        { deadline, signal },
      ).catch((e: unknown) => relabel(e, queryIsText ? queryAt : docAt)),
      this.imageStates(
        model,
        towers,
        images.map((d) => d.image),
        { deadline, signal },
      ).catch((e: unknown) => relabel(e, queryIsText ? docAt : queryAt)),
    ]);
    const pairs = documents.map((_, i) =>
      queryIsText ? { image: imageStates[i]!, text: textStates[0]! } : { image: imageStates[0]!, text: textStates[i]! },
    );
    const logits = await this.logits(towers, pairs, { deadline, signal: options.signal });
    this.metrics?.items.inc({ model: model.name, modality: 'pair' }, pairs.length);
    return pairs
      .map((p, index) => ({
        index,
        relevance_score: MatchingTowers.probability(logits[index]!),
        itm_logits: logits[index]!,
        itc: dot(p.image.embedding, p.text.embedding),
      }))
      .sort((a, b) => b.relevance_score - a.relevance_score || a.index - b.index);
  }

  /**
   * Zero-shot classification: for each image, softmax over the labels of cos(image, text) / t with
   * t = temp clamped to [0.001, 0.5], the texts being `template` with `{}` replaced by each label;
   * with `itm`, each pair's match probability too. Per image, its labels best first.
   */
  async classify(
    model: LoadedModel,
    images: ImageInput[],
    labels: string[],
    options: MatchOptions & { template: string; itm: boolean },
  ): Promise<LabelScore[][]> {
    const temp = model.manifest.fusion?.temp;
    if (temp === undefined) throw fusionUnavailable(model, 'classify');
    checkLabels(labels, options.template);
    checkCount(this.limits, images.length, 'images');
    checkCount(this.limits, labels.length, 'labels');
    const texts = labels.map((l) => options.template.replaceAll('{}', l));
    const t = Math.min(0.5, Math.max(0.001, temp));
    const deadline = options.deadline ?? Date.now() + this.limits.requestTimeoutMs;
    let imageVectors: Float32Array[];
    let textVectors: Float32Array[];
    let itm: number[][] | undefined;
    if (options.itm) {
      const towers = this.towers(model, 'classify with itm');
      const [textStates, imageStates] = await Promise.all([
        this.textStates(model, towers, texts, options.captionCleanup, { deadline, signal: options.signal }).catch(
          (e: unknown) => relabel(e, labelAt),
        ),
        this.imageStates(model, towers, images, { deadline, signal: options.signal }).catch((e: unknown) =>
          relabel(e, imageAt),
        ),
      ]);
      const pairs = imageStates.flatMap((image) => textStates.map((text) => ({ image, text })));
      const logits = await this.logits(towers, pairs, { deadline, signal: options.signal });
      itm = imageStates.map((_, i) =>
        textStates.map((_, j) => MatchingTowers.probability(logits[i * textStates.length + j]!)),
      );
      imageVectors = imageStates.map((s) => s.embedding);
      textVectors = textStates.map((s) => s.embedding);
    } else {
      const [tv, iv] = await Promise.all([
        this.embedder
          .embedTexts(model, texts, options.captionCleanup, { deadline, signal: options.signal })
          .catch((e: unknown) => relabel(e, labelAt)),
        this.embedder
          .embedImages(model, images, { deadline, signal: options.signal })
          .catch((e: unknown) => relabel(e, imageAt)),
      ]);
      textVectors = tv.vectors;
      imageVectors = iv;
    }
    return imageVectors.map((img, i) => {
      const logit = textVectors.map((txt) => dot(img, txt) / t);
      const max = Math.max(...logit);
      const exp = logit.map((l) => Math.exp(l - max));
      const sum = exp.reduce((a, b) => a + b, 0);
      return labels
        .map((label, j): LabelScore => ({ label, score: exp[j]! / sum, ...(itm ? { itm_prob: itm[i]![j]! } : {}) }))
        .sort((a, b) => b.score - a.score);
    });
  }
}
