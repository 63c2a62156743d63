// The work directory of a retrieval evaluation, so that an interrupted run resumes where it stopped:
// the plan it belongs to, the texts' states (written once, whole), the images' states (fixed-size
// records appended in order), and the ITM match logits of each image's pairs (records appended per
// image). A record cut short by an interruption is dropped when the directory is opened again, so
// nothing already written is lost and nothing half-written is read.

import { createHash } from 'node:crypto';
import { open, mkdir, readFile, rename, stat, truncate, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../core/errors.js';

/** What the work in a directory was computed for: a directory is only resumed for the same plan. */
export interface EvalPlan {
  format: 'albef-embed/eval-work@1';
  model: string;
  /** The model's identity: its checkpoint's sha256, precision and serving resolution. */
  modelId: string;
  /** sha256 of the annotation file's bytes. */
  annotations: string;
  kTest: number;
  images: number;
  texts: number;
  /** Floats per image record: the embedding, then every image token. */
  imageFloats: number;
  embedDim: number;
  textDim: number;
}

/** A text's states as the fusion graph takes them: `length` tokens × textDim, and its embedding. */
export interface StoredText {
  length: number;
  tokens: Float32Array;
  embedding: Float32Array;
}

export const sha256Hex = (bytes: Uint8Array | string): string => createHash('sha256').update(bytes).digest('hex');

export class EvalWork {
  private constructor(
    readonly dir: string,
    readonly plan: EvalPlan,
  ) {}

  /** Opens (or starts) the work of `plan` in `dir`; a directory holding another plan's work is refused. */
  static async open(dir: string, plan: EvalPlan): Promise<EvalWork> {
    await mkdir(dir, { recursive: true });
    const file = join(dir, 'plan.json');
    const existing = await readFile(file, 'utf8').then(
      (t) => JSON.parse(t) as EvalPlan,
      (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return undefined;
        throw e;
      },
    );
    if (existing && JSON.stringify(existing) !== JSON.stringify(plan)) {
      const differs = (Object.keys(plan) as (keyof EvalPlan)[]).filter((k) => existing[k] !== plan[k]);
      throw new UsageError(
        `${dir} holds the work of another evaluation (its ${differs.join(', ')} differ): remove it, or give another --work`,
      );
    }
    if (!existing) await writeAtomically(file, JSON.stringify(plan, null, 1));
    return new EvalWork(dir, plan);
  }

  // ---- texts: written once, whole ----

  private get textsFile(): string {
    return join(this.dir, 'texts.bin');
  }

  /** The texts' states, when a run got that far. Layout per text: int32 length, embedding, tokens. */
  async readTexts(): Promise<StoredText[] | undefined> {
    const bytes = await readFile(this.textsFile).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw e;
    });
    if (!bytes) return undefined;
    const { embedDim, textDim } = this.plan;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out: StoredText[] = [];
    let at = 0;
    for (let t = 0; t < this.plan.texts; t++) {
      const length = view.getInt32(at, true);
      at += 4;
      const embedding = floats(bytes, at, embedDim);
      at += embedDim * 4;
      const tokens = floats(bytes, at, length * textDim);
      at += length * textDim * 4;
      out.push({ length, tokens, embedding });
    }
    if (at !== bytes.length) throw new Error(`${this.textsFile} is not what this plan writes; remove ${this.dir}`);
    return out;
  }

  async writeTexts(texts: StoredText[]): Promise<void> {
    const parts: Uint8Array[] = [];
    for (const t of texts) {
      const head = new Uint8Array(4);
      new DataView(head.buffer).setInt32(0, t.length, true);
      parts.push(head, bytesOf(t.embedding), bytesOf(t.tokens));
    }
    await writeAtomically(this.textsFile, Buffer.concat(parts));
  }

  // ---- images: fixed-size records, appended in order ----

  private get imagesFile(): string {
    return join(this.dir, 'images.bin');
  }

  private get imageBytes(): number {
    return this.plan.imageFloats * 4;
  }

  /** How many images have their states written; a torn last record is cut off. */
  async imagesDone(): Promise<number> {
    const size = await fileSize(this.imagesFile);
    const done = Math.floor(size / this.imageBytes);
    if (done * this.imageBytes !== size) await truncate(this.imagesFile, done * this.imageBytes);
    return done;
  }

  /** Appends the next images' records (each the embedding, then every token). */
  async appendImages(records: Float32Array[]): Promise<void> {
    await appendAll(this.imagesFile, records.map(bytesOf));
  }

  /** Every image's embedding (the first embedDim floats of each record). */
  async imageEmbeddings(): Promise<Float32Array> {
    const { embedDim, images } = this.plan;
    const out = new Float32Array(images * embedDim);
    const fh = await open(this.imagesFile, 'r');
    try {
      const buf = new Uint8Array(embedDim * 4);
      for (let i = 0; i < images; i++) {
        await readExactly(fh, buf, i * this.imageBytes);
        out.set(floats(buf, 0, embedDim), i * embedDim);
      }
    } finally {
      await fh.close();
    }
    return out;
  }

  /** Reads image `index`'s tokens (without its embedding) into `into`. */
  async readImageTokens(fh: FileHandle, index: number, into: Float32Array): Promise<void> {
    const offset = index * this.imageBytes + this.plan.embedDim * 4;
    await readExactly(fh, new Uint8Array(into.buffer, into.byteOffset, into.byteLength), offset);
  }

  openImages(): Promise<FileHandle> {
    return open(this.imagesFile, 'r');
  }

  // ---- ITM logits: one record per image, appended as each image's pairs are done ----

  private get itmFile(): string {
    return join(this.dir, 'itm.bin');
  }

  /**
   * The match logits computed so far, by image: its texts and their logits. Layout per record: int32
   * image, int32 n, n × int32 text, n × float32 logit. A torn last record is cut off.
   */
  async readItm(): Promise<Map<number, { texts: Int32Array; logits: Float32Array }>> {
    const out = new Map<number, { texts: Int32Array; logits: Float32Array }>();
    const bytes = await readFile(this.itmFile).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return new Uint8Array(0);
      throw e;
    });
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let at = 0;
    while (at + 8 <= bytes.length) {
      const image = view.getInt32(at, true);
      const n = view.getInt32(at + 4, true);
      const end = at + 8 + n * 8;
      if (end > bytes.length) break;
      const texts = new Int32Array(n);
      const logits = new Float32Array(n);
      for (let j = 0; j < n; j++) {
        texts[j] = view.getInt32(at + 8 + 4 * j, true);
        logits[j] = view.getFloat32(at + 8 + 4 * n + 4 * j, true);
      }
      out.set(image, { texts, logits });
      at = end;
    }
    if (at !== bytes.length) await truncate(this.itmFile, at);
    return out;
  }

  async appendItm(image: number, texts: Int32Array, logits: Float32Array): Promise<void> {
    const head = new Int32Array([image, texts.length]);
    await appendAll(this.itmFile, [bytesOf(head), bytesOf(texts), bytesOf(logits)]);
  }
}

const bytesOf = (a: Float32Array | Int32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** `n` little-endian float32 from `bytes` at `at` (copied: the source may be unaligned). */
function floats(bytes: Uint8Array, at: number, n: number): Float32Array {
  const out = new Float32Array(n);
  new Uint8Array(out.buffer).set(bytes.subarray(at, at + n * 4));
  return out;
}

async function fileSize(path: string): Promise<number> {
  return stat(path).then(
    (s) => s.size,
    (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return 0;
      throw e;
    },
  );
}

async function readExactly(fh: FileHandle, into: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await fh.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) throw new Error(`unexpected end of the work file at byte ${position + done}`);
    done += bytesRead;
  }
}

/** Appends the parts as one write, so a record is whole or (if the process dies mid-write) torn at the end. */
async function appendAll(path: string, parts: Uint8Array[]): Promise<void> {
  const fh = await open(path, 'a');
  try {
    await fh.write(Buffer.concat(parts));
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

async function writeAtomically(path: string, data: string | Uint8Array): Promise<void> {
  await writeFile(`${path}.tmp`, data);
  await rename(`${path}.tmp`, path);
}
