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

/**
 * 'low' is bulk work: one change fanning out to many keys, a resync, the
 * first pass after a start. It waits behind every key queued 'normal' (an
 * object's own change), as controller-runtime's priority queue does, so a new
 * identity is not queued behind a root rotation's 10,000 bundle refreshes.
 */
export type Priority = 'normal' | 'low';
const PQ_PRIORITY: Record<Priority, number> = { normal: 0, low: -1 };
// p-queue's own ids are '1', '2', …: ours never look like one.
const taskId = (key: string) => `key:${key}`;

// Node's timers fire after 1 ms for any delay above this (and warn).
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A key's deadline in the heap; stale once the key's deadline in #delayed differs (moved earlier, forgotten, fired). */
interface Due {
  deadline: number;
  key: string;
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
  /** The waiting keys queued 'low'. */
  readonly #low = new Set<string>();
  // Keys added while processing: queued again once their reconcile ends, at the highest priority asked for.
  readonly #dirty = new Map<string, Priority>();
  /**
   * Delayed keys and their deadlines, ordered by a min-heap under one timer: a timer per key
   * cost a Timeout and, for every distinct delay, a timer list of its own (one each per
   * identity waiting for its renewal: ~200 B per identity, 2,000 of each at 2,000 identities).
   */
  readonly #delayed = new Map<string, number>();
  readonly #heap: Due[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
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

  add(key: string, priority: Priority = 'normal'): void {
    if (this.#shuttingDown) return;
    if (this.#waiting.has(key)) {
      // Its own change outranks the bulk work it was waiting with.
      // (A waiting key's task is always still in p-queue's line: #process takes it out of #waiting as it starts.)
      if (priority === 'normal' && this.#low.delete(key)) this.#pq.setPriority(taskId(key), PQ_PRIORITY.normal);
      return;
    }
    if (this.#processing.has(key)) {
      if (this.#dirty.get(key) !== 'normal') this.#dirty.set(key, priority);
      return;
    }
    this.#waiting.add(key);
    if (priority === 'low') this.#low.add(key);
    // Not awaited, and safe to leave so: #process never rejects, and the
    // AbortError of a task that shutdown() clears is marked handled by p-queue.
    void this.#pq.add(() => this.#process(key), { priority: PQ_PRIORITY[priority], id: taskId(key) });
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
    if (existing !== undefined && existing <= deadline) return;
    this.#delayed.set(key, deadline);
    this.#push({ deadline, key });
    // Entries left stale by earlier deadlines and forgotten keys are dropped once they outnumber the live ones.
    if (this.#heap.length > 2 * this.#delayed.size + 64) this.#rebuild();
    this.#arm();
  }

  forget(key: string): void {
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
    // A key already due whose timer has not fired yet (a busy event loop fires it late) still counts: 1 ms.
    for (const deadline of this.#delayed.values()) if (deadline - now <= withinMs) last = Math.max(last, deadline - now, 1);
    return last;
  }

  drain(): Promise<void> {
    if (this.depth() === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  async shutdown(): Promise<void> {
    this.#shuttingDown = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
    this.#delayed.clear();
    this.#heap.length = 0;
    this.#pq.clear();
    this.#waiting.clear();
    this.#low.clear();
    this.#dirty.clear();
    this.#reportDepth();
    // Waits for the reconciles in flight to end.
    await this.#pq.onIdle();
  }

  /**
   * Adds every key whose deadline passed, then sets the one timer for the earliest left. A timer
   * is never longer than MAX_TIMER_MS and the clock is checked each time it fires, so a 40-day
   * delay fires at 40 days rather than after 1 ms.
   */
  #arm(): void {
    const now = Date.now();
    for (let top = this.#heap[0]; top && top.deadline <= now; top = this.#heap[0]) {
      this.#pop();
      if (this.#delayed.get(top.key) !== top.deadline) continue;
      this.#delayed.delete(top.key);
      this.add(top.key);
    }
    while (this.#heap[0] && this.#delayed.get(this.#heap[0].key) !== this.#heap[0].deadline) this.#pop();
    const next = this.#heap[0]?.deadline ?? Infinity;
    if (next === this.#timerAt) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = next;
    if (next === Infinity) return;
    this.#timer = setTimeout(() => { this.#timerAt = Infinity; this.#timer = undefined; this.#arm(); }, Math.min(next - now, MAX_TIMER_MS));
  }

  #push(due: Due): void {
    const h = this.#heap;
    h.push(due);
    for (let i = h.length - 1; i > 0;) {
      const parent = (i - 1) >> 1;
      if (h[parent]!.deadline <= h[i]!.deadline) break;
      [h[parent], h[i]] = [h[i]!, h[parent]!];
      i = parent;
    }
  }

  #pop(): void {
    const h = this.#heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    for (let i = 0; ;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < h.length && h[l]!.deadline < h[m]!.deadline) m = l;
      if (r < h.length && h[r]!.deadline < h[m]!.deadline) m = r;
      if (m === i) break;
      [h[m], h[i]] = [h[i]!, h[m]!];
      i = m;
    }
  }

  #rebuild(): void {
    this.#heap.length = 0;
    for (const [key, deadline] of this.#delayed) this.#push({ deadline, key });
  }

  async #process(key: string): Promise<void> {
    this.#waiting.delete(key);
    this.#low.delete(key);
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
      const again = this.#dirty.get(key);
      if (again) {
        this.#dirty.delete(key);
        this.add(key, again);
      }
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
