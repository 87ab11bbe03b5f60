// AuditRecords for the audit tests: one decision, with what differs given.
import type { AuditRecord } from '../../../src/audit/record.ts';

export const ORCHESTRATOR = 'spiffe://cluster.local/ns/agents/agent/orchestrator';
export const TOOLS = 'spiffe://cluster.local/ns/agents/agent/tools';
export const PLANNER = 'spiffe://cluster.local/ns/agents/agent/planner';

export function decision(over: Partial<AuditRecord> = {}): AuditRecord {
  return {
    time: '2026-12-07T10:00:00.000Z', direction: 'inbound', local: TOOLS, peer: ORCHESTRATOR,
    transport: 'mcp', method: 'POST', path: '/mcp', rpcMethod: 'tools/call', tool: 'search',
    decision: 'allow', rule: 0, latencyMs: 0.04, ...over,
  };
}
