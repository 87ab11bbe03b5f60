// client-go's QPS/burst: a token bucket holding at most `burst` tokens, refilled
// at `qps` per second; every API request takes one. A request that finds the
// bucket empty takes a token from the future and waits until it is due, so
// waiters are served in arrival order and the long-run rate never exceeds qps.

export interface RateLimit {
  /** Tokens added per second. */
  qps: number;
  /** Tokens the bucket holds when full: how many requests may go at once after a quiet spell. */
  burst: number;
}

export class TokenBucket {
  readonly #rate: RateLimit;
  readonly #now: () => number;
  /** Below zero: tokens already promised to waiting requests. */
  #tokens: number;
  #at: number;

  constructor(rate: RateLimit, now: () => number = () => performance.now()) {
    if (!(rate.qps > 0 && Number.isFinite(rate.qps)) || !(rate.burst >= 1)) {
      throw new RangeError(`a rate limit needs qps > 0 and burst >= 1, got ${JSON.stringify(rate)}`);
    }
    this.#rate = rate;
    this.#now = now;
    this.#tokens = rate.burst;
    this.#at = now();
  }

  /** Takes a token: how many ms the caller must wait before using it (0: go now). */
  take(): number {
    const now = this.#now();
    this.#tokens = Math.min(this.#rate.burst, this.#tokens + ((now - this.#at) * this.#rate.qps) / 1000);
    this.#at = now;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : (-this.#tokens * 1000) / this.#rate.qps;
  }
}
