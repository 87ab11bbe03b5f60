import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openAudit } from '../../../src/audit/index.ts';
import { reasonLabel } from '../../../src/audit/metrics.ts';
import { decision, ORCHESTRATOR } from './fixtures.ts';

const value = (text: string, series: string) => Number(text.split('\n').find((l) => l.startsWith(`${series} `))?.split(' ')[1]);

describe('recordDecision', () => {
  it('counts by decision and protocol, denials by reason, latency in seconds, and writes one line each', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'audit-')), 'audit.log');
    const audit = openAudit({ to: 'file', path }, () => undefined);
    audit.recordDecision(decision());
    audit.recordDecision(decision({ decision: 'deny', tool: 'delete_all', rule: null, reason: 'ToolNotAllowed', latencyMs: 3 }));
    audit.recordDecision(decision({ transport: 'a2a', rpcMethod: 'tasks/cancel', tool: undefined, decision: 'deny', reason: 'MethodNotAllowed' }));
    await audit.close();
    const text = await audit.metrics.text();
    assert.equal(value(text, 'agentidentity_proxy_requests_total{decision="allow",protocol="mcp"}'), 1);
    assert.equal(value(text, 'agentidentity_proxy_requests_total{decision="deny",protocol="mcp"}'), 1);
    assert.equal(value(text, 'agentidentity_proxy_requests_total{decision="deny",protocol="a2a"}'), 1);
    assert.equal(value(text, 'agentidentity_proxy_denied_total{reason="ToolNotAllowed"}'), 1);
    assert.equal(value(text, 'agentidentity_proxy_decision_duration_seconds_count{protocol="mcp"}'), 2);
    assert.equal(value(text, 'agentidentity_proxy_decision_duration_seconds_bucket{le="0.0025",protocol="mcp"}'), 1, '3 ms is above 2.5 ms');
    assert.equal(value(text, 'agentidentity_proxy_audit_dropped_total{reason="buffer_full"}'), 0, 'present before the first drop');
    // Cardinality: no peer, no tool in any label.
    assert.doesNotMatch(text, /spiffe:|delete_all|search/);
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => [l.peer, l.tool, l.decision]), [[ORCHESTRATOR, 'search', 'allow'], [ORCHESTRATOR, 'delete_all', 'deny'], [ORCHESTRATOR, undefined, 'deny']]);
  });

  it('lines that cannot be written show in agentidentity_proxy_audit_dropped_total', async () => {
    const errors: string[] = [];
    const audit = openAudit({ to: 'file', path: '/dev/full' }, (e) => errors.push(e.message));
    for (let i = 0; i < 10; i++) audit.recordDecision(decision());
    await audit.close();
    assert.equal(value(await audit.metrics.text(), 'agentidentity_proxy_audit_dropped_total{reason="write_error"}'), 10);
    assert.equal(errors.length, 1);
  });

  it('off: metrics only', async () => {
    const audit = openAudit({ to: 'off' }, () => undefined);
    audit.recordDecision(decision());
    await audit.close();
    assert.equal(value(await audit.metrics.text(), 'agentidentity_proxy_requests_total{decision="allow",protocol="mcp"}'), 1);
  });

  it('a reason label is a token; anything else folds into Other', () => {
    assert.equal(reasonLabel('ToolNotAllowed'), 'ToolNotAllowed');
    assert.equal(reasonLabel(undefined), 'Unspecified');
    assert.equal(reasonLabel('tool delete_all is not allowed for spiffe://x'), 'Other');
    assert.equal(reasonLabel('x'.repeat(100)), 'Other');
  });
});
