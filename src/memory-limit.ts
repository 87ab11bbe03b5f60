// The operator's memory limit and the V8 heap sized to it. A container's
// limit is its cgroup's (v2 memory.max, v1 memory.limit_in_bytes), or
// --memory-limit. V8 does not size its old space from the cgroup by itself the
// way this process needs: left alone it may grow its heap past the limit and
// the kernel kills the pod (OOMKilled), or keep it far below and throw "heap
// out of memory" with room to spare. So at start-up the operator re-executes
// itself once (process.execve: same PID, so PID 1 and signals stay as they
// were) with --max-heap-size set to the limit less what Node needs outside
// the heap. --max-heap-size bounds young and old generation together: Node 24's
// young generation alone may grow to 192 MB unless --max-semi-space-size caps
// it, so bounding the old space alone could still overrun the limit. Near that heap limit V8 collects harder and the
// operator runs slower; it is not killed by the kernel for the heap.
// The decisions are pure functions; reading /proc and /sys is at the edge.
import { readFileSync } from 'node:fs';

export type LimitSource = '--memory-limit' | 'cgroup v2' | 'cgroup v1';

export interface MemoryLimit {
  bytes: number;
  source: LimitSource;
}

/** Where this process's memory controller lives, from /proc/self/cgroup: the v2 unified path and the v1 memory path. */
export function cgroupPaths(procSelfCgroup: string): { v2?: string; v1?: string } {
  const out: { v2?: string; v1?: string } = {};
  for (const line of procSelfCgroup.split('\n')) {
    // hierarchy-ID:controller-list:path; the path may itself contain ':'.
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    if (m[1] === '0' && m[2] === '') out.v2 = m[3]!;
    else if (m[2]!.split(',').includes('memory')) out.v1 = m[3]!;
  }
  return out;
}

// cgroup v1 writes "no limit" as the largest page-aligned signed 64-bit value (9223372036854771712); anything past 2^60 is no limit.
const NO_LIMIT = 2 ** 60;

/** A memory.max or memory.limit_in_bytes text as bytes; undefined for "max", no limit, or text that is not a number. */
export function parseLimit(text: string): number | undefined {
  const t = text.trim();
  if (!/^\d+$/.test(t)) return undefined;
  const n = Number(t);
  return n > 0 && n < NO_LIMIT ? n : undefined;
}

/**
 * The directories to read a limit from, own cgroup first, then each parent up
 * to the mount: a limit set on a parent (a pod's cgroup above its container's)
 * binds too, so the smallest wins. Inside a container with its own cgroup
 * namespace the path is "/", and only the mount's root is read.
 */
export function limitFiles(mount: string, path: string, file: string): string[] {
  const parts = path.split('/').filter((p) => p && p !== '..');
  const files: string[] = [];
  for (let i = parts.length; i >= 0; i--) files.push([mount, ...parts.slice(0, i), file].join('/'));
  return files;
}

/** The smallest limit among files that can be read; undefined when none sets one. */
function smallestLimit(files: string[], read: (file: string) => string | undefined): number | undefined {
  const limits = files.map((f) => read(f)).filter((t): t is string => t !== undefined).map(parseLimit).filter((n): n is number => n !== undefined);
  return limits.length ? Math.min(...limits) : undefined;
}

/** This process's cgroup memory limit: v2 when mounted, else v1; undefined when unlimited or not on Linux. */
export function cgroupMemoryLimit(read: (file: string) => string | undefined = readOrUndefined): MemoryLimit | undefined {
  const self = read('/proc/self/cgroup');
  if (self === undefined) return undefined;
  const paths = cgroupPaths(self);
  if (paths.v2 !== undefined) {
    const bytes = smallestLimit(limitFiles('/sys/fs/cgroup', paths.v2, 'memory.max'), read);
    if (bytes !== undefined) return { bytes, source: 'cgroup v2' };
  }
  if (paths.v1 !== undefined) {
    const bytes = smallestLimit(limitFiles('/sys/fs/cgroup/memory', paths.v1, 'memory.limit_in_bytes'), read);
    if (bytes !== undefined) return { bytes, source: 'cgroup v1' };
  }
  return undefined;
}

function readOrUndefined(file: string): string | undefined {
  try { return readFileSync(file, 'utf8'); } catch { return undefined; }
}

const MiB = 2 ** 20;
/** Below this the operator cannot hold Node's own ~100 MiB and a useful heap: refused at start-up. */
export const MIN_LIMIT_BYTES = 160 * MiB;

/**
 * The V8 heap for a memory limit: the limit less what Node holds outside the
 * heap, kept as half the limit between 96 and 256 MiB. Outside the heap is
 * not only Node's floor (its binary and code, about 100 MiB RSS with no
 * identity): over 10,000 identities RSS ran 240 MB above V8's heap total
 * (buffers, TLS, allocator arenas), so a quarter was not enough. 512 MiB
 * gives a 256 MiB heap, twice the 126 MB live at 10,000 identities.
 */
export function heapMiB(limitBytes: number): number {
  const reserve = Math.min(256 * MiB, Math.max(96 * MiB, limitBytes / 2));
  return Math.floor((limitBytes - reserve) / MiB);
}

/** Whether Node was already told the heap's size (--max-old-space-size or --max-heap-size), on its command line or in NODE_OPTIONS: then that is what the user chose. */
export function heapSetExplicitly(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  return [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].some((a) => /^--max[-_](old[-_]space|heap)[-_]size(=|$)/.test(a));
}

export type HeapPlan =
  | { action: 'keep'; reason: string }
  | { action: 'reexec'; heapMiB: number; limit: MemoryLimit };

/** Whether to re-execute with --max-heap-size, and why not when not. */
export function planHeap(limit: MemoryLimit | undefined, explicit: boolean): HeapPlan {
  if (explicit) return { action: 'keep', reason: 'the heap size was given to Node (--max-old-space-size or --max-heap-size)' };
  if (!limit) return { action: 'keep', reason: 'no memory limit (no cgroup limit, no --memory-limit): V8 sizes its heap from the machine' };
  // Only a cgroup can get here below the minimum (the flag is refused): too small to size a heap in, so V8's default stays and the log says why.
  if (limit.bytes < MIN_LIMIT_BYTES) return { action: 'keep', reason: `the ${limit.source} limit of ${Math.floor(limit.bytes / MiB)} MiB is below the ${MIN_LIMIT_BYTES / MiB} MiB the operator needs; V8's default heap size kept` };
  return { action: 'reexec', heapMiB: heapMiB(limit.bytes), limit };
}

/** The argv to re-execute this process with: Node's own flags, the heap size, then the script and its arguments. */
export function reexecArgs(execPath: string, execArgv: readonly string[], argv: readonly string[], heap: number): string[] {
  return [execPath, ...execArgv, `--max-heap-size=${heap}`, ...argv.slice(1)];
}
