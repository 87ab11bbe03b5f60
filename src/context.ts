// What every reconciler reads and reports through, and the one way a
// failure is reported: a metric, a log line and a Warning event (the status
// condition is the reconciler's own, since its shape differs per kind).
import type { Logger } from 'pino';
import type { Secret, TrustDomain } from './api/types.ts';
import type { EventSink, EventTarget } from './kube/events.ts';
import type { ReconcileFailure } from './controller/failure.ts';
import type { Metrics } from './metrics.ts';
import type { TrustStore } from './trust/store.ts';

export interface ReconcileContext {
  trustDomains: { get(name: string): TrustDomain | undefined };
  secrets: { get(name: string, namespace?: string): Secret | undefined };
  store: TrustStore;
  events: EventSink;
  metrics: Metrics;
  log: Logger;
  now: () => Date;
}

export async function reportFailure(c: ReconcileContext, controller: string, key: string, target: EventTarget, f: ReconcileFailure): Promise<void> {
  c.metrics.reconciles.inc({ controller, result: 'error' });
  c.metrics.reconcileErrors.inc({ controller, reason: f.reason });
  c.log.warn({ key, reason: f.reason, err: f.message }, 'reconcile failed');
  await c.events.record(target, 'Warning', f.reason, f.message);
}
