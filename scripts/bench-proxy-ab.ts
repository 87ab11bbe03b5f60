// Two or more builds of the identity proxy (or node flags, or environments)
// compared in one window, interleaved, on the rig of `make bench-proxy`: for
// each variant a fresh proxy pair, then 1k requests/s (added latency against
// direct, measured just before in the same run), then a closed loop (the
// proxies' CPU per request). On a shared machine only such side-by-side
// ratios mean much. Printed, never asserted. Usage:
//   node scripts/bench-proxy-ab.ts 'NAME|CLI[|NODE FLAGS[|ENV=V,ENV=V]]' ...
//   e.g. 'main|/tmp/main/dist/cli/main.js|--max-semi-space-size=1' 'this|dist/cli/main.js|--max-semi-space-size=1'
// (a build of another commit: git archive COMMIT | tar -x -C DIR; link node_modules; tsc -p tsconfig.build.json).
// Settings: BENCH_AB_RUNS (3), BENCH_AB_SECONDS per loop (4), BENCH_AB_IDLE_SECONDS before the idle RSS (3).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PeerProcess } from '../test/support/sdk-process.ts';
import { closedLoop, openLoop } from './bench-proxy-load.ts';
import { CALLEE_HOST, cpuSeconds, forwardProxyTarget, makeRig, plainTarget, type Rig, rssOf, sampleRss, startApp } from './bench-proxy-rig.ts';
import { median, quantile } from './bench-stats.ts';

const RUNS = Number(process.env.BENCH_AB_RUNS ?? 3);
const SECONDS = Number(process.env.BENCH_AB_SECONDS ?? 4);
const IDLE_S = Number(process.env.BENCH_AB_IDLE_SECONDS ?? 3);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Variant { name: string; cli: string; flags: string[]; env: Record<string, string> }
interface Row { p50: number; p99: number; rps: number; cpuMsPer1k: number; perCpuSecond: number; idle: number[]; at1k: number[]; failed: number }

const variants: Variant[] = process.argv.slice(2).map((arg) => {
  const [name, cli, flags = '', env = ''] = arg.split('|');
  if (!name || !cli) throw new Error(`expected NAME|CLI[|FLAGS[|ENV]], got "${arg}"`);
  return { name, cli: resolve(cli), flags: flags.split(/\s+/).filter(Boolean), env: Object.fromEntries(env.split(',').filter(Boolean).map((kv) => kv.split('=') as [string, string])) };
});
if (variants.length === 0) throw new Error('name at least one variant: NAME|CLI[|NODE FLAGS[|ENV=V,...]]');

async function proxy(v: Variant, args: string[]) {
  const p = new PeerProcess([...v.flags, v.cli, 'proxy', ...args], { command: process.execPath, env: { ...process.env, ...v.env } });
  const listening = await p.waitFor('listening');
  const port = (side: unknown) => (side as { port: number } | undefined)?.port;
  return { p, pid: p.child.pid!, inbound: port(listening.inbound), outbound: port(listening.outbound) };
}

async function measure(v: Variant, rig: Rig, appPort: number, direct: { p50: number; p99: number }): Promise<Row> {
  const inbound = await proxy(v, [`--identity-dir=${rig.calleeDir}`, '--inbound-address=127.0.0.1', '--inbound-port=0', `--app-port=${appPort}`]);
  const outbound = await proxy(v, [`--identity-dir=${rig.callerDir}`, '--outbound-port=0', `--resolve=${CALLEE_HOST}=127.0.0.1`]);
  try {
    await sleep(IDLE_S * 1000);
    const pids = [outbound.pid, inbound.pid];
    const idle = pids.map(rssOf);
    const target = forwardProxyTarget(v.name, outbound.outbound!, CALLEE_HOST, inbound.inbound!);
    await openLoop(target, 1000, 1);
    const sampler = sampleRss(pids);
    const open = await openLoop(target, 1000, SECONDS);
    const at1k = sampler.stop();
    const cpu = () => pids.reduce((s, pid) => s + cpuSeconds(pid), 0);
    const before = cpu();
    const closed = await closedLoop(target, 32, SECONDS);
    const spent = cpu() - before;
    return {
      p50: quantile([...open.latenciesMs], 0.5) - direct.p50, p99: quantile([...open.latenciesMs], 0.99) - direct.p99,
      rps: closed.ok / closed.seconds, cpuMsPer1k: (spent * 1e6) / closed.ok, perCpuSecond: closed.ok / spent, idle, at1k, failed: open.failed + closed.failed,
    };
  } finally {
    await Promise.all([inbound.p.stop(), outbound.p.stop()]);
  }
}

const dir = await mkdtemp(join(tmpdir(), 'bench-proxy-ab-'));
const rows = new Map<string, Row[]>(variants.map((v) => [v.name, []]));
try {
  const rig = await makeRig(dir);
  const app = await startApp('plain');
  for (let run = 1; run <= RUNS; run++) {
    const plain = plainTarget('direct', app.port);
    await openLoop(plain, 1000, 1);
    const d = await openLoop(plain, 1000, SECONDS);
    const direct = { p50: quantile([...d.latenciesMs], 0.5), p99: quantile([...d.latenciesMs], 0.99) };
    for (const v of variants) {
      const row = await measure(v, rig, app.port, direct);
      rows.get(v.name)!.push(row);
      console.log(`${v.name} run ${run}: added p50 ${row.p50.toFixed(3)} p99 ${row.p99.toFixed(3)} ms @1k; ${row.rps.toFixed(0)} req/s; ${row.cpuMsPer1k.toFixed(0)} CPU ms / 1k; ${row.failed} failed`);
    }
  }
  await app.stop();
} finally {
  await rm(dir, { recursive: true, force: true });
}
console.log(`\nMedians of ${RUNS}: added latency @1k vs direct; closed loop of 32; CPU of both proxies; RSS outbound / inbound (MiB).`);
for (const [name, rs] of rows) {
  const m = (f: (r: Row) => number, d = 0) => median(rs.map(f)).toFixed(d);
  console.log(`${name}: added p50 ${m((r) => r.p50, 3)} / p99 ${m((r) => r.p99, 3)} ms; ${m((r) => r.rps)} req/s; proxies ${m((r) => r.cpuMsPer1k)} CPU ms per 1k (${m((r) => r.perCpuSecond)} req per CPU s); ` +
    `RSS idle ${m((r) => r.idle[0]!)} / ${m((r) => r.idle[1]!)}, @1k ${m((r) => r.at1k[0]!)} / ${m((r) => r.at1k[1]!)}; failed ${rs.reduce((s, r) => s + r.failed, 0)}`);
}
process.exit(0);
