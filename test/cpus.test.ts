// The usable CPU count: affinity capped by a cgroup v2 or v1 quota, read from files given here.

import { availableParallelism } from 'node:os';
import t from 'tap';
import { cgroupCpuQuota, usableCpus } from '../src/cpus.js';

const files = (entries: Record<string, string>) => (path: string) => entries[path];

t.test('cgroup v2 cpu.max', async (t) => {
  t.equal(cgroupCpuQuota(files({ '/sys/fs/cgroup/cpu.max': 'max 100000\n' })), undefined, 'no limit');
  t.equal(cgroupCpuQuota(files({ '/sys/fs/cgroup/cpu.max': '200000 100000\n' })), 2);
  t.equal(cgroupCpuQuota(files({ '/sys/fs/cgroup/cpu.max': '150000 100000' })), 1.5);
});

t.test('cgroup v1 cfs quota and period', async (t) => {
  const v1 = (quota: string) => files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': quota, '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n' });
  t.equal(cgroupCpuQuota(v1('-1\n')), undefined, 'no limit');
  t.equal(cgroupCpuQuota(v1('50000\n')), 0.5);
  t.equal(cgroupCpuQuota(files({})), undefined, 'no cgroup files');
});

t.test('usable CPUs: the quota rounded up, never above affinity, at least 1', async (t) => {
  const n = availableParallelism();
  t.equal(usableCpus(files({})), n);
  t.equal(usableCpus(files({ '/sys/fs/cgroup/cpu.max': '50000 100000' })), 1, 'half a CPU still gets one thread');
  t.equal(usableCpus(files({ '/sys/fs/cgroup/cpu.max': '150000 100000' })), Math.min(n, 2));
  t.equal(usableCpus(files({ '/sys/fs/cgroup/cpu.max': `${1000 * 100000} 100000` })), n, 'a quota above the cores changes nothing');
});
