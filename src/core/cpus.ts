// How many CPUs this process may really use: the scheduler's answer (affinity, what
// os.availableParallelism() reports) capped by a cgroup CPU quota. In a container limited to 2 CPUs on
// a 64-core node, availableParallelism() still says 64, and 64 inference or decode threads would
// thrash the quota (and, as decode workers, cost memory each).

import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

type Read = (path: string) => string | undefined;

const readText: Read = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

/** CPUs allowed by the cgroup quota (v2 cpu.max, else v1 cfs quota/period), or undefined when unlimited. */
export function cgroupCpuQuota(read: Read = readText): number | undefined {
  const v2 = read('/sys/fs/cgroup/cpu.max')?.trim().split(/\s+/);
  if (v2 && v2.length === 2) {
    if (v2[0] === 'max') return undefined;
    const [quota, period] = v2.map(Number) as [number, number];
    return quota > 0 && period > 0 ? quota / period : undefined;
  }
  const quota = Number(read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'));
  const period = Number(read('/sys/fs/cgroup/cpu/cpu.cfs_period_us'));
  return quota > 0 && period > 0 ? quota / period : undefined;
}

/** At least 1: the affinity count, capped by a cgroup quota rounded up (1.5 CPUs → 2 threads). */
export function usableCpus(read: Read = readText): number {
  const quota = cgroupCpuQuota(read);
  const n = availableParallelism();
  return Math.max(1, quota === undefined ? n : Math.min(n, Math.ceil(quota)));
}
