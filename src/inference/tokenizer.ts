// bert-base-uncased WordPiece as ALBEF's own tokenizer applies it (its models/tokenization_bert.py
// with transformers' special-token handling): special tokens kept whole (case-sensitive), then
// clean-up of control characters, lowercasing, accent stripping, splitting on whitespace,
// punctuation and CJK characters, and greedy longest-match WordPiece. Ids are [CLS] + pieces with no
// [SEP], truncated to maxLength. Written here because the JS tokenizer libraries load HF tokenizer.json
// files and add [SEP]; this needs only vocab.txt and ALBEF's exact behaviour.

const SPECIAL = ['[UNK]', '[SEP]', '[PAD]', '[CLS]', '[MASK]'];
const SPECIAL_SPLIT = /(\[UNK\]|\[SEP\]|\[PAD\]|\[CLS\]|\[MASK\])/;
const MAX_CHARS_PER_WORD = 100;

// Character classes: ASCII answered by code point, the rest by Unicode property (regex tests cost
// about as much as the whole WordPiece lookup when run on every letter).
const isWhitespace = (ch: string, cp: number): boolean =>
  cp === 32 || cp === 9 || cp === 10 || cp === 13 || (cp > 127 && /\p{Zs}/u.test(ch));
const isControl = (ch: string, cp: number): boolean =>
  cp < 128 ? (cp < 32 || cp === 127) && cp !== 9 && cp !== 10 && cp !== 13 : /[\p{Cc}\p{Cf}]/u.test(ch);
function isPunctuation(ch: string): boolean {
  const cp = ch.codePointAt(0)!;
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126))
    return true;
  return cp > 127 && /\p{P}/u.test(ch);
}
// eslint-disable-next-line no-control-regex -- every ASCII code, control characters included
const ASCII = /^[\x00-\x7f]*$/;
function isCjk(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

export interface Tokenized {
  ids: number[];
  /** true when the text had more pieces than max_length - 1 */
  truncated: boolean;
}

export class WordPieceTokenizer {
  private readonly vocab: Map<string, number>;
  readonly clsId: number;
  readonly unkId: number;
  readonly padId: number;

  constructor(vocabText: string) {
    const lines = vocabText.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    this.vocab = new Map(lines.map((tok, i) => [tok.replace(/\r$/, ''), i]));
    const id = (t: string): number => {
      const v = this.vocab.get(t);
      if (v === undefined) throw new Error(`vocabulary has no ${t}`);
      return v;
    };
    this.clsId = id('[CLS]');
    this.unkId = id('[UNK]');
    this.padId = id('[PAD]');
  }

  get size(): number {
    return this.vocab.size;
  }

  /** WordPiece tokens of `text` (no special tokens added). */
  tokenize(text: string): string[] {
    const out: string[] = [];
    for (const part of text.split(SPECIAL_SPLIT)) {
      if (SPECIAL.includes(part)) out.push(part);
      else if (part) for (const word of this.basicTokens(part)) out.push(...this.wordPiece(word));
    }
    return out;
  }

  /** [CLS] + pieces, truncated to maxLength ids. */
  encode(text: string, maxLength: number): Tokenized {
    const pieces = this.tokenize(text);
    const ids = [this.clsId];
    for (const p of pieces) {
      if (ids.length >= maxLength) break;
      ids.push(this.vocab.get(p) ?? this.unkId);
    }
    return { ids, truncated: pieces.length + 1 > maxLength };
  }

  private basicTokens(text: string): string[] {
    // clean: drop NUL, U+FFFD and control characters; whitespace → space; CJK characters spaced apart
    let cleaned = '';
    for (const ch of text) {
      const cp = ch.codePointAt(0)!;
      if (cp === 0 || cp === 0xfffd || isControl(ch, cp)) continue;
      if (isWhitespace(ch, cp)) cleaned += ' ';
      else if (isCjk(cp)) cleaned += ` ${ch} `;
      else cleaned += ch;
    }
    const words: string[] = [];
    for (const token of cleaned.split(' ')) {
      if (!token) continue;
      // Accent stripping (NFD, drop combining marks) changes nothing in ASCII.
      const lower = token.toLowerCase();
      const normalized = ASCII.test(lower) ? lower : lower.normalize('NFD').replace(/\p{Mn}/gu, '');
      let current = '';
      for (const ch of normalized) {
        if (isPunctuation(ch)) {
          if (current) words.push(current);
          words.push(ch);
          current = '';
        } else current += ch;
      }
      if (current) words.push(current);
    }
    return words;
  }

  private wordPiece(word: string): string[] {
    // Greedy matching walks code points; without surrogate pairs those are the string's own indices.
    const chars = /[\ud800-\udfff]/.test(word) ? Array.from(word) : word;
    const span = (from: number, to: number): string =>
      typeof chars === 'string' ? chars.slice(from, to) : chars.slice(from, to).join('');
    if (chars.length > MAX_CHARS_PER_WORD) return ['[UNK]'];
    const pieces: string[] = [];
    let start = 0;
    while (start < chars.length) {
      let end = chars.length;
      let found: string | undefined;
      while (start < end) {
        const sub = (start > 0 ? '##' : '') + span(start, end);
        if (this.vocab.has(sub)) {
          found = sub;
          break;
        }
        end--;
      }
      if (found === undefined) return ['[UNK]'];
      pieces.push(found);
      start = end;
    }
    return pieces;
  }
}
