// What request-level policy adds to a call through both identity proxies:
// a 2 KB MCP tools/call, sent at a fixed rate through the caller's outbound
// proxy to two inbound proxies of the same callee, one whose policy.json only
// names the caller and one that narrows it to the tool `search` (the body is
// then read whole, parsed strictly and decided before it is relayed). Runs
// interleaved; medians of p50 and p99 printed, never asserted.
//   node scripts/bench-proxy-policy.ts   (BENCH_POLICY_RATE=200 BENCH_POLICY_SECONDS=5 BENCH_POLICY_RUNS=3)
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PolicyDocument } from '../src/api/documents.ts';
import { agentID, fileSet, makeTrustDomain, policyFor, writeMountedDir } from '../test/support/sdk-pki.ts';
import { startProxyProcess } from '../test/support/proxy.ts';
import { openLoop, type Target } from './bench-proxy-load.ts';
import { CALLEE_HOST, forwardProxyTarget, startApp } from './bench-proxy-rig.ts';
import { median, quantile } from './bench-stats.ts';

const RATE = Number(process.env.BENCH_POLICY_RATE ?? 200);
const SECONDS = Number(process.env.BENCH_POLICY_SECONDS ?? 5);
const RUNS = Number(process.env.BENCH_POLICY_RUNS ?? 3);

const dir = await mkdtemp(join(tmpdir(), 'bench-proxy-policy-'));
const td = await makeTrustDomain();
const caller = await td.issue('caller');
const callee = await td.issue('callee', 'agents', [CALLEE_HOST]);
const allowCaller = { spiffeID: agentID('caller'), rule: 'allow[0]: agent agents/caller' };
const open: PolicyDocument = policyFor(callee, { allow: [allowCaller] });
const narrowed: PolicyDocument = { ...open, version: 2, allow: [{ ...allowCaller, rules: [0] }], narrowings: [{ index: 0, rule: allowCaller.rule, mcp: { tools: ['search'] } }] };
const callerPolicy: PolicyDocument = { ...policyFor(caller), egress: { mode: 'TrustDomain', allow: [], destinations: [{ host: CALLEE_HOST, spiffeID: agentID('callee') }] } };
await writeMountedDir(join(dir, 'caller'), fileSet(caller, td.bundlePem, callerPolicy));
await writeMountedDir(join(dir, 'open'), fileSet(callee, td.bundlePem, open));
await writeMountedDir(join(dir, 'narrowed'), fileSet(callee, td.bundlePem, narrowed));

const app = await startApp('plain');
const inbound = (name: string) => startProxyProcess([`--identity-dir=${join(dir, name)}`, '--inbound-address=127.0.0.1', '--inbound-port=0', `--app-port=${app.port}`]);
const proxies = [await inbound('open'), await inbound('narrowed'), await startProxyProcess([`--identity-dir=${join(dir, 'caller')}`, '--outbound-port=0', `--resolve=${CALLEE_HOST}=127.0.0.1`])];
const outboundPort = proxies[2]!.outboundPort!;

const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'search', arguments: { query: 'x'.repeat(1900), limit: 10 } } }));
const target = (name: string, port: number): Target => {
  const t = forwardProxyTarget(name, outboundPort, CALLEE_HOST, port);
  return { ...t, body, options: { ...t.options, headers: { ...t.options.headers, 'content-type': 'application/json', 'content-length': String(body.length) } } };
};
const targets = [target('names the caller', proxies[0]!.inboundPort!), target('narrows it to tools [search]', proxies[1]!.inboundPort!)];

const p50s: number[][] = targets.map(() => []);
const p99s: number[][] = targets.map(() => []);
try {
  for (const t of targets) await openLoop(t, RATE, 2); // warm-up: connections, JIT
  for (let run = 0; run < RUNS; run++) {
    // Alternate which goes first, so a drift in the machine's load does not favour one.
    const order = run % 2 === 0 ? [0, 1] : [1, 0];
    for (const i of order) {
      const t = targets[i]!;
      const r = await openLoop(t, RATE, SECONDS);
      if (r.failed) console.log(`${t.name}: ${r.failed} failed`, r.errors);
      p50s[i]!.push(quantile([...r.latenciesMs], 0.5));
      p99s[i]!.push(quantile([...r.latenciesMs], 0.99));
    }
  }
  console.log(`tools/call of ${body.length} bytes at ${RATE}/s through both proxies, ${SECONDS} s x ${RUNS} runs (medians):`);
  for (const [i, t] of targets.entries()) console.log(`  callee's policy ${t.name.padEnd(30)} p50 ${median(p50s[i]!).toFixed(3)} ms   p99 ${median(p99s[i]!).toFixed(3)} ms`);
  console.log(`  added by the policy: p50 ${(median(p50s[1]!) - median(p50s[0]!)).toFixed(3)} ms   p99 ${(median(p99s[1]!) - median(p99s[0]!)).toFixed(3)} ms (target: p99 <= 0.2 ms)`);
} finally {
  await Promise.all([...proxies.map((p) => p.process.stop()), app.stop()]);
  await rm(dir, { recursive: true, force: true });
}
