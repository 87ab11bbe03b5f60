// The audit of the identity proxy: `recordDecision` is what the enforcement
// calls once per decision (the `(r: AuditRecord) => void` sink of its
// options). It counts the decision in the metrics and queues the audit line;
// both are cheap and neither can block or throw into the request path.
import { auditLine } from './line.ts';
import { DecisionMetrics } from './metrics.ts';
import type { AuditRecord } from './record.ts';
import { AuditSink, type AuditLog } from './sink.ts';

export type { AuditRecord, Transport } from './record.ts';
export type { AuditLog } from './sink.ts';
export { DecisionMetrics } from './metrics.ts';

export interface Audit {
  recordDecision(r: AuditRecord): void;
  metrics: DecisionMetrics;
  /** Writes the lines still queued; then closes the file. */
  close(): Promise<void>;
}

/**
 * Opens the audit stream. A file that cannot be opened throws here, at
 * start-up; afterwards nothing throws: what cannot be written is counted in
 * agentidentity_proxy_audit_dropped_total and reported once per failure streak.
 */
export function openAudit(log: AuditLog, onWriteError: (err: Error) => void, maxBufferedBytes?: number): Audit {
  const metrics = new DecisionMetrics();
  const sink = log.to === 'off' ? undefined : new AuditSink(log, {
    maxBufferedBytes,
    onDrop: (lines, reason) => metrics.auditDropped.inc({ reason }, lines),
    onWriteError,
  });
  return {
    metrics,
    recordDecision(r) {
      metrics.record(r);
      sink?.write(auditLine(r));
    },
    close: async () => sink?.close(),
  };
}
