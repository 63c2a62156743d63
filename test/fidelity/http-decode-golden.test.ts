// End to end over real HTTP: the reference CMYK JPEGs and BMPs (decode_golden.json) give the
// embeddings the official ALBEF path (PIL decode) gives, through every input form.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { cosine, DECODE_DIR, TOL } from '../../kit/golden.js';
import { cleanupTinyModel, postJson, startServer, startStaticServer } from '../../kit/server.js';

interface Case {
  file: string;
  pil_mode: string;
  embedding: number[];
}
const { cases } = JSON.parse(await readFile(join(DECODE_DIR, 'decode_golden.json'), 'utf8')) as { cases: Case[] };
const bytes = new Map<string, Buffer>();
for (const c of cases) bytes.set(c.file, await readFile(join(DECODE_DIR, c.file)));
const mime = (f: string): string => (f.endsWith('.bmp') ? 'image/bmp' : 'image/jpeg');

const server = await startServer({ allowPrivateUrls: true });
const files = await startStaticServer(DECODE_DIR);
t.teardown(async () => {
  await server.close();
  await files.close();
  await cleanupTinyModel();
});

function check(t: Test, embeddings: number[][], label: string): void {
  t.equal(embeddings.length, cases.length, `${label}: one vector per file`);
  cases.forEach((c, i) => {
    const cos = cosine(embeddings[i]!, c.embedding);
    t.ok(cos >= TOL.imageCos, `${label} ${c.file} (PIL mode ${c.pil_mode}): cosine ${cos.toFixed(7)}`);
  });
}

t.test('multipart', async (t) => {
  const form = new FormData();
  for (const c of cases) form.append('file', new Blob([bytes.get(c.file)!], { type: mime(c.file) }), c.file);
  const res = await fetch(`${server.url}/embed/image`, { method: 'POST', body: form });
  t.equal(res.status, 200);
  check(t, ((await res.json()) as { embeddings: number[][] }).embeddings, 'multipart');
});

t.test('JSON base64', async (t) => {
  const res = await postJson(`${server.url}/embed/image`, {
    images: cases.map((c) => bytes.get(c.file)!.toString('base64')),
  });
  t.equal(res.status, 200, JSON.stringify(res.json).slice(0, 200));
  check(t, res.json.embeddings, 'base64');
});

t.test('URLs from a local static server', async (t) => {
  const res = await postJson(`${server.url}/embed/image`, { urls: cases.map((c) => `${files.url}/${c.file}`) });
  t.equal(res.status, 200, JSON.stringify(res.json).slice(0, 200));
  check(t, res.json.embeddings, 'url');
});

t.test('raw image body, one request per file', async (t) => {
  const embeddings: number[][] = [];
  for (const c of cases) {
    const res = await fetch(`${server.url}/embed/image`, {
      method: 'POST',
      headers: { 'content-type': mime(c.file) },
      body: bytes.get(c.file)!,
    });
    t.equal(res.status, 200, c.file);
    embeddings.push(((await res.json()) as { embeddings: number[][] }).embeddings[0]!);
  }
  check(t, embeddings, 'raw body');
});
