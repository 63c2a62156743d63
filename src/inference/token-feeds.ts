// Token id rows → the text graphs' inputs: input_ids and attention_mask [batch, longest], shorter rows
// padded with the pad id and mask 0 (which does not change any row's result).

import type { WireTensor } from './session.js';

export function paddedTokenFeeds(
  rows: number[][],
  padId: number,
): { input_ids: WireTensor; attention_mask: WireTensor } {
  const len = Math.max(...rows.map((r) => r.length));
  const ids = new BigInt64Array(rows.length * len).fill(BigInt(padId));
  const mask = new BigInt64Array(rows.length * len);
  rows.forEach((row, r) => {
    for (let c = 0; c < row.length; c++) {
      ids[r * len + c] = BigInt(row[c]!);
      mask[r * len + c] = 1n;
    }
  });
  return {
    input_ids: { type: 'int64', data: ids, dims: [rows.length, len] },
    attention_mask: { type: 'int64', data: mask, dims: [rows.length, len] },
  };
}
