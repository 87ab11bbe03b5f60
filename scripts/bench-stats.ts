// Pure readings for `make bench-compare`: quantiles, the API server's request
// counter, /proc texts and the Ready-over-time curve. No I/O here, so each is
// unit-tested on captured text (test/unit/misc/bench-stats.test.ts).

/** The p-quantile (0..1) by nearest rank; NaN for no samples. */
export function quantile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
}

export function median(xs: readonly number[]): number {
  return quantile(xs, 0.5);
}

export interface RequestTotals {
  writes: number; reads: number; conflicts: number;
  /** The part of `writes` on Leases: leader election, the API server's own every 10 s among them, whoever is measured. */
  leaseWrites: number;
}

// apiserver_request_total reports verbs in capitals (POST for create, PUT for update, APPLY for
// server-side apply); lower-case request verbs are accepted too.
const WRITES = new Set(['POST', 'PUT', 'PATCH', 'APPLY', 'DELETE', 'DELETECOLLECTION', 'CREATE', 'UPDATE']);
const READS = new Set(['GET', 'LIST', 'WATCH', 'WATCHLIST']);

/** The `apiserver_request_total` samples on resources (non-resource URLs such as /metrics left out), verb in capitals. */
function* resourceRequests(metricsText: string): Generator<{ labels: Record<string, string>; value: number; verb: string }> {
  for (const line of metricsText.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const close = line.lastIndexOf('}');
    const labels: Record<string, string> = Object.fromEntries([...line.slice(line.indexOf('{') + 1, close).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]));
    const value = Number(line.slice(close + 1).trim().split(' ')[0]);
    if (labels.resource && Number.isFinite(value)) yield { labels, value, verb: (labels.verb ?? '').toUpperCase() };
  }
}

/**
 * Sums `apiserver_request_total` from an API server's /metrics text into writes
 * (create/update/patch/delete) and reads (get/list/watch) on resources;
 * requests to non-resource URLs (/metrics, /readyz) are left out, as the
 * bench's own scrapes are among them. Conflicts are writes answered 409.
 */
export function requestTotals(metricsText: string): RequestTotals {
  const totals: RequestTotals = { writes: 0, reads: 0, conflicts: 0, leaseWrites: 0 };
  for (const { labels, value, verb } of resourceRequests(metricsText)) {
    if (WRITES.has(verb)) {
      totals.writes += value;
      if (labels.code === '409') totals.conflicts += value;
      if (labels.resource === 'leases' && labels.group === 'coordination.k8s.io') totals.leaseWrites += value;
    } else if (READS.has(verb)) totals.reads += value;
  }
  return totals;
}

/**
 * Writes on resources by verb and resource (`POST secrets`, `PATCH agentidentities/status`), from
 * `apiserver_request_total`: what each write of an issuance is, not only how many there are.
 */
export function writesByRequest(metricsText: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const { labels, value, verb } of resourceRequests(metricsText)) {
    if (!WRITES.has(verb)) continue;
    const key = `${verb} ${labels.resource}${labels.subresource ? `/${labels.subresource}` : ''}`;
    out[key] = (out[key] ?? 0) + value;
  }
  return out;
}

/** `after - before` per key, dropping keys that did not move. */
export function subtractCounts(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]).filter(([, v]) => (v as number) !== 0));
}

/** A process's own process_cpu_seconds_total from its /metrics text; null when it reports none. */
export function processCpuSeconds(metricsText: string): number | null {
  const line = metricsText.split('\n').find((l) => l.startsWith('process_cpu_seconds_total '));
  const value = line === undefined ? NaN : Number(line.split(' ')[1]);
  return Number.isFinite(value) ? value : null;
}

export function subtract(a: RequestTotals, b: RequestTotals): RequestTotals {
  return { writes: a.writes - b.writes, reads: a.reads - b.reads, conflicts: a.conflicts - b.conflicts, leaseWrites: a.leaseWrites - b.leaseWrites };
}

/** utime + stime, in clock ticks, from /proc/<pid>/stat (fields 14 and 15; the command name may hold spaces). */
export function cpuTicks(statText: string): number {
  const fields = statText.slice(statText.lastIndexOf(')') + 2).trim().split(/\s+/);
  // fields[0] is field 3 (state), so field n is fields[n - 3].
  return Number(fields[11]) + Number(fields[12]);
}

/** VmRSS in MiB from /proc/<pid>/status. */
export function rssMiB(statusText: string): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(statusText);
  if (!m) throw new Error('no VmRSS in /proc status (has the process exited?)');
  return Number(m[1]) / 1024;
}

/**
 * The TCP sockets in a /proc/<pid>/net/tcp or tcp6 table whose remote port is
 * `port`, as socket inode → local port: matching inodes against the links in
 * /proc/<pid>/fd tells which of them that process holds.
 */
export function socketsTo(tcpTable: string, port: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of tcpTable.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [, localPort] = f[1]!.split(':');
    const [, remotePort] = f[2]!.split(':');
    if (parseInt(remotePort!, 16) === port && f[9] !== '0') out.set(f[9]!, parseInt(localPort!, 16));
  }
  return out;
}

/** The cumulative count of Ready objects over seconds since `t0`, one step per object. */
export function readyCurve(t0: number, readyAt: readonly number[]): Array<[number, number]> {
  return [...readyAt].sort((a, b) => a - b).map((at, i) => [(at - t0) / 1000, i + 1]);
}

/** What one run of ours is judged by (issue 12's targets): the medians, and the setting each target assumes. */
export interface TargetInput {
  n: number;
  /** The operator's extra flags (AIO_FLAGS); '' is default flags. */
  flags: string;
  p50s: number; p99s: number; allReadyS: number;
  writesPerIssuance: number; connectionsPerIssuance: number | null;
  /** Leases aside: leader election renews while idle, by design. */
  idleWrites: number;
  cpuPer100s: number; rssMiB: number;
}

export interface TargetRow { target: string; measured: string; verdict: 'met' | 'not met' | 'not this run' }

/**
 * Each target with the measured number and a verdict. A target set for
 * another N or other flags says "not this run" rather than judging a
 * number it was not set for.
 */
export function targetRows(m: TargetInput): TargetRow[] {
  const qps = /--qps[= ](\S+)/.exec(m.flags)?.[1];
  const row = (target: string, measured: string, applies: boolean, ok: boolean): TargetRow =>
    ({ target, measured, verdict: applies ? (ok ? 'met' : 'not met') : 'not this run' });
  const s = (x: number) => `${x.toFixed(2)} s`;
  return [
    row('create → Ready p50 ≤ 2 s (N=300, default flags)', s(m.p50s), m.n === 300 && m.flags === '', m.p50s <= 2),
    row('create → Ready p99 ≤ 5 s (N=300, default flags)', s(m.p99s), m.n === 300 && m.flags === '', m.p99s <= 5),
    row('API writes per issuance ≤ 5', m.writesPerIssuance.toFixed(2), true, m.writesPerIssuance <= 5),
    row('new connections per issuance ≤ 2', m.connectionsPerIssuance === null ? 'unknown' : m.connectionsPerIssuance.toFixed(2),
      m.connectionsPerIssuance !== null, (m.connectionsPerIssuance ?? Infinity) <= 2),
    row('0 API writes while idle (Leases aside)', m.idleWrites.toFixed(0), true, m.idleWrites === 0),
    row('CPU ≤ 2 s per 100 issuances', s(m.cpuPer100s), true, m.cpuPer100s <= 2),
    row('RSS ≤ 120 MiB idle (N=1000)', `${m.rssMiB.toFixed(0)} MiB`, m.n === 1000, m.rssMiB <= 120),
    row('all Ready ≤ 30 s (N=1000, --qps=50)', s(m.allReadyS), m.n === 1000 && qps === '50', m.allReadyS <= 30),
  ];
}
