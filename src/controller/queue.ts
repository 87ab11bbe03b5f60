// The work queue between informers and a reconciler, with the guarantees of
// client-go's workqueue: a key waits at most once, never runs twice at the same
// time, retries with per-key backoff, and can be scheduled for later.
// p-queue bounds how many reconciles run at once. Reconcile starts are not
// paced: the API requests a reconcile makes are (kube/transport.ts), so a
// burst of reconciles that write nothing is not held back like writes.
import PQueue from 'p-queue';
import { backoffDelay, DEFAULT_BACKOFF } from '../kube/backoff.ts';
import type { Backoff } from '../kube/backoff.ts';

export interface Result {
  /** Reconcile this key again after this many ms. Ignored unless > 0, as in controller-runtime. */
  requeueAfter?: number;
  /**
   * Done, but something it depends on is not in place yet (reported, not a
   * failure): retry after this key's backoff, as a thrown error would, or
   * sooner if `requeueAfter` says so.
   */
  backoff?: boolean;
}

export type Reconciler = (key: string) => Promise<Result | void>;

export interface WorkQueueOptions {
  /** How many reconciles run at once. */
  concurrency: number;
  /** Per-key retry delay after a thrown error; reset when the key next succeeds. */
  backoff?: Backoff;
  onError?: (key: string, err: unknown, attempt: number, retryInMs: number) => void;
  /** Called with keys waiting + in flight whenever that number changes. */
  onDepth?: (depth: number) => void;
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
    try {
      const result = (await this.#reconcile(key)) ?? {};
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
      this.#processing.delete(key);
      if (this.#dirty.delete(key)) this.add(key);
      this.#reportDepth();
    }
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
