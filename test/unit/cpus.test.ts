// The usable CPU count: affinity capped by a cgroup v2 or v1 quota, read from files given here; and
// how a tower's sessions share the threads.

import { availableParallelism } from 'node:os';
import t from 'tap';
import { cgroupCpuQuota, usableCpus } from '../../src/core/cpus.js';
import { threadsPerSession } from '../../src/inference/ort-session.js';

const files = (entries: Record<string, string>) => (path: string) => entries[path];

t.test('cgroup v2 cpu.max', async (t) => {
  t.equal(cgroupCpuQuota(files({ '/sys/fs/cgroup/cpu.max': 'max 100000\n' })), undefined, 'no limit');
  t.equal(cgroupCpuQuota(files({ '/sys/fs/cgroup/cpu.max': '200000 100000\n' })), 2);
  t.equal(cgroupCpuQuota(files({ '/sys/fs/cgroup/cpu.max': '150000 100000' })), 1.5);
});

t.test('cgroup v1 cfs quota and period', async (t) => {
  const v1 = (quota: string) =>
    files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': quota, '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n' });
  t.equal(cgroupCpuQuota(v1('-1\n')), undefined, 'no limit');
  t.equal(cgroupCpuQuota(v1('50000\n')), 0.5);
  t.equal(cgroupCpuQuota(files({})), undefined, 'no cgroup files');
});

t.test('usable CPUs: the quota rounded up, never above affinity, at least 1', async (t) => {
  const n = availableParallelism();
  t.equal(usableCpus(files({})), n);
  t.equal(usableCpus(files({ '/sys/fs/cgroup/cpu.max': '50000 100000' })), 1, 'half a CPU still gets one thread');
  t.equal(usableCpus(files({ '/sys/fs/cgroup/cpu.max': '150000 100000' })), Math.min(n, 2));
  t.equal(
    usableCpus(files({ '/sys/fs/cgroup/cpu.max': `${1000 * 100000} 100000` })),
    n,
    'a quota above the cores changes nothing',
  );
});

t.test("a tower's sessions share its threads equally, at least one each", async (t) => {
  t.equal(threadsPerSession(4, 1), 4);
  t.equal(threadsPerSession(4, 2), 2);
  t.equal(threadsPerSession(3, 2), 1, 'never more threads than given');
  t.equal(threadsPerSession(1, 2), 1);
  t.equal(threadsPerSession(0, 1), usableCpus(), '0: one per usable CPU');
  t.equal(threadsPerSession(0, 2), Math.max(1, Math.floor(usableCpus() / 2)));
});
