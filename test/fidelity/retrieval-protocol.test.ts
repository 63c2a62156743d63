// ALBEF's retrieval evaluation protocol against the output of the official Retrieval.py
// (`evaluation()` and `itm_eval()` on albef-tiny-a, k_test 12): the annotations as `re_eval_dataset`
// reads them, the top-k candidates from the golden cosines, and both recall tables, identical.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { FIXTURES } from '../../kit/golden.js';
import { readAnnotations, resolveImagePaths } from '../../src/retrieval/annotations.js';
import { scoreMatrix, topKColumns, topKRows, type TopK } from '../../src/retrieval/candidates.js';
import { itmEval, itmEvalCandidates, type Recall } from '../../src/retrieval/recall.js';

const DIR = join(FIXTURES, 'retrieval');
interface RetrievalGolden {
  k_test: number;
  images: string[];
  texts: string[];
  txt2img: number[];
  img2txt: number[][];
  itc: number[][];
  i2t_topk: number[][];
  t2i_topk: number[][];
  i2t_itm: number[][];
  t2i_itm: number[][];
  recall_itm: Recall;
  recall_itc: Recall;
}
const g = JSON.parse(readFileSync(join(DIR, 'retrieval_golden_albef-tiny-a.json'), 'utf8')) as RetrievalGolden;
const nI = g.images.length;
const nT = g.texts.length;
const itcT = g.itc[0]!.map((_, q) => g.itc.map((row) => row[q]!));

const sets = (tk: TopK): number[][] =>
  Array.from({ length: tk.count }, (_, q) =>
    Array.from(tk.index.subarray(q * tk.k, (q + 1) * tk.k)).sort((a, b) => a - b),
  );

t.test('ann.json read as re_eval_dataset reads it', async (t) => {
  const ann = await readAnnotations(join(DIR, 'ann.json'));
  t.same(ann.images, g.images, 'images, in file order');
  t.same(ann.texts, g.texts, 'texts after pre_caption, image by image');
  t.same(ann.txt2img, g.txt2img);
  t.same(ann.img2txt, g.img2txt);
  const raw = JSON.parse(readFileSync(join(DIR, 'ann.json'), 'utf8')) as { caption: string[] }[];
  t.same(
    ann.rawTexts,
    raw.flatMap((e) => e.caption),
    'raw captions kept',
  );
  t.same(
    resolveImagePaths(DIR, ann.images),
    g.images.map((f) => join(DIR, f)),
    'image files under the root',
  );
});

t.test('itm_eval on the golden cosines gives recall_itc exactly', async (t) => {
  const r = itmEval(g.itc, itcT, g.txt2img, g.img2txt);
  for (const [key, want] of Object.entries(g.recall_itc)) t.equal(r[key as keyof Recall], want, key);
  t.same(Object.keys(r), Object.keys(g.recall_itc), "itm_eval's keys, in its order");
});

t.test('top-k of the golden cosines: the golden candidate sets', async (t) => {
  const sim = Float32Array.from(g.itc.flat());
  const i2t = topKRows(sim, nI, nT, g.k_test);
  const t2i = topKColumns(sim, nI, nT, g.k_test);
  t.same(sets(i2t), g.i2t_topk, 'image→text');
  t.same(sets(t2i), g.t2i_topk, 'text→image');
  // Best first, as torch.topk(sorted=True) returns them.
  let sorted = true;
  for (let q = 0; q < i2t.count; q++) {
    for (let j = 1; j < i2t.k; j++) if (i2t.score[q * i2t.k + j - 1]! < i2t.score[q * i2t.k + j]!) sorted = false;
  }
  t.ok(sorted, 'scores descending within each query');
});

t.test('score matrices from the golden candidates and ITM logits give recall_itm exactly', async (t) => {
  const i2t = { count: nI, k: g.k_test, index: g.i2t_topk.flat() };
  const t2i = { count: nT, k: g.k_test, index: g.t2i_topk.flat() };
  const i2tItm = g.i2t_itm.flat();
  const t2iItm = g.t2i_itm.flat();
  const dense = itmEval(
    { data: scoreMatrix(i2t, i2tItm, nT), rows: nI, cols: nT },
    { data: scoreMatrix(t2i, t2iItm, nI), rows: nT, cols: nI },
    g.txt2img,
    g.img2txt,
  );
  const sparse = itmEvalCandidates(i2t, i2tItm, t2i, t2iItm, g.txt2img, g.img2txt);
  for (const [key, want] of Object.entries(g.recall_itm)) {
    t.equal(dense[key as keyof Recall], want, `${key} from the −100-filled matrices`);
    t.equal(sparse[key as keyof Recall], want, `${key} from the candidates alone`);
  }
});
