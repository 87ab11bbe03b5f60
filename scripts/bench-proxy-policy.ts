// What request-level policy adds to a call through both identity proxies:
// a 2 KB MCP tools/call, sent at a fixed rate through the caller's outbound
// proxy to two inbound proxies of the same callee, one whose policy.json only
// names the caller and one that narrows it to the tool `search` (the body is
// then read whole, parsed strictly and decided before it is relayed). Runs
// interleaved; medians of p50 and p99 printed, never asserted. `make
// bench-proxy` runs it as its last section (benchToolsCall); on its own:
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

export interface ToolsCallResult {
  rate: number;
  seconds: number;
  runs: number;
  bodyBytes: number;
  /** Medians over the runs, ms: the callee's policy names the caller (open), or narrows it to tools [search]. */
  open: { p50: number; p99: number };
  narrowed: { p50: number; p99: number };
  /** The report, one line each. */
  lines: string[];
}

export async function benchToolsCall(opts: { rate: number; seconds: number; runs: number }): Promise<ToolsCallResult> {
  const { rate, seconds, runs } = opts;
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
  const lines: string[] = [];
  try {
    for (const t of targets) await openLoop(t, rate, 2); // warm-up: connections, JIT
    for (let run = 0; run < runs; run++) {
      // Alternate which goes first, so a drift in the machine's load does not favour one.
      const order = run % 2 === 0 ? [0, 1] : [1, 0];
      for (const i of order) {
        const t = targets[i]!;
        const r = await openLoop(t, rate, seconds);
        if (r.failed) lines.push(`${t.name}: ${r.failed} failed ${JSON.stringify(r.errors)}`);
        p50s[i]!.push(quantile([...r.latenciesMs], 0.5));
        p99s[i]!.push(quantile([...r.latenciesMs], 0.99));
      }
    }
  } finally {
    await Promise.all([...proxies.map((p) => p.process.stop()), app.stop()]);
    await rm(dir, { recursive: true, force: true });
  }
  const [o, n] = [0, 1].map((i) => ({ p50: median(p50s[i]!), p99: median(p99s[i]!) })) as [ToolsCallResult['open'], ToolsCallResult['narrowed']];
  lines.push(`tools/call of ${body.length} bytes at ${rate}/s through both proxies, ${seconds} s x ${runs} runs (medians):`);
  for (const [i, t] of targets.entries()) lines.push(`  callee's policy ${t.name.padEnd(30)} p50 ${median(p50s[i]!).toFixed(3)} ms   p99 ${median(p99s[i]!).toFixed(3)} ms`);
  lines.push(`  added by the policy: p50 ${(n.p50 - o.p50).toFixed(3)} ms   p99 ${(n.p99 - o.p99).toFixed(3)} ms (target: p99 <= 0.2 ms)`);
  return { rate, seconds, runs, bodyBytes: body.length, open: o, narrowed: n, lines };
}

if (import.meta.main) {
  const env = process.env;
  const r = await benchToolsCall({ rate: Number(env.BENCH_POLICY_RATE ?? 200), seconds: Number(env.BENCH_POLICY_SECONDS ?? 5), runs: Number(env.BENCH_POLICY_RUNS ?? 3) });
  console.log(r.lines.join('\n'));
}
