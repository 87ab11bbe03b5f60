// The work queue between informers and a reconciler, with the guarantees of
// client-go's workqueue: a key waits at most once, never runs twice at the same
// time, retries with per-key backoff, and can be scheduled for later. It also
// tells how every reconcile ended (onOutcome), so no reconciler counts itself.
// p-queue bounds how many reconciles run at once. Reconcile starts are not
// paced: the API requests a reconcile makes are (kube/transport.ts), so a
// burst of reconciles that write nothing is not held back like writes.
import PQueue from 'p-queue';
import { backoffDelay, DEFAULT_BACKOFF } from '../kube/backoff.ts';
import type { Backoff } from '../kube/backoff.ts';

/**
 * How a reconcile ended, for agentidentity_reconcile_total:
 *   success  done; a requeueAfter is the next planned look (a renewal, a poll);
 *   requeue  it wrote state or lost a write race and looks again at once;
 *   wait     something it depends on is not in place yet (a TrustDomain loading, a request being answered);
 *   error    it failed (its reason is counted by the error policy that reported it).
 */
export type Outcome = 'success' | 'requeue' | 'wait' | 'error';

export interface Result {
  /** Reconcile this key again after this many ms. Ignored unless > 0, as in controller-runtime. */
  requeueAfter?: number;
  /**
   * Done, but something it depends on is not in place yet (reported, not a
   * failure): retry after this key's backoff, as a thrown error would, or
   * sooner if `requeueAfter` says so.
   */
  backoff?: boolean;
  /** Default: success, or wait with `backoff`; error when the reconcile threw and the error policy names none. */
  outcome?: Outcome;
}

/** Look again in `ms` (at least 1): state was written, or a write lost a race with a stale cache. */
export const requeue = (ms: number): Result => ({ requeueAfter: Math.max(1, ms), outcome: 'requeue' });
/** Nothing to do until something else moves (an event brings the key back), or until `ms` passed. */
export const wait = (ms?: number): Result => ({ ...(ms === undefined ? {} : { requeueAfter: Math.max(1, ms) }), outcome: 'wait' });

export type Reconciler = (key: string) => Promise<Result | void>;

/** What a thrown error means for the key: a result (settled, or a failure that waits), or a rethrow to retry with backoff. */
export type ErrorPolicy = (key: string, err: unknown) => Promise<Result | void>;

export interface WorkQueueOptions {
  /** How many reconciles run at once. */
  concurrency: number;
  /** Per-key retry delay after a thrown error; reset when the key next succeeds. */
  backoff?: Backoff;
  onError?: (key: string, err: unknown, attempt: number, retryInMs: number) => void;
  /** Called with keys waiting + in flight whenever that number changes. */
  onDepth?: (depth: number) => void;
  /** Runs on an error the reconcile threw; default: rethrow (retry with backoff). */
  errorPolicy?: ErrorPolicy;
  /** Called once per reconcile with how it ended. */
  onOutcome?: (outcome: Outcome, key: string) => void;
}

// Node's timers fire after 1 ms for any delay above this (and warn).
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Delayed {
  deadline: number;
  timer: ReturnType<typeof setTimeout>;
}

export class WorkQueue {
  readonly #reconcile: Reconciler;
  readonly #backoff: Backoff;
  readonly #onError: WorkQueueOptions['onError'];
  readonly #onDepth: WorkQueueOptions['onDepth'];
  readonly #errorPolicy: ErrorPolicy | undefined;
  readonly #onOutcome: WorkQueueOptions['onOutcome'];
  readonly #pq: PQueue;
  // A key is in at most one of #waiting and #processing; that is what keeps
  // two reconciles of one key from overlapping.
  readonly #waiting = new Set<string>();
  readonly #processing = new Set<string>();
  // Keys added while processing: queued again once their reconcile ends.
  readonly #dirty = new Set<string>();
  readonly #delayed = new Map<string, Delayed>();
  readonly #failures = new Map<string, number>();
  readonly #idleWaiters: Array<() => void> = [];
  #reportedDepth = 0;
  #shuttingDown = false;

  constructor(reconcile: Reconciler, opts: WorkQueueOptions) {
    this.#reconcile = reconcile;
    this.#backoff = opts.backoff ?? DEFAULT_BACKOFF;
    if (!(this.#backoff.baseMs > 0 && this.#backoff.maxMs >= this.#backoff.baseMs)) {
      throw new RangeError(`backoff needs 0 < baseMs <= maxMs, got ${JSON.stringify(this.#backoff)}`);
    }
    this.#onError = opts.onError;
    this.#onDepth = opts.onDepth;
    this.#errorPolicy = opts.errorPolicy;
    this.#onOutcome = opts.onOutcome;
    this.#pq = new PQueue({ concurrency: opts.concurrency });
  }

  add(key: string): void {
    if (this.#shuttingDown || this.#waiting.has(key)) return;
    if (this.#processing.has(key)) {
      this.#dirty.add(key);
      return;
    }
    this.#waiting.add(key);
    // Not awaited, and safe to leave so: #process never rejects, and the
    // AbortError of a task that shutdown() clears is marked handled by p-queue.
    void this.#pq.add(() => this.#process(key));
    this.#reportDepth();
  }

  addAfter(key: string, delayMs: number): void {
    if (this.#shuttingDown) return;
    if (!(delayMs > 0)) {
      this.add(key);
      return;
    }
    const deadline = Date.now() + delayMs;
    const existing = this.#delayed.get(key);
    if (existing) {
      if (existing.deadline <= deadline) return;
      clearTimeout(existing.timer);
    }
    this.#arm(key, deadline);
  }

  forget(key: string): void {
    const delayed = this.#delayed.get(key);
    if (delayed) clearTimeout(delayed.timer);
    this.#delayed.delete(key);
    this.#failures.delete(key);
  }

  depth(): number {
    return this.#waiting.size + this.#processing.size;
  }

  /** Milliseconds until the last key delayed by at most `withinMs` is added (0: none): lets a caller wait out short delays, not long requeues. */
  dueWithin(withinMs: number): number {
    const now = Date.now();
    let last = 0;
    for (const { deadline } of this.#delayed.values()) if (deadline - now <= withinMs) last = Math.max(last, deadline - now);
    return last;
  }

  drain(): Promise<void> {
    if (this.depth() === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  async shutdown(): Promise<void> {
    this.#shuttingDown = true;
    for (const { timer } of this.#delayed.values()) clearTimeout(timer);
    this.#delayed.clear();
    this.#pq.clear();
    this.#waiting.clear();
    this.#dirty.clear();
    this.#reportDepth();
    // Waits for the reconciles in flight to end.
    await this.#pq.onIdle();
  }

  // Chains timers no longer than MAX_TIMER_MS and checks the clock each time,
  // so a 40-day delay fires at 40 days rather than after 1 ms.
  #arm(key: string, deadline: number): void {
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      this.#delayed.delete(key);
      this.add(key);
      return;
    }
    const timer = setTimeout(() => this.#arm(key, deadline), Math.min(remaining, MAX_TIMER_MS));
    this.#delayed.set(key, { deadline, timer });
  }

  async #process(key: string): Promise<void> {
    this.#waiting.delete(key);
    this.#processing.add(key);
    let outcome: Outcome = 'error';
    try {
      const result = await this.#attempt(key);
      outcome = result.outcome;
      let requeueAfter = result.requeueAfter ?? 0;
      if (result.backoff) {
        const { retryInMs } = this.#backOff(key);
        requeueAfter = requeueAfter > 0 ? Math.min(requeueAfter, retryInMs) : retryInMs;
      } else {
        this.#failures.delete(key);
      }
      if (requeueAfter > 0) this.addAfter(key, requeueAfter);
    } catch (err) {
      const { attempt, retryInMs } = this.#backOff(key);
      // Retry through a timer, not by holding a worker, so a failing key
      // never delays other keys.
      this.addAfter(key, retryInMs);
      this.#notify(() => this.#onError?.(key, err, attempt, retryInMs));
    } finally {
      this.#notify(() => this.#onOutcome?.(outcome, key));
      this.#processing.delete(key);
      if (this.#dirty.delete(key)) this.add(key);
      this.#reportDepth();
    }
  }

  /** The reconcile, and the error policy on what it threw: a result with its outcome, or a throw to back off. */
  #attempt(key: string): Promise<Result & { outcome: Outcome }> {
    return Promise.resolve().then(() => this.#reconcile(key)).then(
      (r) => ({ ...r, outcome: r?.outcome ?? (r?.backoff ? 'wait' : 'success') }),
      async (err: unknown) => {
        if (!this.#errorPolicy) throw err;
        const r = await this.#errorPolicy(key, err);
        return { ...r, outcome: r?.outcome ?? 'error' };
      },
    );
  }

  /** One more attempt for this key, and how long its backoff now is. */
  #backOff(key: string): { attempt: number; retryInMs: number } {
    const attempt = (this.#failures.get(key) ?? 0) + 1;
    this.#failures.set(key, attempt);
    return { attempt, retryInMs: backoffDelay(attempt, this.#backoff) };
  }

  #reportDepth(): void {
    const depth = this.depth();
    if (depth === this.#reportedDepth) return;
    this.#reportedDepth = depth;
    this.#notify(() => this.#onDepth?.(depth));
    if (depth === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }

  // A throwing logging or metrics hook must not corrupt the queue's state.
  #notify(hook: () => void): void {
    try {
      hook();
    } catch {
      // Nothing sensible to report a failing reporter to.
    }
  }
}
