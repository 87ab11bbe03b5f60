// The proxy's metrics listener (--metrics-port) and its audit stream's
// start-up checks, on the real `agent-identity proxy` process. No Kubernetes.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { proxyConfig, startProxy } from '../../src/proxy/index.ts';
import { loadIdentity } from '../../src/sdk/index.ts';
import { startProxyProcess, type ProxyProcess } from '../support/proxy.ts';
import { fileSet, makeTrustDomain, policyFor, writeMountedDir } from '../support/sdk-pki.ts';
import { run } from '../support/sdk-process.ts';

const CLI = new URL('../../src/cli/main.ts', import.meta.url).pathname;
let base: string;
let dir: string;
let proxy: ProxyProcess;

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'proxy-metrics-'));
  const td = await makeTrustDomain();
  const id = await td.issue('tools');
  dir = join(base, 'tools');
  await writeMountedDir(dir, fileSet(id, td.bundlePem, policyFor(id)));
  proxy = await startProxyProcess(['--identity-dir', dir, '--outbound-port', '0', '--metrics-port', '0', '--metrics-address', '127.0.0.1', '--audit-log', join(base, 'audit.log')]);
});

after(async () => {
  await proxy?.process.stop();
  await rm(base, { recursive: true, force: true });
});

describe('agent-identity proxy --metrics-port', () => {
  it('serves the decision metrics and the dropped audit lines in Prometheus text, and /healthz', async () => {
    const res = await fetch(`http://127.0.0.1:${proxy.metricsPort}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await res.text();
    for (const name of ['agentidentity_proxy_requests_total', 'agentidentity_proxy_denied_total', 'agentidentity_proxy_decision_duration_seconds', 'agentidentity_proxy_audit_dropped_total']) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
    }
    assert.match(text, /^agentidentity_proxy_audit_dropped_total\{reason="write_error"\} 0$/m);
    assert.equal((await fetch(`http://127.0.0.1:${proxy.metricsPort}/healthz`)).status, 200);
  });

  it('names the metrics port and the audit destination in its listening line', async () => {
    const listening = proxy.process.events.find((e) => e.event === 'listening')!;
    assert.deepEqual(listening.metrics, { port: proxy.metricsPort });
    assert.equal(listening.audit, join(base, 'audit.log'));
  });

  it('recordDecision, the enforcement\'s sink, counts in /metrics and writes the audit line; close() flushes it', async () => {
    const identity = await loadIdentity({ dir, watch: false });
    const auditPath = join(base, 'in-process.log');
    const proxy = await startProxy(identity, proxyConfig(['--outbound-port', '0', '--metrics-port', '0', '--metrics-address', '127.0.0.1', '--audit-log', auditPath], {}));
    try {
      proxy.recordDecision({
        time: new Date().toISOString(), direction: 'inbound', local: identity.spiffeID, peer: 'spiffe://cluster.local/ns/agents/agent/orchestrator',
        transport: 'mcp', method: 'POST', path: '/mcp', rpcMethod: 'tools/call', tool: 'delete_all', decision: 'deny', rule: null, reason: 'ToolNotAllowed', latencyMs: 0.1,
      });
      const text = await (await fetch(`http://127.0.0.1:${proxy.metricsPort}/metrics`)).text();
      assert.match(text, /^agentidentity_proxy_requests_total\{decision="deny",protocol="mcp"\} 1$/m);
      assert.match(text, /^agentidentity_proxy_denied_total\{reason="ToolNotAllowed"\} 1$/m);
    } finally {
      await proxy.close(0);
      identity.close();
    }
    const lines = (await readFile(auditPath, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as { msg: string; tool: string; decision: string });
    assert.deepEqual(lines.map((l) => [l.msg, l.tool, l.decision]), [['audit', 'delete_all', 'deny']]);
  });

  it('refuses at start-up an audit log it cannot append to, by the flag\'s name', async () => {
    const { code, output } = await run(process.execPath, [CLI, 'proxy', '--identity-dir', dir, '--outbound-port', '0', '--audit-log', join(base, 'missing', 'audit.log')]);
    assert.equal(code, 2);
    assert.match(output, /--audit-log: cannot append to ".*missing\/audit\.log": ENOENT/);
  });
});
