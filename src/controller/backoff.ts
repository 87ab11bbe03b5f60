// Per-key retry delay for failed reconciles, like client-go's
// ItemExponentialFailureRateLimiter, plus jitter.

export interface Backoff {
  baseMs: number;
  maxMs: number;
}

// client-go's defaults: 5ms, doubling up to 1000s.
export const DEFAULT_BACKOFF: Backoff = { baseMs: 5, maxMs: 1_000_000 };

// ±10%: enough to spread out keys that all failed at once (say, while the
// API server was down) so they do not retry in lockstep.
const JITTER = 0.1;

/**
 * The delay before retry number `failures` (1 for the first failure):
 * baseMs * 2^(failures-1) with ±10% jitter, never above maxMs.
 * `random` returns a value in [0, 1), as Math.random does.
 */
export function backoffDelay(failures: number, backoff: Backoff, random: () => number = Math.random): number {
  // Math.min before the power keeps a key that fails for weeks from
  // overflowing to Infinity.
  const exponential = backoff.baseMs * 2 ** Math.min(failures - 1, 62);
  const jittered = exponential * (1 + (random() * 2 - 1) * JITTER);
  // Capped after the jitter so maxMs is a true ceiling.
  return Math.round(Math.min(jittered, backoff.maxMs));
}
