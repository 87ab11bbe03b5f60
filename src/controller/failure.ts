// A reconcile failure with a reason a person can act on, and the one policy
// for it in every controller (kube-rs's error_policy): a metric, a log line,
// a Warning event, the kind's own status, then retry with backoff or wait.
// A transient API error (kube/errors.ts's transientReason) is no failure: a
// lost write race is read again at once, and a 429, 5xx or broken connection
// is retried with backoff, counted but not reported until it persists.
// The message must be safe to put in a status condition, an event and a log
// line: it is built from our own words and API Status messages, never from
// key material.
import type { EventTarget } from '../kube/events.ts';
import { toKubeError, transientReason, type TransientReason } from '../kube/errors.ts';
import type { ReconcileContext } from './context.ts';
import { requeue, type Result } from './queue.ts';

export class ReconcileFailure extends Error {
  readonly reason: string;
  /** Retry soon with backoff (true), or wait for a change to the inputs (false). */
  readonly retry: boolean;
  /** `cause`: the API error behind it, so a transient one is told apart from a lasting one. */
  constructor(reason: string, message: string, opts: { retry?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
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

type Reporting = Pick<ReconcileContext, 'events' | 'metrics' | 'log' | 'now'>;

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
 * A lost write race is looked at again this soon: the watch has usually
 * brought the newer object into the cache by then. Not backed off, since
 * every attempt reads afresh; a conflict needs another writer, so it cannot
 * loop on its own.
 */
export const CONFLICT_REQUEUE_MS = 500;

/**
 * When transient errors of one key are reported after all: after 5 in a row,
 * or once they have gone on for a minute. Fewer would turn an API server's
 * brief 503s or throttling into Warnings on every object it touched; more
 * would hide an outage. With the operator's backoff (1 s doubling) the 5th
 * attempt comes about 15 s after the first.
 */
export const PERSISTS = { attempts: 5, ms: 60_000 };

/**
 * A streak ends when its key has gone this long without a transient error:
 * longer than any retry delay a queue here uses (5 min at most), so a key
 * that keeps failing stays in its streak. Time is the only sign of recovery
 * this policy gets: it hears of errors, never of the success between them.
 */
const STREAK_GAP_MS = 10 * 60_000;

/** Transient errors of one key, none further apart than STREAK_GAP_MS. */
export interface Streak { attempts: number; firstAt: number; lastAt: number }

/** Pure: the streak after one more transient error at `now` (ms). */
export function extendStreak(prev: Streak | undefined, now: number): Streak {
  if (!prev || now - prev.lastAt > STREAK_GAP_MS) return { attempts: 1, firstAt: now, lastAt: now };
  return { attempts: prev.attempts + 1, firstAt: prev.firstAt, lastAt: now };
}

export function persists(s: Streak): boolean {
  return s.attempts >= PERSISTS.attempts || s.lastAt - s.firstAt >= PERSISTS.ms;
}

// Per operator instance (one Metrics each), so two in one process (tests, a
// leader and a follower) do not share streaks. Ended streaks are dropped.
const streaks = new WeakMap<object, Map<string, Streak>>();

function recordStreak(c: Reporting, key: string): Streak {
  const now = c.now().getTime();
  let byKey = streaks.get(c.metrics);
  if (!byKey) streaks.set(c.metrics, (byKey = new Map()));
  for (const [k, s] of byKey) if (now - s.lastAt > STREAK_GAP_MS) byKey.delete(k);
  const streak = extendStreak(byKey.get(key), now);
  byKey.set(key, streak);
  return streak;
}

/** The transient API error `err` is or was built on (a ReconcileFailure's cause), and why it is transient. */
function transientOf(err: unknown): { cause: unknown; reason: TransientReason } | undefined {
  const cause = err instanceof ReconcileFailure ? err.cause : err;
  const reason = cause === undefined ? undefined : transientReason(cause);
  return reason && { cause, reason };
}

/**
 * The queue action for an error a reconcile threw: an action for a settled
 * error or a transient one, a result for a failure that waits, or the
 * failure rethrown so the queue retries the key with its backoff.
 */
export async function errorPolicy(c: Reporting, err: unknown, scope: FailureScope): Promise<Result> {
  const settled = scope.settle?.(err);
  if (settled) return settled;
  let f = failureOf(err, scope.fallbackReason);
  const transient = transientOf(err);
  if (transient) {
    c.metrics.transientErrors.inc({ controller: scope.controller, reason: transient.reason });
    if (transient.reason === 'Conflict') {
      c.log.debug({ key: scope.key, err: f.message }, 'write conflict; reading again');
      return requeue(CONFLICT_REQUEUE_MS);
    }
    const streak = recordStreak(c, `${scope.controller}/${scope.key}`);
    if (!persists(streak)) {
      c.log.info({ key: scope.key, reason: transient.reason, attempt: streak.attempts, err: f.message }, 'transient API error; retrying with backoff');
      return { backoff: true };
    }
    const seconds = Math.round((streak.lastAt - streak.firstAt) / 1000);
    // Its cause stays the API error, so a report can tell a persisting transient error from a lasting one.
    f = new ReconcileFailure(f.reason, `${f.message} (still failing after ${streak.attempts} attempts in ${seconds}s)`, { retry: f.retry, cause: transient.cause });
  }
  await reportFailure(c, scope.controller, scope.key, scope.target, f);
  await scope.report(f).catch((e) => c.log.warn({ key: scope.key, err: toKubeError(e).message }, 'status update failed'));
  if (f.retry) throw f;
  return { outcome: 'error', ...(scope.recheckMs === undefined ? {} : { requeueAfter: scope.recheckMs }) };
}
