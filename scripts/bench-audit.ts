// What recordDecision costs the request path: the time of one call (count
// the metrics, format the line, queue it), measured call by call, with the
// audit stream off, to /dev/null and to a file; and what was dropped. Each
// "request" yields to the event loop after 10 decisions, as requests do, so
// the thread pool gets to write. Printed, never asserted.
//   node scripts/bench-audit.ts [calls=200000]
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openAudit, type AuditLog } from '../src/audit/index.ts';
import type { AuditRecord } from '../src/audit/record.ts';
import { quantile } from './bench-stats.ts';

const CALLS = Number(process.argv[2] ?? 200_000);
const dir = mkdtempSync(join(tmpdir(), 'bench-audit-'));
const record = (i: number): AuditRecord => ({
  time: new Date().toISOString(), direction: 'inbound', local: 'spiffe://cluster.local/ns/agents/agent/tools',
  peer: 'spiffe://cluster.local/ns/agents/agent/orchestrator', transport: 'mcp', method: 'POST', path: '/mcp',
  rpcMethod: 'tools/call', tool: i % 10 ? 'search' : 'delete_all', decision: i % 10 ? 'allow' : 'deny', rule: i % 10 ? 0 : null,
  reason: i % 10 ? undefined : 'ToolNotAllowed', latencyMs: 0.05,
});
const tick = () => new Promise((r) => setImmediate(r));

async function run(name: string, log: AuditLog): Promise<void> {
  const audit = openAudit(log, () => undefined);
  const samples = new Float64Array(CALLS);
  const start = performance.now();
  for (let i = 0; i < CALLS; i++) {
    const r = record(i);
    const t0 = process.hrtime.bigint();
    audit.recordDecision(r);
    samples[i] = Number(process.hrtime.bigint() - t0) / 1000;
    if (i % 10 === 9) await tick();
  }
  await audit.close();
  const seconds = (performance.now() - start) / 1000;
  const text = await audit.metrics.text();
  const drops = [...text.matchAll(/^agentidentity_proxy_audit_dropped_total\{reason="(\w+)"\} (\d+)$/gm)].map((m) => [m[1]!, Number(m[2])] as const);
  const dropped = drops.map(([reason, n]) => `${reason} ${n}`).join(', ');
  const written = CALLS - drops.reduce((a, [, n]) => a + n, 0);
  const xs = [...samples];
  const size = log.to === 'file' && log.path !== '/dev/null' ? `, ${(statSync(log.path).size / written).toFixed(0)} bytes/line written` : '';
  console.log(`${name.padEnd(10)} per call p50 ${quantile(xs, 0.5).toFixed(2)} µs, p99 ${quantile(xs, 0.99).toFixed(2)} µs, max ${quantile(xs, 1).toFixed(0)} µs; ${(CALLS / seconds).toFixed(0)} decisions/s with the loop's turns; dropped: ${dropped}${size}`);
}

try {
  console.log(`${CALLS} decisions, one event-loop turn per 10`);
  await run('off', { to: 'off' });
  await run('/dev/null', { to: 'file', path: '/dev/null' });
  await run('file', { to: 'file', path: join(dir, 'audit.log') });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
