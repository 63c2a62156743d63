// Ctrl-C (or SIGTERM) during a long indexing run: the batch in hand finishes and is written, then the
// command stops and says how to resume; a second signal stops at once.

import { log } from './args.js';

/** Ctrl-C (or SIGTERM) while indexing: finish the batch in hand, then stop; a second one stops at once. */
export function stopOnSignal(): { stop: () => boolean; signal: () => NodeJS.Signals | undefined; release: () => void } {
  let received: NodeJS.Signals | undefined;
  const handler = (signal: NodeJS.Signals): void => {
    if (received) {
      log(`${signal} again: stopping now (a torn last line is dropped when the run resumes)`);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    received = signal;
    log(`${signal}: stopping after the current batch (${signal === 'SIGINT' ? 'Ctrl-C' : signal} again stops at once)`);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    stop: () => received !== undefined,
    signal: () => received,
    release: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
