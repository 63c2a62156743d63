// The bert-base-uncased WordPiece vocabulary ALBEF uses, shipped with the package and checked by hash.

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ASSETS_DIR } from '../core/paths.js';

export const VOCAB_FILE = join(ASSETS_DIR, 'bert-base-uncased-vocab.txt');
export const VOCAB_SHA256 = '07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3';
export const VOCAB_SIZE = 30522;

/** The shipped vocabulary, after checking it is the one ALBEF was trained with. */
export async function readBundledVocab(): Promise<Buffer> {
  const data = await readFile(VOCAB_FILE);
  const sha = createHash('sha256').update(data).digest('hex');
  if (sha !== VOCAB_SHA256) throw new Error(`${VOCAB_FILE} is damaged: sha256 ${sha}, expected ${VOCAB_SHA256}`);
  return data;
}
