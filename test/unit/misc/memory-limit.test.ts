// The memory limit and the heap sized to it: cgroup files as the kernel writes
// them (v2, v1, nested, unlimited), the sizing rule, and --memory-limit refused by name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cgroupMemoryLimit, cgroupPaths, limitFiles, heapMiB, heapSetExplicitly, parseLimit, planHeap, reexecArgs } from '../../../src/memory-limit.ts';
import { loadConfig } from '../../../src/config.ts';

const MiB = 2 ** 20;
const files = (m: Record<string, string>) => (f: string) => m[f];

test('/proc/self/cgroup: the v2 unified path and the v1 memory path, which may share a line with other controllers', () => {
  assert.deepEqual(cgroupPaths('0::/kubepods.slice/pod1/cri-abc\n'), { v2: '/kubepods.slice/pod1/cri-abc' });
  assert.deepEqual(cgroupPaths('12:cpu,cpuacct:/x\n4:memory:/process_api/4a40\n0::/\n'), { v1: '/process_api/4a40', v2: '/' });
  assert.deepEqual(cgroupPaths('3:memory,hugetlb:/a:b\n'), { v1: '/a:b' });
  assert.deepEqual(cgroupPaths(''), {});
});

test('a limit file: bytes, or no limit for "max", v1\'s huge value, zero and garbage', () => {
  assert.equal(parseLimit('536870912\n'), 512 * MiB);
  assert.equal(parseLimit('max\n'), undefined);
  assert.equal(parseLimit('9223372036854771712\n'), undefined);
  assert.equal(parseLimit('0'), undefined);
  assert.equal(parseLimit('-1'), undefined);
  assert.equal(parseLimit(''), undefined);
});

test('the limit files from a cgroup up to the mount, own first; ".." never climbs out of the mount', () => {
  assert.deepEqual(limitFiles('/sys/fs/cgroup', '/a/b', 'memory.max'), ['/sys/fs/cgroup/a/b/memory.max', '/sys/fs/cgroup/a/memory.max', '/sys/fs/cgroup/memory.max']);
  assert.deepEqual(limitFiles('/sys/fs/cgroup', '/', 'memory.max'), ['/sys/fs/cgroup/memory.max']);
  assert.deepEqual(limitFiles('/m', '/../x', 'f'), ['/m/x/f', '/m/f']);
});

test('cgroup v2 inside a container (own namespace): the root memory.max', () => {
  assert.deepEqual(cgroupMemoryLimit(files({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/memory.max': '536870912\n' })), { bytes: 512 * MiB, source: 'cgroup v2' });
});

test('cgroup v2 without a namespace: the smallest limit on the way up binds (a pod limit above an unlimited container)', () => {
  const read = files({
    '/proc/self/cgroup': '0::/kubepods/pod1/ctr\n',
    '/sys/fs/cgroup/kubepods/pod1/ctr/memory.max': 'max\n',
    '/sys/fs/cgroup/kubepods/pod1/memory.max': '1073741824\n',
    '/sys/fs/cgroup/kubepods/memory.max': '8589934592\n',
  });
  assert.deepEqual(cgroupMemoryLimit(read), { bytes: 1024 * MiB, source: 'cgroup v2' });
});

test('cgroup v1 when v2 sets no limit (hybrid hosts), and none when neither does', () => {
  const v1 = files({
    '/proc/self/cgroup': '4:memory:/process_api/x\n0::/\n',
    '/sys/fs/cgroup/memory/process_api/x/memory.limit_in_bytes': '268435456\n',
    '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712\n',
  });
  assert.deepEqual(cgroupMemoryLimit(v1), { bytes: 256 * MiB, source: 'cgroup v1' });
  assert.equal(cgroupMemoryLimit(files({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/memory.max': 'max\n' })), undefined);
  assert.equal(cgroupMemoryLimit(files({})), undefined, 'not Linux: no /proc');
});

test('the heap is the limit less a reserve of half of it, between 96 and 256 MiB', () => {
  assert.equal(heapMiB(512 * MiB), 256);
  assert.equal(heapMiB(300 * MiB), 150);
  assert.equal(heapMiB(160 * MiB), 64);
  assert.equal(heapMiB(2048 * MiB), 1792);
});

test('the heap plan: re-execute with the sized old space, unless Node was told one or there is no usable limit', () => {
  const limit = { bytes: 512 * MiB, source: 'cgroup v2' as const };
  assert.deepEqual(planHeap(limit, false), { action: 'reexec', heapMiB: 256, limit });
  assert.equal(planHeap(limit, true).action, 'keep');
  assert.equal(planHeap(undefined, false).action, 'keep');
  const small = planHeap({ bytes: 128 * MiB, source: 'cgroup v1' }, false);
  assert.equal(small.action, 'keep');
  assert.match(small.action === 'keep' ? small.reason : '', /128 MiB is below the 160 MiB/);
});

test('a heap size set by the user, on the command line or in NODE_OPTIONS, either flag and spelling', () => {
  assert.equal(heapSetExplicitly(['--max-semi-space-size=2'], undefined), false, 'the young generation alone: the heap is still sized');
  assert.equal(heapSetExplicitly(['--max-heap-size=300'], undefined), true);
  assert.equal(heapSetExplicitly(['--max-old-space-size=300'], undefined), true);
  assert.equal(heapSetExplicitly([], '--enable-source-maps --max_old_space_size=300'), true);
  assert.equal(heapSetExplicitly([], '--max-old-space-size-xyz'), false);
});

test('the re-executed command keeps Node\'s flags, then the heap size, then the script and its arguments', () => {
  assert.deepEqual(reexecArgs('/node', ['--max-semi-space-size=2'], ['/node', 'dist/main.js', '--qps=5'], 384),
    ['/node', '--max-semi-space-size=2', '--max-heap-size=384', 'dist/main.js', '--qps=5']);
});

test('--memory-limit: a quantity of bytes of at least 160Mi; anything else is refused by name', () => {
  assert.equal(loadConfig([], {}).memoryLimitBytes, undefined);
  assert.equal(loadConfig(['--memory-limit=1Gi'], {}).memoryLimitBytes, 1024 * MiB);
  assert.equal(loadConfig([], { AGENT_IDENTITY_MEMORY_LIMIT: '512Mi' }).memoryLimitBytes, 512 * MiB);
  assert.throws(() => loadConfig(['--memory-limit=512MB'], {}), /--memory-limit must be a quantity of bytes/);
  assert.throws(() => loadConfig(['--memory-limit=1.5'], {}), /--memory-limit must be a quantity of bytes/);
  assert.throws(() => loadConfig(['--memory-limit=100Mi'], {}), /--memory-limit must be at least 160Mi/);
});
