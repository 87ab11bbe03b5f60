// The identity proxy's memory, as the sidecar runs it (dist, `make build`
// first): RSS of the outbound and the inbound proxy after an idle wait, and
// the highest RSS while a closed loop goes through both. Printed, never
// asserted; the medians of PROXY_RSS_RUNS fresh pairs. Settings (environment):
//   PROXY_NODE_FLAGS     node flags for the proxies, e.g. "--max-semi-space-size=1"
//   PROXY_RSS_RUNS       pairs started one after another (default 3)
//   PROXY_RSS_IDLE_SECONDS  idle wait before the idle reading (default 10)
//   PROXY_RSS_LOAD_SECONDS  closed loop, 32 callers (default 10)
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closedLoop } from './bench-proxy-load.ts';
import { CALLEE_HOST, forwardProxyTarget, makeRig, rssOf, sampleRss, startApp, startProxyPair } from './bench-proxy-rig.ts';
import { median } from './bench-stats.ts';

const env = process.env;
const FLAGS = (env.PROXY_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
const RUNS = Number(env.PROXY_RSS_RUNS ?? 3);
const IDLE_S = Number(env.PROXY_RSS_IDLE_SECONDS ?? 10);
const LOAD_S = Number(env.PROXY_RSS_LOAD_SECONDS ?? 10);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const dir = await mkdtemp(join(tmpdir(), 'proxy-rss-'));
const rows: Array<{ idle: number[]; load: number[]; rps: number }> = [];
try {
  const rig = await makeRig(dir);
  const app = await startApp('plain');
  for (let run = 1; run <= RUNS; run++) {
    const pair = await startProxyPair(rig, app.port, FLAGS);
    try {
      await sleep(IDLE_S * 1000);
      const idle = [rssOf(pair.outbound.pid), rssOf(pair.inbound.pid)];
      const sampler = sampleRss([pair.outbound.pid, pair.inbound.pid]);
      const r = await closedLoop(forwardProxyTarget('proxies', pair.outbound.outboundPort!, CALLEE_HOST, pair.inbound.inboundPort!), 32, LOAD_S);
      const load = sampler.stop();
      rows.push({ idle, load, rps: r.ok / r.seconds });
      console.log(`run ${run}: idle outbound ${idle[0]!.toFixed(1)} MiB, inbound ${idle[1]!.toFixed(1)} MiB; under load outbound ${load[0]!.toFixed(1)} MiB, inbound ${load[1]!.toFixed(1)} MiB (${(r.ok / r.seconds).toFixed(0)} req/s, ${r.failed} failed)`);
    } finally {
      await pair.stop();
    }
  }
  await app.stop();
} finally {
  await rm(dir, { recursive: true, force: true });
}
const med = (f: (r: (typeof rows)[number]) => number) => median(rows.map(f)).toFixed(1);
console.log(`proxy RSS, median of ${rows.length} (node flags: ${FLAGS.join(' ') || 'none'}): idle outbound ${med((r) => r.idle[0]!)} MiB, inbound ${med((r) => r.idle[1]!)} MiB; ` +
  `under load outbound ${med((r) => r.load[0]!)} MiB, inbound ${med((r) => r.load[1]!)} MiB; ${med((r) => r.rps)} req/s`);
