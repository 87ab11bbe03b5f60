// A reconcile failure with a reason a person can act on, and the one policy
// for it in every controller (kube-rs's error_policy): a metric, a log line,
// a Warning event, the kind's own status, then retry with backoff or wait.
// The message must be safe to put in a status condition, an event and a log
// line: it is built from our own words and API Status messages, never from
// key material.
import type { EventTarget } from '../kube/events.ts';
import { toKubeError } from '../kube/errors.ts';
import type { ReconcileContext } from './context.ts';
import type { Result } from './queue.ts';

export class ReconcileFailure extends Error {
  readonly reason: string;
  /** Retry soon with backoff (true), or wait for a change to the inputs (false). */
  readonly retry: boolean;
  constructor(reason: string, message: string, opts: { retry?: boolean } = {}) {
    super(message);
    this.name = 'ReconcileFailure';
    this.reason = reason;
    this.retry = opts.retry ?? true;
  }
}

export function failureOf(err: unknown, fallbackReason: string): ReconcileFailure {
  if (err instanceof ReconcileFailure) return err;
  const message = err instanceof Error ? err.message : String(err);
  const reason = (err as { reason?: unknown })?.reason;
  return new ReconcileFailure(typeof reason === 'string' && /^[A-Z][A-Za-z]+$/.test(reason) ? reason : fallbackReason, message);
}

type Reporting = Pick<ReconcileContext, 'events' | 'metrics' | 'log'>;

/** A failed reconcile, told the three ways a person may look: metrics, logs, `kubectl describe`. */
export async function reportFailure(c: Reporting, controller: string, key: string, target: EventTarget, f: ReconcileFailure): Promise<void> {
  c.metrics.reconcileErrors.inc({ controller, reason: f.reason });
  c.log.warn({ key, reason: f.reason, err: f.message }, 'reconcile failed');
  c.events.record(target, 'Warning', f.reason, f.message);
}

/** What one controller adds to the failure policy for the object that failed. */
export interface FailureScope {
  controller: string;
  key: string;
  target: EventTarget;
  /** The reason of an error that names none. */
  fallbackReason: string;
  /** An error that ends the reconcile without being a failure (the object is gone, a lost write race): its action. */
  settle?: (err: unknown) => Result | undefined;
  /** The kind's own report, e.g. its status condition. A failure here is logged, never retried on its own. */
  report: (f: ReconcileFailure) => Promise<void>;
  /** A failure that waits for its inputs to change is looked at again after this long anyway (default: only on a change). */
  recheckMs?: number;
}

/**
 * The queue action for an error a reconcile threw: an action for a settled
 * error, a result for a failure that waits, or the failure rethrown so the
 * queue retries the key with its backoff.
 */
export async function errorPolicy(c: Reporting, err: unknown, scope: FailureScope): Promise<Result> {
  const settled = scope.settle?.(err);
  if (settled) return settled;
  const f = failureOf(err, scope.fallbackReason);
  await reportFailure(c, scope.controller, scope.key, scope.target, f);
  await scope.report(f).catch((e) => c.log.warn({ key: scope.key, err: toKubeError(e).message }, 'status update failed'));
  if (f.retry) throw f;
  return { outcome: 'error', ...(scope.recheckMs === undefined ? {} : { requeueAfter: scope.recheckMs }) };
}
