// What every reconciler reads and reports through. Kind-specific inputs (the
// trust store, listers of other kinds) belong to each reconciler's own deps.
import type { Logger } from 'pino';
import type { Secret, TrustDomain } from '../api/types.ts';
import type { EventSink } from '../kube/events.ts';
import type { Metrics } from './metrics.ts';

export interface ReconcileContext {
  trustDomains: { get(name: string): TrustDomain | undefined };
  secrets: { get(name: string, namespace?: string): Secret | undefined };
  events: EventSink;
  metrics: Metrics;
  log: Logger;
  now: () => Date;
}
