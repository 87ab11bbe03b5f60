// The proxy's decision metrics. Labels are bounded sets only (decision,
// protocol, a reason token): peer IDs and tool names would make one series
// per caller and per tool, so they live in the audit line instead.
import { Counter, Histogram, Registry } from 'prom-client';
import type { AuditRecord } from './record.ts';
import type { DropReason } from './sink.ts';

/** Seconds. The target is 0.2 ms at p99 for a 2 KB tools/call; the upper buckets show a regression. */
const DECISION_BUCKETS = [0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05];

// A reason is a token the enforcement chose (PolicyDenied, ToolNotAllowed…); anything else is
// folded into one series, so a bug upstream cannot turn the label into a free-text field.
const REASON = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
export const reasonLabel = (reason: string | undefined) => (reason === undefined ? 'Unspecified' : REASON.test(reason) ? reason : 'Other');

export class DecisionMetrics {
  readonly registry = new Registry();

  readonly requests = new Counter({
    name: 'agentidentity_proxy_requests_total',
    help: 'Authorization decisions of the identity proxy, by decision (allow, deny) and protocol (http, mcp, a2a).',
    labelNames: ['decision', 'protocol'], registers: [this.registry],
  });
  readonly denied = new Counter({
    name: 'agentidentity_proxy_denied_total',
    help: 'Calls the identity proxy denied, by reason.',
    labelNames: ['reason'], registers: [this.registry],
  });
  readonly decisionDuration = new Histogram({
    name: 'agentidentity_proxy_decision_duration_seconds',
    help: 'Time the identity proxy spent deciding one call (not the upstream\'s answer), by protocol.',
    labelNames: ['protocol'], buckets: DECISION_BUCKETS, registers: [this.registry],
  });
  readonly auditDropped = new Counter({
    name: 'agentidentity_proxy_audit_dropped_total',
    help: 'Audit lines not written, by reason: buffer_full (the writer fell behind), write_error (the file or stdout refused them).',
    labelNames: ['reason'], registers: [this.registry],
  });

  constructor() {
    // Present at 0 from the start, so a rate() or an alert has a series before the first drop.
    for (const reason of ['buffer_full', 'write_error'] satisfies DropReason[]) this.auditDropped.inc({ reason }, 0);
  }

  record(r: AuditRecord): void {
    this.requests.inc({ decision: r.decision, protocol: r.transport });
    if (r.decision === 'deny') this.denied.inc({ reason: reasonLabel(r.reason) });
    this.decisionDuration.observe({ protocol: r.transport }, r.latencyMs / 1000);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
