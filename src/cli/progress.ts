// Download progress for humans: one rewritten line on a terminal, plain periodic lines otherwise.

import type { DownloadProgress } from '../convert/download.js';

const mb = (n: number): string => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : `${(n / 1e6).toFixed(1)} MB`);
const clock = (s: number): string => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, '0')}`;

export function progressReporter(
  label: string,
  stream: NodeJS.WriteStream = process.stderr,
): { update: (p: DownloadProgress) => void; done: () => void } {
  const tty = Boolean(stream.isTTY);
  let lastLine = 0;
  let lastPct = -1;
  const describe = (p: DownloadProgress): string => {
    const pct = p.total ? Math.floor((100 * p.received) / p.total) : undefined;
    const eta = p.total && p.bytesPerSecond > 0 ? ` ETA ${clock((p.total - p.received) / p.bytesPerSecond)}` : '';
    return `${label}: ${mb(p.received)}${p.total ? ` / ${mb(p.total)} ${pct}%` : ''}  ${mb(p.bytesPerSecond)}/s${eta}`;
  };
  return {
    update: (p) => {
      if (tty) {
        stream.write(`\r${describe(p).padEnd(78)}`);
        return;
      }
      const pct = p.total ? Math.floor((10 * p.received) / p.total) : -1;
      if (pct !== lastPct || Date.now() - lastLine > 10_000) {
        lastPct = pct;
        lastLine = Date.now();
        stream.write(`${describe(p)}\n`);
      }
    },
    done: () => {
      if (tty) stream.write('\n');
    },
  };
}
