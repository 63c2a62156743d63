// Small statistics and timing helpers for the benchmarks.

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function median(xs: number[]): number {
  return percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );
}

export const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

export const round = (x: number, digits = 2): number => Number(x.toFixed(digits));

/** Milliseconds of each run of `run`, after one warm-up run, for `seconds` and at least three runs. */
export async function timeRuns(run: () => Promise<unknown>, seconds: number): Promise<number[]> {
  await run();
  const times: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end || times.length < 3) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
  }
  return times;
}
