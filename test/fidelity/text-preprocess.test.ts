// Caption clean-up and tokenization against golden.json: the exact input string and token ids of
// every reference text, with clean-up on and off.

import { readFileSync } from 'node:fs';
import t from 'tap';
import { VOCAB_FILE } from '../../src/convert/vocab.js';
import { preCaption } from '../../src/inference/caption.js';
import { WordPieceTokenizer } from '../../src/inference/tokenizer.js';
import { golden } from '../../kit/golden.js';

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

t.test('character classes on both sides of ASCII (code-point checks there, Unicode properties beyond)', async (t) => {
  const same = (a: string, b: string, what: string) => t.same(tok.encode(a, 30).ids, tok.encode(b, 30).ids, what);
  same('dog\u0001s\u007f run', 'dogs run', 'ASCII control characters dropped');
  same('dog\vs\fx', 'dogsx', 'vertical tab and form feed are controls (Cc), not whitespace');
  same('red\tdog\nran\rfast', 'red dog ran fast', 'tab, newline and carriage return are whitespace');
  same('red\u00a0dog\u3000ran', 'red dog ran', 'no-break and ideographic spaces (Zs) are whitespace');
  same('red\u200bdog\u00ad', 'reddog', 'zero-width space and soft hyphen (Cf) dropped');
  same('red¡dog«ran»', 'red ¡ dog « ran »', 'non-ASCII punctuation splits words');
  same('DOG-Run!', 'dog - run !', 'ASCII punctuation splits words, upper case folds');
  same('Crème', 'creme', 'accents stripped after lower-casing');
  t.not(
    tok.encode('é'.repeat(51), 30).ids[1],
    100,
    '51 accented letters are 51 code points after NFD stripping, not [UNK]',
  );
});
