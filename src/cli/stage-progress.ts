// Progress of a long batch job in stages (texts, images, …) on stderr: one rewritten line on a
// terminal, a line per tenth of each stage otherwise, with the rate and an ETA for the stage.

import type { EvalProgress } from '../service/evaluation.js';

const clock = (s: number): string => {
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h
    ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}`
    : `${m}:${String(sec).padStart(2, '0')}`;
};

export function stageProgress(stream: NodeJS.WriteStream = process.stderr): {
  update: (p: EvalProgress) => void;
  done: () => void;
} {
  const tty = Boolean(stream.isTTY);
  let stage = '';
  let started = 0;
  let first = 0;
  let lastTenth = -1;
  let open = false;
  return {
    update: (p) => {
      // The rate and ETA count what this run did: a resumed stage starts from what the work dir had.
      const count = p.pairs ?? { done: p.done, total: p.total };
      if (p.stage !== stage) {
        if (open && tty) stream.write('\n');
        stage = p.stage;
        started = performance.now();
        first = count.done;
        lastTenth = -1;
      }
      const s = (performance.now() - started) / 1000;
      const rate = s > 0 ? (count.done - first) / s : 0;
      const eta = rate > 0 && count.done < count.total ? ` ETA ${clock((count.total - count.done) / rate)}` : '';
      const unit = p.pairs ? 'pairs' : p.stage;
      const line = `eval ${p.stage}: ${p.done}/${p.total}${p.pairs ? ` images, ${count.done}/${count.total} pairs` : ''}  ${rate.toFixed(1)} ${unit}/s${eta}`;
      if (tty) {
        stream.write(`\r${line.padEnd(78)}`);
        open = true;
        return;
      }
      const tenth = count.total ? Math.floor((10 * count.done) / count.total) : 0;
      if (tenth !== lastTenth) {
        lastTenth = tenth;
        stream.write(`albef-embed: ${line}\n`);
      }
    },
    done: () => {
      if (open && tty) stream.write('\n');
      open = false;
    },
  };
}
