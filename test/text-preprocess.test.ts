// Caption clean-up and tokenization against golden.json: the exact input string and token ids of
// every reference text, with clean-up on and off.

import { readFileSync } from 'node:fs';
import t from 'tap';
import { VOCAB_FILE } from '../src/convert/vocab.js';
import { preCaption } from '../src/inference/caption.js';
import { WordPieceTokenizer } from '../src/inference/tokenizer.js';
import { golden } from './helpers/golden.js';

const tok = new WordPieceTokenizer(readFileSync(VOCAB_FILE, 'utf8'));

t.equal(tok.size, 30522);
for (const g of golden.texts) {
  t.test(JSON.stringify(g.text).slice(0, 50), async (t) => {
    t.equal(preCaption(g.text, 30), g.pre_caption.input, 'pre_caption output');
    t.same(tok.encode(g.pre_caption.input, 30).ids, g.pre_caption.ids, 'ids with clean-up');
    t.same(tok.encode(g.raw.input, 30).ids, g.raw.ids, 'ids without clean-up');
  });
}

t.test('edge cases', async (t) => {
  t.same(tok.encode('', 30).ids, [101], 'empty text is [CLS] alone');
  t.same(tok.encode('a'.repeat(101), 30).ids, [101, 100], 'words over 100 chars are [UNK]');
  t.equal(tok.encode('word '.repeat(100), 30).ids.length, 30, 'truncated to max_length');
  t.ok(tok.encode('word '.repeat(100), 30).truncated);
  t.same(tok.encode('a\u0000b\ufffdc', 30).ids, tok.encode('abc', 30).ids, 'NUL and U+FFFD dropped');
  t.equal(preCaption('a\u001c\u001c b', 30), 'a b', 'Python whitespace set (U+001C) collapses');
  t.equal(preCaption('a\ufeff\ufeffb', 30), 'a\ufeff\ufeffb', 'U+FEFF is not Python whitespace');
  t.equal(preCaption('one two three', 2), 'one two');
});
