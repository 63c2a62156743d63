// ALBEF's caption clean-up (`pre_caption` in its dataset/utils.py), on by default for /embed/text.

/** Python's str.isspace set: what `\s` matches in Python 3 `re` (JS's \s differs: it has U+FEFF, lacks U+001C–U+001F and U+0085). */
const PY_WS = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const WS_RUN = new RegExp(`[${PY_WS}]{2,}`, 'g');
const DROPPED = /[,.'!?"()*#:;~]/g;

/**
 * lowercase; delete `,.'!?"()*#:;~`; `-` and `/` → space; `<person>` → `person`; runs of 2+
 * whitespace → one space; strip trailing newlines, then spaces; keep the first `maxWords` words.
 */
export function preCaption(caption: string, maxWords: number): string {
  let c = caption
    .toLowerCase()
    .replace(DROPPED, '')
    .replaceAll('-', ' ')
    .replaceAll('/', ' ')
    .replaceAll('<person>', 'person');
  c = c.replace(WS_RUN, ' ');
  c = c.replace(/\n+$/, '').replace(/^ +| +$/g, '');
  const words = c.split(' ');
  return words.length > maxWords ? words.slice(0, maxWords).join(' ') : c;
}
