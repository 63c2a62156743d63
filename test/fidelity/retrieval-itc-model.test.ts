// The first stage of ALBEF's retrieval evaluation end to end on the tiny model: ann.json read and its
// images resolved under their root, every image and caption embedded by the service (converted from
// the fixture checkpoint, 96 px), then the blocked pass over the vectors gives the official cosines,
// the official top-k candidate sets and recall_itc, identical.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { FIXTURES } from '../../kit/golden.js';
import { cleanupTinyModel, postJson, startServer } from '../../kit/server.js';
import { readAnnotations, resolveImagePaths } from '../../src/retrieval/annotations.js';
import { itcStage, similarityMatrix, type TopK, type Vectors } from '../../src/retrieval/candidates.js';
import type { Recall } from '../../src/retrieval/recall.js';

const DIR = join(FIXTURES, 'retrieval');
const g = JSON.parse(await readFile(join(DIR, 'retrieval_golden_albef-tiny-a.json'), 'utf8')) as {
  k_test: number;
  itc: number[][];
  i2t_topk: number[][];
  t2i_topk: number[][];
  recall_itc: Recall;
};

const server = await startServer();
t.teardown(async () => {
  await server.close();
  await cleanupTinyModel();
});

const vectors = (rows: number[][]): Vectors => ({
  data: Float32Array.from(rows.flat()),
  count: rows.length,
  dim: rows[0]!.length,
});
const sets = (tk: TopK): number[][] =>
  Array.from({ length: tk.count }, (_, q) =>
    Array.from(tk.index.subarray(q * tk.k, (q + 1) * tk.k)).sort((a, b) => a - b),
  );

t.test('ann.json → embeddings → blocked ITC stage = the official evaluation()', async (t) => {
  const ann = await readAnnotations(join(DIR, 'ann.json'));
  const files = await Promise.all(resolveImagePaths(DIR, ann.images).map((f) => readFile(f)));
  const img = await postJson(`${server.url}/embed/image`, { images: files.map((b) => b.toString('base64')) });
  t.equal(img.status, 200);
  // The texts are already cleaned up; the service's clean-up leaves them as they are.
  const txt = await postJson(`${server.url}/embed/text`, { texts: ann.texts });
  t.equal(txt.status, 200);
  const images = vectors(img.json.embeddings);
  const texts = vectors(txt.json.embeddings);

  const sim = similarityMatrix(images, texts);
  let maxAbs = 0;
  g.itc.forEach((row, i) =>
    row.forEach((v, q) => (maxAbs = Math.max(maxAbs, Math.abs(v - sim[i * texts.count + q]!)))),
  );
  t.ok(maxAbs <= 1e-5, `cosines within 1e-5 of the official sims_matrix (max |Δ| ${maxAbs.toExponential(2)})`);

  for (const block of [1, 5, 64]) {
    const stage = itcStage(images, texts, {
      k: g.k_test,
      txt2img: ann.txt2img,
      img2txt: ann.img2txt,
      blockImages: block,
    });
    t.same(sets(stage.i2t), g.i2t_topk, `block ${block}: image→text candidates`);
    t.same(sets(stage.t2i), g.t2i_topk, `block ${block}: text→image candidates`);
    t.strictSame(stage.recall, g.recall_itc, `block ${block}: recall_itc, identical`);
  }
});
