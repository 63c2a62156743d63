// Collections on the full-size model: indexing images and texts against the raw towers' ceilings at
// their best batch; search with the ITM re-rank of the top K (8, 16, 32), text→image and image→text,
// cold (candidates' images not in the state cache / a new query image) and warm (the same again),
// over HTTP; and what storing every image token instead of recomputing it would cost per image.

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { Metrics } from '../src/core/metrics.js';
import type { ModelManifest } from '../src/core/model-manifest.js';
import { openStore } from '../src/retrieval/open-store.js';
import { buildApp } from '../src/http/app.js';
import { resolveConfig } from '../src/service/config.js';
import { DEFAULT_BATCH, indexItems, type IndexItem } from '../src/service/indexer.js';
import { Service } from '../src/service/service.js';
import { CAPTIONS, rawImageTower, rawTextTower } from './ceiling.js';
import { median, round } from './stats.js';

export interface RetrievalBench {
  indexing: {
    images: { count: number; perSecond: number; ceiling: number; ofCeiling: number };
    texts: { count: number; perSecond: number; ceiling: number; ofCeiling: number };
  };
  /** p50 ms per search request over HTTP (LanceDB, exact search), each K. */
  rerank: { direction: 'text→image' | 'image→text'; k: number; coldMs: number; warmMs: number; itcOnlyMs: number }[];
  tokens: {
    bytesPerImageFp32: number;
    bytesPerImageFp16: number;
    imageStatesMsPerImage: number;
    readMsPerImage: number;
  };
}

/** Distinct captions to index: the bench's captions, each with a place number. */
const textSources = (n: number): string[] =>
  Array.from({ length: n }, (_, i) => `${CAPTIONS[i % CAPTIONS.length]} seen from place ${i}`);

async function images(photo: Buffer, n: number, dir: string): Promise<IndexItem[]> {
  const meta = await sharp(photo).metadata();
  const out: IndexItem[] = [];
  for (let i = 0; i < n; i++) {
    const file = join(dir, `p${String(i).padStart(4, '0')}.jpg`);
    await sharp(photo)
      .extract({ left: (i * 13) % 200, top: (i * 7) % 150, width: meta.width - 200, height: meta.height - 150 })
      .resize(640, 480, { fit: 'fill' })
      .modulate({ hue: (i * 37) % 360 })
      .jpeg({ quality: 90 })
      .toFile(file);
    out.push({ id: `p${i}`, source: `p${String(i).padStart(4, '0')}.jpg`, file });
  }
  return out;
}

export async function benchRetrieval(
  dir: string,
  manifest: ModelManifest,
  photo: Buffer,
  tokenize: (s: string) => number[],
  o: { images: number; texts: number; queries: number; seconds: number; log: (m: string) => void },
): Promise<RetrievalBench> {
  const work = await mkdtemp(join(tmpdir(), 'albef-bench-retrieval-'));
  try {
    o.log(`retrieval: ceilings (raw towers at their best batch)`);
    const rawImage = await rawImageTower(dir, manifest.image_res);
    // One batch size at a time: measurements that share the session would each see it half busy.
    let imageCeiling = 0;
    for (const b of [1, 2, 4])
      imageCeiling = Math.max(imageCeiling, (await rawImage.measure(b, o.seconds)).itemsPerSecond);
    await rawImage.release();
    // The ceiling on the very texts indexed below: their length sets the cost of a batch.
    const rawText = await rawTextTower(dir, tokenize, 1, 'cpu', textSources(o.texts));
    let textCeiling = 0;
    for (const b of [32, 64, 128])
      textCeiling = Math.max(textCeiling, (await rawText.measure(b, o.seconds / 2)).itemsPerSecond);
    await rawText.release();

    const photos = join(work, 'photos');
    await (await import('node:fs/promises')).mkdir(photos);
    const imageItems = await images(photo, o.images, photos);
    const textItems: IndexItem[] = textSources(o.texts).map((source, i) => ({ id: `t${i}`, source }));
    const storeDir = join(work, 'store');
    // As `albef-embed index` runs it: no matching graphs, limits that fit its batches.
    const service = new Service(
      resolveConfig({
        models: [dir],
        warmup: true,
        fusion: false,
        store: '',
        maxItems: DEFAULT_BATCH.text,
        maxQueueTexts: 1024,
      }),
      new Metrics(),
    );
    await service.start();
    const embedder = service.requireEmbedder();
    const model = embedder.model();
    const store = await openStore(storeDir);
    o.log(`retrieval: indexing ${o.images} images and ${o.texts} texts`);
    let t0 = performance.now();
    await indexItems(embedder, model, store, imageItems, {
      collection: 'pics',
      modality: 'image',
      root: photos,
      batch: DEFAULT_BATCH.image,
      captionCleanup: true,
    });
    const imagesPerSecond = o.images / ((performance.now() - t0) / 1000);
    t0 = performance.now();
    await indexItems(embedder, model, store, textItems, {
      collection: 'caps',
      modality: 'text',
      batch: DEFAULT_BATCH.text,
      captionCleanup: true,
    });
    const textsPerSecond = o.texts / ((performance.now() - t0) / 1000);
    await store.close();
    await service.close();

    o.log(`retrieval: search over HTTP with re-rank`);
    const app = await buildApp(
      resolveConfig({
        models: [dir],
        store: storeDir,
        logLevel: 'silent',
        stateCacheImages: 64,
        requestTimeoutMs: 600_000,
      }),
      { logger: false },
    );
    await app.listen({ host: '127.0.0.1', port: 0 });
    await app.service.start();
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/v1/search`;
    const ask = async (body: object): Promise<number> => {
      const s = performance.now();
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (res.status !== 200) throw new Error(`search answered ${res.status}: ${await res.text()}`);
      await res.arrayBuffer();
      return performance.now() - s;
    };
    const rerank: RetrievalBench['rerank'] = [];
    const queryImage = async (i: number) =>
      (await readFile(imageItems[i % imageItems.length]!.file!)).toString('base64');
    for (const k of [8, 16, 32]) {
      // Text → image: a new text each time ranks other images first; cold = the state cache emptied.
      const cold: number[] = [];
      const warm: number[] = [];
      const itc: number[] = [];
      for (let q = 0; q < o.queries; q++) {
        const query = `${CAPTIONS[q % CAPTIONS.length]} variant ${q} at k ${k}`;
        app.service.pool!.get().matching!.cache.clear();
        cold.push(await ask({ collection: 'pics', query, rerank: k, top_k: k }));
        warm.push(await ask({ collection: 'pics', query, rerank: k, top_k: k }));
        itc.push(await ask({ collection: 'pics', query, top_k: k }));
      }
      rerank.push({
        direction: 'text→image',
        k,
        coldMs: round(median(cold), 1),
        warmMs: round(median(warm), 1),
        itcOnlyMs: round(median(itc), 1),
      });
      const icold: number[] = [];
      const iwarm: number[] = [];
      const iitc: number[] = [];
      for (let q = 0; q < o.queries; q++) {
        const image = await queryImage(q + k);
        app.service.pool!.get().matching!.cache.clear();
        icold.push(await ask({ collection: 'caps', query: { image }, rerank: k, top_k: k }));
        iwarm.push(await ask({ collection: 'caps', query: { image }, rerank: k, top_k: k }));
        iitc.push(await ask({ collection: 'caps', query: { image }, top_k: k }));
      }
      rerank.push({
        direction: 'image→text',
        k,
        coldMs: round(median(icold), 1),
        warmMs: round(median(iwarm), 1),
        itcOnlyMs: round(median(iitc), 1),
      });
      o.log(
        `retrieval: k ${k}: text→image cold ${rerank.at(-2)!.coldMs} ms warm ${rerank.at(-2)!.warmMs} ms; image→text cold ${rerank.at(-1)!.coldMs} ms`,
      );
    }
    await app.close();

    // Storing the tokens instead: what one image's states weigh, and reading them back against running the graph.
    const { vision } = manifest.architecture;
    const tokens = (manifest.image_res / vision.patch) ** 2 + 1;
    const bytes = tokens * vision.dim * 4;
    const blob = join(work, 'tokens.bin');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(blob, Buffer.alloc(bytes * 16, 1));
    const reads: number[] = [];
    for (let r = 0; r < 5; r++) {
      const s = performance.now();
      await readFile(blob);
      reads.push((performance.now() - s) / 16);
    }
    const svc = new Service(resolveConfig({ models: [dir], warmup: true, store: '' }), new Metrics());
    await svc.start();
    const towers = svc.requireEmbedder().model().matching!;
    const rgb = new Uint8Array(3 * manifest.image_res ** 2).fill(128);
    const runs: number[] = [];
    for (let r = 0; r < 4; r++) {
      const s = performance.now();
      await towers.runImages([rgb.slice()]);
      runs.push(performance.now() - s);
    }
    await svc.close();
    return {
      indexing: {
        images: {
          count: o.images,
          perSecond: round(imagesPerSecond, 2),
          ceiling: imageCeiling,
          ofCeiling: round(imagesPerSecond / imageCeiling, 3),
        },
        texts: {
          count: o.texts,
          perSecond: round(textsPerSecond, 1),
          ceiling: textCeiling,
          ofCeiling: round(textsPerSecond / textCeiling, 3),
        },
      },
      rerank,
      tokens: {
        bytesPerImageFp32: bytes,
        bytesPerImageFp16: bytes / 2,
        imageStatesMsPerImage: round(median(runs), 1),
        readMsPerImage: round(median(reads), 2),
      },
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export function retrievalTable(rows: { precision: string; bench: RetrievalBench }[]): string {
  const out = [
    '| precision | indexing images/s (of ceiling) | indexing texts/s (of ceiling) | re-rank | K | cold p50 (ms) | warm p50 (ms) | ITC only p50 (ms) |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const { precision, bench } of rows) {
    const { images, texts } = bench.indexing;
    bench.rerank.forEach((r, i) =>
      out.push(
        `| ${i === 0 ? precision : ''} | ${i === 0 ? `${images.perSecond} (${Math.round(images.ofCeiling * 1000) / 10} %)` : ''} | ${i === 0 ? `${texts.perSecond} (${Math.round(texts.ofCeiling * 1000) / 10} %)` : ''} | ${r.direction} | ${r.k} | ${r.coldMs} | ${r.warmMs} | ${r.itcOnlyMs} |`,
      ),
    );
  }
  return out.join('\n');
}
