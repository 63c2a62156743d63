// Image–text matching for one model, as ALBEF's Retrieval.py evaluation() runs it: the per-token graphs of both towers and the fusion
// graph, each with its session and micro-batcher. The image tower runs once per distinct image (and
// not at all for images in the state cache), the text tower once per distinct text, and the fusion
// graph on batches of (image, text) pairs grouped by image, so that each image's keys and values are
// projected once per batch however many texts it is paired with.

import type { ModelManifest } from '../core/model-manifest.js';
import { MicroBatcher } from './batcher.js';
import { splitBatch, type Session } from './session.js';
import { StateCache, type CacheEvents } from './state-cache.js';
import { paddedTokenFeeds } from './token-feeds.js';

/** Every token of an image after the ViT's final LayerNorm [N, Dv], and its embedding. */
export interface ImageState {
  /** Distinct per computed image: pairs are grouped by it. */
  id: number;
  tokens: Float32Array;
  embedding: Float32Array;
}

/** The text tower's last hidden states of a text's tokens [length, Dt], and its embedding. */
export interface TextState {
  length: number;
  tokens: Float32Array;
  embedding: Float32Array;
}

export interface Pair {
  image: ImageState;
  text: TextState;
}

export interface MatchingOptions {
  maxBatchImages: number;
  maxBatchTexts: number;
  maxBatchPairs: number;
  maxQueueImages: number;
  maxQueueTexts: number;
  maxQueuePairs: number;
  batchWaitMs: number;
  batchFillWaitMs?: number;
  stateCacheImages: number;
  cacheEvents?: CacheEvents;
  /** Wraps each run (the decode gate); default: run as is. */
  onGate?: <T>(session: Session, run: () => Promise<T>) => Promise<T>;
  hooks?: (
    tower: 'image_states' | 'text_states' | 'fusion',
  ) => Pick<ConstructorParameters<typeof MicroBatcher>[0], 'onBatch' | 'onQueueDepth' | 'onDropped'>;
}

export interface MatchingSessions {
  imageStates: Session;
  textStates: Session;
  fusion: Session;
}

let nextImageId = 0;

export class MatchingTowers {
  readonly imageBatcher: MicroBatcher<Uint8Array, ImageState>;
  readonly textBatcher: MicroBatcher<number[], TextState>;
  readonly pairBatcher: MicroBatcher<Pair, [number, number]>;
  readonly cache: StateCache<ImageState>;

  constructor(
    private readonly manifest: ModelManifest,
    private readonly sessions: MatchingSessions,
    private readonly tokens: { pad: number; cls: number },
    options: MatchingOptions,
  ) {
    const gate = options.onGate ?? (<T>(_s: Session, run: () => Promise<T>) => run());
    const name = manifest.name;
    this.cache = new StateCache(options.stateCacheImages, options.cacheEvents);
    this.imageBatcher = new MicroBatcher({
      name: `${name} image states`,
      maxBatch: options.maxBatchImages,
      maxWaitMs: options.batchWaitMs,
      fillWaitMs: options.batchFillWaitMs,
      maxQueue: options.maxQueueImages,
      run: (batch) => gate(sessions.imageStates, () => this.runImages(batch)),
      ...options.hooks?.('image_states'),
    });
    this.textBatcher = new MicroBatcher({
      name: `${name} text states`,
      maxBatch: options.maxBatchTexts,
      maxWaitMs: options.batchWaitMs,
      maxQueue: options.maxQueueTexts,
      run: (batch) => gate(sessions.textStates, () => this.runTexts(batch)),
      groupKey: (ids) => ids.length,
      ...options.hooks?.('text_states'),
    });
    this.pairBatcher = new MicroBatcher({
      name: `${name} image–text pairs`,
      maxBatch: options.maxBatchPairs,
      maxWaitMs: options.batchWaitMs,
      maxQueue: options.maxQueuePairs,
      run: (batch) => gate(sessions.fusion, () => this.runPairs(batch)),
      // Pairs of one image batch together: its keys and values are then projected once.
      groupKey: (pair) => pair.image.id,
      ...options.hooks?.('fusion'),
    });
  }

  /** Match probability: softmax of the ITM logits (no-match, match), match class. */
  static probability([noMatch, match]: [number, number]): number {
    return 1 / (1 + Math.exp(noMatch - match));
  }

  /** Image states for resized RGB (the cache is consulted by the caller, which has the image's bytes). */
  async runImages(batch: Uint8Array[]): Promise<ImageState[]> {
    const { size, mean, std } = this.manifest.preprocessing.image;
    const out = await this.sessions.imageStates.run({ pixel_values: { type: 'rgb8', images: batch, size, mean, std } });
    const tokens = splitBatch(out.states!);
    const embeddings = splitBatch(out.embeddings!);
    return batch.map((_, i) => ({ id: nextImageId++, tokens: tokens[i]!, embedding: embeddings[i]! }));
  }

  /** Token id rows → text states (each cut to its own length; the batch is padded with mask 0). */
  async runTexts(batch: number[][]): Promise<TextState[]> {
    const feeds = paddedTokenFeeds(batch, this.tokens.pad);
    const len = feeds.input_ids.dims[1]!;
    const out = await this.sessions.textStates.run(feeds);
    const states = out.states!;
    const dim = states.dims[2]!;
    const data = states.data as Float32Array;
    const embeddings = splitBatch(out.embeddings!);
    return batch.map((row, r) => ({
      length: row.length,
      tokens: data.slice(r * len * dim, (r * len + row.length) * dim),
      embedding: embeddings[r]!,
    }));
  }

  /**
   * ITM logits for a batch of pairs. The fusion graph takes I images with M pairs each; pairs are
   * grouped by image, and groups of different sizes run as separate inferences (one per size).
   */
  async runPairs(batch: Pair[]): Promise<[number, number][]> {
    const groups = new Map<number, number[]>();
    batch.forEach((p, i) => {
      const g = groups.get(p.image.id);
      if (g) g.push(i);
      else groups.set(p.image.id, [i]);
    });
    const bySize = new Map<number, number[][]>();
    for (const g of groups.values()) {
      const same = bySize.get(g.length);
      if (same) same.push(g);
      else bySize.set(g.length, [g]);
    }
    const logits = new Array<[number, number]>(batch.length);
    for (const sameSize of bySize.values()) {
      const order = sameSize.flat();
      const out = await this.sessions.fusion.run(
        this.fusionFeeds(
          sameSize.map((g) => batch[g[0]!]!.image),
          order.map((i) => batch[i]!.text),
        ),
      );
      const l = out.itm_logits!.data as Float32Array;
      order.forEach((pairIndex, k) => (logits[pairIndex] = [l[2 * k]!, l[2 * k + 1]!]));
    }
    return logits;
  }

  private fusionFeeds(images: ImageState[], texts: TextState[]): Parameters<Session['run']>[0] {
    const { vision, text } = this.manifest.architecture;
    const imageTokens = images[0]!.tokens.length / vision.dim;
    const imageData = new Float32Array(images.length * imageTokens * vision.dim);
    images.forEach((im, i) => imageData.set(im.tokens, i * imageTokens * vision.dim));
    const len = Math.max(...texts.map((t) => t.length));
    const textData = new Float32Array(texts.length * len * text.dim);
    const mask = new BigInt64Array(texts.length * len);
    texts.forEach((t, p) => {
      textData.set(t.tokens, p * len * text.dim);
      mask.fill(1n, p * len, p * len + t.length);
    });
    return {
      text_states: { type: 'float32', data: textData, dims: [texts.length, len, text.dim] },
      text_mask: { type: 'int64', data: mask, dims: [texts.length, len] },
      image_states: { type: 'float32', data: imageData, dims: [images.length, imageTokens, vision.dim] },
    };
  }

  /** One inference per graph, so that the first requests do not pay for lazy initialisation. */
  async warmup(): Promise<void> {
    const size = this.manifest.preprocessing.image.size;
    const [image] = await this.runImages([new Uint8Array(3 * size * size)]);
    const [text] = await this.runTexts([[this.tokens.cls]]);
    await this.runPairs([{ image: image!, text: text! }]);
  }

  async idle(): Promise<void> {
    await Promise.all([this.imageBatcher.idle(), this.textBatcher.idle(), this.pairBatcher.idle()]);
  }

  async release(): Promise<void> {
    const { imageStates, textStates, fusion } = this.sessions;
    await Promise.all([imageStates, textStates, fusion].map((s) => s.release()));
  }
}
