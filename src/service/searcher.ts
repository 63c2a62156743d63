// Search over a collection the way ALBEF's Retrieval.py ranks: the ITC cosine of the query's
// embedding against every item picks the best (the store's exact or ANN search), then, for a text
// query against images or an image query against texts, the ITM match logit itm_logits[1] re-ranks
// the first K (ties by id), and the next ones stay in ITC order. The candidates' images come from
// their source again (a path under the collection's root, or a URL through the SSRF guard), through
// the model's state cache: see docs/stores.md for what that costs against storing image tokens.

import { readFile } from 'node:fs/promises';
import { AppError, BadRequestError, ModelMismatchError, NotFoundError } from '../core/errors.js';
import type { Metrics } from '../core/metrics.js';
import { towerFingerprint } from '../core/model-manifest.js';
import type { LoadedModel, ModelPool } from '../inference/model-pool.js';
import { realImagePath } from '../retrieval/annotations.js';
import type { CollectionSpec, CollectionStore, FilterValue, Hit, Modality } from '../retrieval/store.js';
import type { ImageInput } from '../sources/image-value.js';
import type { SearchHit } from './answers.js';
import type { Embedder } from './embedder.js';
import type { Matcher, MatchItem } from './matcher.js';

export type SearchQuery = { text: string } | { image: ImageInput } | { id: string };

export interface SearchRequest {
  collection: string;
  query: SearchQuery;
  topK: number;
  /** Re-rank the ITC top K by the ITM match logit (0: ITC only). */
  rerank: number;
  filter?: Record<string, FilterValue>;
  include: ('source' | 'metadata')[];
  captionCleanup: boolean;
  /** The model the request names; the collection's own when omitted. */
  model?: string;
  signal?: AbortSignal;
}

export interface SearchAnswer {
  collection: string;
  model: string;
  results: SearchHit[];
  usage: { texts: number; images: number; pairs: number };
}

export const MAX_RERANK = 256;

const isUrl = (source: string): boolean => /^https?:\/\//i.test(source);

/** What the query is: a stored item is of its collection's modality. */
const queryModality = (q: SearchRequest['query'], info: CollectionSpec): Modality =>
  'id' in q ? info.modality : 'text' in q ? 'text' : 'image';

export class Searcher {
  constructor(
    readonly store: CollectionStore,
    private readonly pool: ModelPool,
    private readonly embedder: Embedder,
    private readonly matcher: Matcher,
    private readonly metrics?: Metrics,
  ) {}

  /** The collection and the loaded model that made its vectors (409 when the request or the service has another). */
  async open(collection: string, modelName?: string): Promise<{ info: CollectionSpec; model: LoadedModel }> {
    const info = await this.store.spec(collection);
    if (modelName !== undefined && modelName !== info.model) {
      throw new ModelMismatchError(
        `collection ${JSON.stringify(collection)} was indexed with model ${JSON.stringify(info.model)}, not ${JSON.stringify(modelName)}: leave "model" out, or search a collection of that model`,
      );
    }
    const model = this.pool.list().find((m) => m.name === info.model);
    if (!model) {
      throw new ModelMismatchError(
        `collection ${JSON.stringify(collection)} was indexed with model ${JSON.stringify(info.model)}, which this service does not serve (loaded: ${this.pool.names.join(', ')})`,
      );
    }
    if (towerFingerprint(model.manifest, info.modality) !== info.modelSha256) {
      throw new ModelMismatchError(
        `collection ${JSON.stringify(collection)} was indexed with another conversion of ${JSON.stringify(info.model)} (its ${info.modality} tower differs: another checkpoint, precision or resolution); reindex it with this model`,
      );
    }
    return { info, model };
  }

  async search(r: SearchRequest): Promise<SearchAnswer> {
    const { info, model } = await this.open(r.collection, r.model);
    const usage = { texts: 0, images: 0, pairs: 0 };
    // A re-rank that cannot run is refused before the query costs a tower run.
    if (r.rerank > 0) this.checkRerank(model, queryModality(r.query, info), info);
    const { vector, exclude } = await this.queryVector(r, info, model, usage);
    const want = Math.max(r.topK, r.rerank) + (exclude ? 1 : 0);
    const hits = (await this.store.search(info.name, vector, { k: want, filter: r.filter })).filter(
      (h) => h.id !== exclude,
    );
    const reranked = r.rerank > 0 ? await this.rerank(r, info, model, hits.slice(0, r.rerank), usage) : [];
    const rest = hits.slice(reranked.length).map((h): SearchHit => ({ id: h.id, score: h.score, itc: h.score }));
    const byId = new Map(hits.map((h) => [h.id, h]));
    const results = [...reranked, ...rest].slice(0, r.topK).map((res) => this.withFields(res, byId.get(res.id)!, r));
    this.metrics?.items.inc({ model: model.name, modality: 'search' });
    return { collection: info.name, model: model.name, results, usage };
  }

  private async queryVector(
    r: SearchRequest,
    info: CollectionSpec,
    model: LoadedModel,
    usage: SearchAnswer['usage'],
  ): Promise<{ vector: Float32Array; exclude?: string }> {
    const q = r.query;
    if ('id' in q) {
      const [item] = await this.store.get(info.name, [q.id], true);
      if (!item)
        throw new NotFoundError(
          `collection ${JSON.stringify(info.name)} holds no item ${JSON.stringify(q.id)}`,
          'query',
        );
      // "More like this": the item itself is not among its own results.
      return { vector: item.vector, exclude: item.id };
    }
    if ('text' in q) {
      usage.texts++;
      const { vectors } = await this.embedder.embedTexts(model, [q.text], r.captionCleanup, { signal: r.signal });
      return { vector: vectors[0]! };
    }
    usage.images++;
    const [vector] = await this.embedder.embedImages(model, [q.image], { signal: r.signal });
    return { vector: vector! };
  }

  private checkRerank(model: LoadedModel, queryModality: Modality, info: CollectionSpec): void {
    if (queryModality === info.modality) {
      throw new BadRequestError(
        `rerank needs one text and one image: this is ${queryModality === 'image' ? 'an' : 'a'} ${queryModality} query against a collection of ${info.modality}s (search it with rerank 0, or query the other modality)`,
        undefined,
        'rerank_unavailable',
        'rerank',
      );
    }
    if (!model.matching) {
      throw new BadRequestError(
        `model ${JSON.stringify(model.name)} cannot re-rank: ${model.manifest.fusion ? 'its matching graphs are not loaded (--no-fusion)' : 'its directory has no matching part (reconvert it)'}`,
        undefined,
        'rerank_unavailable',
        'rerank',
      );
    }
  }

  /** The first K hits by the ITM match logit (Retrieval.py's score), ties by id. */
  private async rerank(
    r: SearchRequest,
    info: CollectionSpec,
    model: LoadedModel,
    candidates: Hit[],
    usage: SearchAnswer['usage'],
  ): Promise<SearchHit[]> {
    if (candidates.length === 0) return [];
    const documents = await Promise.all(candidates.map((h) => this.document(info, h)));
    const query = r.query as MatchItem;
    const scores = await this.matcher.rerank(model, query, documents, {
      captionCleanup: r.captionCleanup,
      signal: r.signal,
      // A document here is a collection item, named by its id (its place in the request means nothing).
      documentLabel: (i) => ({ label: `collection item ${JSON.stringify(candidates[i]!.id)}` }),
    });
    usage.pairs += candidates.length;
    if (info.modality === 'image') usage.images += candidates.length;
    else usage.texts += candidates.length;
    return scores
      .map((s): SearchHit => {
        const h = candidates[s.index]!;
        return {
          id: h.id,
          score: s.itm_logits[1]!,
          itc: h.score,
          itm_logits: s.itm_logits,
          itm_prob: s.relevance_score,
        };
      })
      .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** A candidate as the matcher takes it: a text, or the image from its source. */
  private async document(info: CollectionSpec, h: Hit): Promise<MatchItem> {
    if (info.modality === 'text') return { text: h.source };
    if (isUrl(h.source)) return { image: { url: h.source } };
    if (!info.root)
      throw new AppError(
        'source_unavailable',
        `collection item ${JSON.stringify(h.id)}: no root to find ${h.source} under`,
      );
    try {
      return { image: { bytes: await readFile(await realImagePath(info.root, h.source)) } };
    } catch (e) {
      if (e instanceof AppError) throw e;
      throw new AppError(
        'source_unavailable',
        `collection item ${JSON.stringify(h.id)}: cannot read ${h.source} under ${info.root} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); reindex it or restore the file`,
      );
    }
  }

  private withFields(res: SearchHit, hit: Hit, r: SearchRequest): SearchHit {
    return {
      ...res,
      ...(r.include.includes('source') ? { source: hit.source } : {}),
      ...(r.include.includes('metadata') && hit.metadata ? { metadata: hit.metadata } : {}),
    };
  }
}
