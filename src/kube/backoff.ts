// Exponential retry delay with jitter, like client-go's
// ItemExponentialFailureRateLimiter: per key for failed reconciles (the work
// queue) and per watch for informer restarts. In kube/ because both layers use it.

export interface Backoff {
  baseMs: number;
  maxMs: number;
  /** Fraction the delay moves either way at random; 0.1 unless set. */
  jitter?: number;
}

// client-go's defaults: 5ms, doubling up to 1000s.
export const DEFAULT_BACKOFF: Backoff = { baseMs: 5, maxMs: 1_000_000 };

// ±10%: enough to spread out keys that all failed at once (say, while the
// API server was down) so they do not retry in lockstep.
const DEFAULT_JITTER = 0.1;

/**
 * The delay before retry number `failures` (1 for the first failure):
 * baseMs * 2^(failures-1) with ±jitter (default 10%), never above maxMs.
 * `random` returns a value in [0, 1), as Math.random does.
 */
export function backoffDelay(failures: number, backoff: Backoff, random: () => number = Math.random): number {
  // Math.min before the power keeps a key that fails for weeks from
  // overflowing to Infinity.
  const exponential = Math.min(backoff.baseMs * 2 ** Math.min(failures - 1, 62), backoff.maxMs);
  // Jitter around the capped delay, so retries that all reached the cap
  // still spread out; capped again so maxMs is a true ceiling.
  const jittered = exponential * (1 + (random() * 2 - 1) * (backoff.jitter ?? DEFAULT_JITTER));
  return Math.round(Math.min(jittered, backoff.maxMs));
}
