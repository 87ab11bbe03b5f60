// `make bench-compare` (or `make bench BENCH_MODE=compare`): N objects of one
// kind created at once against a controller, measured from the outside so any
// controller can be compared with ours on the same control plane. Numbers are
// printed and written, never asserted. Settings (environment):
//   BENCH_PRESETS   comma-separated presets, run alternately (default agent-identity-operator;
//                   also cert-manager, custom: see scripts/bench-presets.ts)
//   BENCH_N         objects created at once (default 300)
//   BENCH_RUNS      runs per preset; medians are printed (default 1)
//   BENCH_IDLE_SECONDS  idle wait before RSS is read (default 60)
//   BENCH_KUBECONFIG    a cluster of yours; otherwise each run starts a fresh local control plane
//   BENCH_NAMESPACE     the namespace to create in (default bench-<preset>-<run>, made and deleted)
//   BENCH_OUT       where results.json and ready-over-time.svg go (default .local/bench/<time>)
//   BENCH_TIMEOUT_SECONDS  give up waiting for Ready (default 600)
//   BENCH_SAMPLE_MS        /proc socket sampling interval (default 50)
import { CoreV1Api, CustomObjectsApi, Watch } from '@kubernetes/client-node';
import { mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { resolveBinaries } from '../test/support/controlplane.ts';
import { cluster, createRetrying, procText, scrape, sleep } from './bench-cluster.ts';
import { PRESETS, agentIdentityOperator, type Cluster, type Preset } from './bench-presets.ts';
import { cpuTicks, median, processCpuSeconds, quantile, readyCurve, requestTotals, rssMiB, socketsTo, subtract, subtractCounts, targetRows, writesByRequest } from './bench-stats.ts';
import { readyChart, type Series } from './bench-chart.ts';

const env = process.env;
const N = Number(env.BENCH_N ?? 300);
const RUNS = Number(env.BENCH_RUNS ?? 1);
const IDLE_S = Number(env.BENCH_IDLE_SECONDS ?? 60);
const TIMEOUT_S = Number(env.BENCH_TIMEOUT_SECONDS ?? 600);
const SAMPLE_MS = Number(env.BENCH_SAMPLE_MS ?? 50);
// Linux reports /proc/<pid>/stat times in USER_HZ, 100 on every mainstream architecture.
const CLK_TCK = 100;
const ROOT = resolve(import.meta.dirname, '..');
const OUT = resolve(env.BENCH_OUT ?? join(ROOT, '.local', 'bench', new Date().toISOString().replaceAll(':', '-').replace(/\..*/, '')));

export interface RunResult {
  preset: string;
  run: number;
  n: number;
  ready: number;
  /** Seconds from the first create to the last Ready. */
  allReadySeconds: number;
  createToReadyMs: { p50: number; p90: number; p99: number; max: number };
  /** writesByRequest: each kind of write (`POST secrets`, `PATCH agentidentities/status`) per issuance; the bench's own N creates included. */
  perIssuance: { apiWrites: number; apiReads: number; conflicts: number; writesByRequest: Record<string, number>; connectionsOpened: number | null; connectionsSeen: number };
  peakOpenConnections: number;
  cpuSecondsPer100: number;
  /** The API server's own CPU (its process_cpu_seconds_total) for the window, per 100: what the controller's requests cost the cluster. Includes the bench's N creates. */
  apiServerCpuSecondsPer100: number | null;
  idle: { seconds: number; rssMiB: number; apiWrites: number; leaseWrites: number; apiReads: number };
  readyOverTime: Array<[number, number]>;
}

/**
 * Connections from `pid` to the API server, from the controller's side: its
 * socket inodes (/proc/<pid>/fd) matched against its network namespace's TCP
 * tables, sampled every SAMPLE_MS. A connection that opens and closes between
 * two samples is missed, so `seen` (opened during the window) is a lower bound (exact counts come from the
 * in-process probe when the bench starts a Node controller).
 */
function sampleSockets(pid: number, port: number) {
  // Sockets open before the window were not opened by its work; `seen` counts only new ones.
  let before: Set<string> | undefined;
  const seen = new Set<string>();
  let peak = 0;
  const sample = () => {
    try {
      const fds = new Set(readdirSync(`/proc/${pid}/fd`).map((fd) => { try { return readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { return ''; } }));
      const open = ['tcp', 'tcp6'].flatMap((table) => [...socketsTo(readFileSync(`/proc/${pid}/net/${table}`, 'utf8'), port).keys()])
        .filter((inode) => fds.has(`socket:[${inode}]`));
      before ??= new Set(open);
      for (const inode of open) if (!before.has(inode)) seen.add(inode);
      peak = Math.max(peak, open.length);
    } catch { /* the process is gone or not ours to read: the counts say 0 */ }
  };
  sample();
  const timer = setInterval(sample, SAMPLE_MS);
  return { stop: () => { clearInterval(timer); sample(); return { seen: seen.size, peak }; } };
}

/** One run: undefined when the preset cannot run here (it says why). */
async function runOnce(preset: Preset, run: number): Promise<RunResult | undefined> {
  const { c, stop } = await cluster(`${preset.name}-${run}`);
  try {
    const why = await preset.unavailable(c);
    if (why) { console.log(`${preset.name}: skipped: ${why}`); return undefined; }
    await preset.install(c);
    const namespace = env.BENCH_NAMESPACE ?? `bench-${preset.name}-${run}`;
    const core = c.kc.makeApiClient(CoreV1Api);
    const madeNamespace = await core.createNamespace({ body: { metadata: { name: namespace } } }).then(() => true, (e: { code?: number }) => { if (e.code !== 409) throw e; return false; });
    try {
      await preset.prepare(c, namespace, N);
      const ctl = await preset.controller(c, namespace);
      try {
        return await measure(preset, run, c, namespace, ctl);
      } finally {
        await ctl.stop();
      }
    } finally {
      if (madeNamespace && !c.local) await core.deleteNamespace({ name: namespace }).catch(() => undefined);
    }
  } finally {
    await stop();
  }
}

async function measure(preset: Preset, run: number, c: Cluster, namespace: string, ctl: Awaited<ReturnType<Preset['controller']>>): Promise<RunResult> {
  const [group, version] = preset.apiVersion.includes('/') ? preset.apiVersion.split('/') as [string, string] : ['', preset.apiVersion];
  const base = group ? `/apis/${group}/${version}` : `/api/${version}`;
  const isReady = (o: { status?: { conditions?: Array<{ type: string; status: string }> } }) =>
    o.status?.conditions?.some((x) => x.type === preset.ready.type && x.status === preset.ready.status) ?? false;
  // Named per run, so runs in a namespace of yours (BENCH_NAMESPACE) neither collide nor count objects already there.
  const names = Array.from({ length: N }, (_, i) => `${preset.kind.toLowerCase()}-r${run}-${i}`);
  const ours = new Set(names);
  const createdAt = new Map<string, number>();
  const readyAt = new Map<string, number>();
  // A watch, opened before the first scrape and closed after the last, so the bench's own reads fall
  // outside the counts. Re-opened when it ends (a fresh watch lists what is there, Ready ones included);
  // each end inside the window is one of the bench's own reads, taken off the count.
  let watchEnds = 0;
  let stopped = false;
  let watch: AbortController | undefined;
  const reopen = (): void => void setTimeout(() => void open().catch(reopen), 200);
  const open = async (): Promise<void> => {
    watch = await new Watch(c.kc).watch(`${base}/namespaces/${namespace}/${preset.plural}`, {},
      (_phase, o: { metadata: { name: string }; status?: { conditions?: Array<{ type: string; status: string }> } }) => { if (ours.has(o.metadata.name) && isReady(o) && !readyAt.has(o.metadata.name)) readyAt.set(o.metadata.name, Date.now()); },
      (err: unknown) => {
        if (stopped) return;
        if (watchEnds++ === 0) console.log(`${preset.name} run ${run}: the Ready watch ended (${err ? String(err) : 'closed by the server'}); re-opening it`);
        reopen();
      });
  };
  await open();
  await sleep(Number(env.BENCH_SETTLE_SECONDS ?? 3) * 1000);

  const custom = c.kc.makeApiClient(CustomObjectsApi);
  const s0 = await scrape(c.kc);
  const m0 = requestTotals(s0);
  const ends0 = watchEnds;
  const cpu0 = cpuTicks(procText(ctl.pid, 'stat'));
  const conn0 = ctl.connectionsOpened?.() ?? 0;
  const sockets = sampleSockets(ctl.pid, c.apiPort);
  const t0 = Date.now();
  await Promise.all(names.map(async (name, i) => {
    await createRetrying(() => custom.createNamespacedCustomObject({ group, version, plural: preset.plural, namespace,
      body: { apiVersion: preset.apiVersion, kind: preset.kind, ...preset.template(i), metadata: { name, namespace } } }));
    createdAt.set(name, Date.now());
  }));
  while (readyAt.size < N && Date.now() - t0 < TIMEOUT_S * 1000) await sleep(50);
  const done = Date.now();
  const s1 = await scrape(c.kc);
  const m1 = requestTotals(s1);
  const cpu1 = cpuTicks(procText(ctl.pid, 'stat'));
  const conn1 = ctl.connectionsOpened?.() ?? 0;
  const socks = sockets.stop();
  const ownReads = watchEnds - ends0;

  console.log(`${preset.name} run ${run}: ${readyAt.size}/${N} Ready after ${((done - t0) / 1000).toFixed(1)} s; idle ${IDLE_S} s for RSS`);
  await sleep(IDLE_S * 1000);
  const m2 = requestTotals(await scrape(c.kc));
  const rss = rssMiB(procText(ctl.pid, 'status'));
  stopped = true;
  watch?.abort();
  if (!c.local) {
    // On a cluster of yours, leave nothing behind (a namespace the bench made is deleted whole afterwards).
    for (let i = 0; i < N; i += 50) await Promise.all(names.slice(i, i + 50).map((name) => custom.deleteNamespacedCustomObject({ group, version, plural: preset.plural, namespace, name }).catch(() => undefined)));
  }

  // The window's requests less the bench's own: N creates and its watches that ended in the window.
  const window = subtract(subtract(m1, m0), { writes: N, reads: ownReads, conflicts: 0, leaseWrites: 0 });
  const byRequest = subtractCounts(writesByRequest(s1), writesByRequest(s0));
  const perReady = (v: number) => (v / (readyAt.size || 1)).toFixed(2);
  console.log(`${preset.name} run ${run}: writes per issuance by request (the bench's own creates included): ${Object.entries(byRequest).sort(([, a], [, b]) => b - a).map(([k, v]) => `${k} ${perReady(v)}`).join(', ')}`);
  const idle = subtract(m2, m1);
  const latencies = [...readyAt].map(([name, at]) => Math.max(0, at - (createdAt.get(name) ?? at)));
  const ready = readyAt.size || 1;
  return {
    preset: preset.name, run, n: N, ready: readyAt.size,
    allReadySeconds: (Math.max(t0, ...readyAt.values()) - t0) / 1000,
    createToReadyMs: { p50: quantile(latencies, 0.5), p90: quantile(latencies, 0.9), p99: quantile(latencies, 0.99), max: Math.max(...latencies) },
    perIssuance: {
      apiWrites: window.writes / ready, apiReads: window.reads / ready, conflicts: window.conflicts / ready,
      writesByRequest: Object.fromEntries(Object.entries(byRequest).map(([k, v]) => [k, v / ready])),
      connectionsOpened: ctl.connectionsOpened ? (conn1 - conn0) / ready : null, connectionsSeen: socks.seen / ready,
    },
    peakOpenConnections: socks.peak,
    cpuSecondsPer100: ((cpu1 - cpu0) / CLK_TCK / ready) * 100,
    apiServerCpuSecondsPer100: apiServerCpu(s0, s1, ready),
    idle: { seconds: IDLE_S, rssMiB: rss, apiWrites: idle.writes - idle.leaseWrites, leaseWrites: idle.leaseWrites, apiReads: idle.reads },
    readyOverTime: readyCurve(t0, [...readyAt.values()]),
  };
}

/** null when the API server does not report its CPU (a managed control plane may not). */
function apiServerCpu(before: string, after: string, ready: number): number | null {
  const [a, b] = [processCpuSeconds(before), processCpuSeconds(after)];
  return a === null || b === null ? null : ((b - a) / ready) * 100;
}

const f1 = (x: number | null) => (x === null || Number.isNaN(x) ? 'n/a' : x.toFixed(x >= 100 ? 0 : x >= 10 ? 1 : 2));

/** What is printed per preset, each the median of its runs (null: not measurable for that controller). */
const METRICS: Array<[string, string, (r: RunResult) => number | null]> = [
  ['Ready of N created at once', '', (r) => r.ready],
  ['all Ready after', 's', (r) => r.allReadySeconds],
  ['create → Ready p50', 's', (r) => r.createToReadyMs.p50 / 1000],
  ['create → Ready p90', 's', (r) => r.createToReadyMs.p90 / 1000],
  ['create → Ready p99', 's', (r) => r.createToReadyMs.p99 / 1000],
  ['API writes per issuance', '', (r) => r.perIssuance.apiWrites],
  ['API reads per issuance', '', (r) => r.perIssuance.apiReads],
  ['conflicts (409) per issuance', '', (r) => r.perIssuance.conflicts],
  ['connections opened per issuance (exact, in-process probe)', '', (r) => r.perIssuance.connectionsOpened],
  [`connections opened per issuance (/proc every ${SAMPLE_MS} ms, lower bound)`, '', (r) => r.perIssuance.connectionsSeen],
  ['peak open connections to the API server', '', (r) => r.peakOpenConnections],
  ['CPU seconds per 100 issuances', 's', (r) => r.cpuSecondsPer100],
  ['API server CPU seconds per 100 issuances (incl. the N creates)', 's', (r) => r.apiServerCpuSecondsPer100],
  [`RSS after ${IDLE_S} s idle`, 'MiB', (r) => r.idle.rssMiB],
  [`API writes in the ${IDLE_S} s idle (whole API server, Leases aside)`, '', (r) => r.idle.apiWrites],
  [`Lease writes in the ${IDLE_S} s idle (the API server's own, leader election)`, '', (r) => r.idle.leaseWrites],
  [`API reads in the ${IDLE_S} s idle (whole API server)`, '', (r) => r.idle.apiReads],
];

function medians(results: RunResult[]): Array<number | null> {
  return METRICS.map(([, , pick]) => { const xs = results.map(pick).filter((x): x is number => x !== null); return xs.length ? median(xs) : null; });
}

const presets = (env.BENCH_PRESETS ?? 'agent-identity-operator').split(',').map((p) => p.trim()).filter(Boolean).map((p) => {
  const preset = PRESETS[p];
  if (!preset) throw new Error(`unknown preset ${p}; known: ${Object.keys(PRESETS).join(', ')}`);
  return preset;
});
if (!env.BENCH_KUBECONFIG) resolveBinaries();
console.log(`# side-by-side benchmark (${new Date().toISOString()}, node ${process.version}): N=${N}, ${RUNS} run(s) of ${presets.map((p) => p.name).join(', ')}, alternating`);
const results: RunResult[] = [];
const skipped = new Set<string>();
for (const p of presets) {
  const why = p.missing(!env.BENCH_KUBECONFIG);
  if (why) { console.log(`${p.name}: skipped: ${why}`); skipped.add(p.name); }
}
for (let run = 1; run <= RUNS; run++) {
  for (const preset of presets) {
    if (skipped.has(preset.name)) continue;
    const r = await runOnce(preset, run);
    if (r) results.push(r); else skipped.add(preset.name);
  }
}
mkdirSync(OUT, { recursive: true });
const measured = presets.filter((p) => !skipped.has(p.name));
const table = measured.map((p) => medians(results.filter((r) => r.preset === p.name)));
const width = Math.max(...METRICS.map(([label]) => label.length));
const cell = (v: number | null, unit: string) => `${f1(v)}${unit && v !== null ? ` ${unit}` : ''}`.padEnd(26);
const ratio = (i: number) => { const a = table[0]![i] ?? null, b = table[1]![i] ?? null; return a !== null && b !== null && b !== 0 ? `${(a / b).toFixed(2)}×` : 'n/a'; };
console.log(`\n## medians of ${RUNS} run(s), N=${N}`);
console.log(`${''.padEnd(width)}  ${measured.map((p) => p.name.padEnd(26)).join('')}${measured.length === 2 ? `ratio (${measured[0]!.name} / ${measured[1]!.name})` : ''}`);
METRICS.forEach(([label, unit], i) => console.log(`${label.padEnd(width)}  ${table.map((t) => cell(t[i]!, unit)).join('')}${measured.length === 2 ? ratio(i) : ''}`));
const oursAt = measured.findIndex((p) => p === agentIdentityOperator);
if (oursAt >= 0) {
  const ours = results.filter((r) => r.preset === measured[oursAt]!.name);
  const med = (pick: (r: RunResult) => number | null) => { const xs = ours.map(pick).filter((x): x is number => x !== null); return xs.length ? median(xs) : null; };
  const rows = targetRows({
    n: N, flags: env.AIO_FLAGS?.trim() ?? '',
    p50s: med((r) => r.createToReadyMs.p50)! / 1000, p99s: med((r) => r.createToReadyMs.p99)! / 1000, allReadyS: med((r) => r.allReadySeconds)!,
    writesPerIssuance: med((r) => r.perIssuance.apiWrites)!, connectionsPerIssuance: med((r) => r.perIssuance.connectionsOpened), idleWrites: med((r) => r.idle.apiWrites)!,
    cpuPer100s: med((r) => r.cpuSecondsPer100)!, rssMiB: med((r) => r.idle.rssMiB)!,
  });
  console.log(`\n## issue 12's targets, ${measured[oursAt]!.name}${env.AIO_FLAGS ? ` (flags: ${env.AIO_FLAGS})` : ' (default flags)'}`);
  const tw = Math.max(...rows.map((r) => r.target.length));
  for (const r of rows) console.log(`${r.target.padEnd(tw)}  ${r.measured.padEnd(10)}  ${r.verdict}`);
}
const series: Series[] = results.map((r) => ({ label: r.preset, points: r.readyOverTime }));
writeFileSync(join(OUT, 'ready-over-time.svg'), readyChart(`Ready over time, N=${N} created at once (${results.length} run(s))`, series));
writeFileSync(join(OUT, 'results.json'), JSON.stringify({ at: new Date().toISOString(), node: process.version, n: N, runs: RUNS, idleSeconds: IDLE_S,
  medians: Object.fromEntries(measured.map((p, i) => [p.name, Object.fromEntries(METRICS.map(([label, unit], j) => [unit ? `${label} (${unit})` : label, table[i]![j]]))])), skipped: [...skipped], results }, null, 2) + '\n');
console.log(`\nwritten: ${join(OUT, 'results.json')}\n         ${join(OUT, 'ready-over-time.svg')}`);
