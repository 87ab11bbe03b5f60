// When a leaf should be renewed. Pure: derived only from the certificate and
// the spec, so the schedule re-derives identically after a restart.
import { createHash } from 'node:crypto';
import { parseDuration } from '../api/duration.ts';
import { DEFAULT_DURATION } from '../api/defaults.ts';
import { issuedAt, type Validity } from '../pki/validity.ts';
import type { AgentIdentitySpec } from '../api/types.ts';

/** At most this share of the lifetime (and at most MAX_JITTER_MS) is taken off the renewal time. */
const JITTER_FRACTION = 0.05;
const MAX_JITTER_MS = 3_600_000;

/**
 * renewBefore → notAfter − renewBefore; renewBeforePercentage → notAfter − p% of
 * the lifetime; default → 2/3 through the lifetime. A renewBefore that is not
 * shorter than the lifetime (e.g. notAfter was clamped to the CA's) falls back
 * to the default rather than renewing in a loop. Jitter spreads identities
 * issued together; it is seeded by the serial so it is stable across restarts
 * and only ever moves renewal earlier.
 */
export function renewalTime(spec: Pick<AgentIdentitySpec, 'renewBefore' | 'renewBeforePercentage' | 'duration'>, v: Validity & { serialNumber: string }): Date {
  // notBefore is back-dated for clock skew; the lifetime counts from issuance:
  // notAfter − duration, unless notAfter was clamped to the CA's, and then the
  // issuance time recovered from the window.
  const asked = parseDuration(spec.duration ?? DEFAULT_DURATION);
  const start = Math.max(issuedAt(v).getTime(), v.notAfter.getTime() - asked);
  const end = v.notAfter.getTime();
  const lifetime = end - start;
  let at = start + (lifetime * 2) / 3;
  if (spec.renewBefore !== undefined) {
    const before = parseDuration(spec.renewBefore);
    if (before > 0 && before < lifetime) at = end - before;
  } else if (spec.renewBeforePercentage !== undefined) {
    at = end - (lifetime * spec.renewBeforePercentage) / 100;
  }
  const jitterSpan = Math.min(lifetime * JITTER_FRACTION, MAX_JITTER_MS);
  return new Date(Math.max(start, Math.floor(at - jitterSpan * unitHash(v.serialNumber))));
}

/** A stable number in [0, 1) from a string: spreads renewals by serial, and rotation re-issuance by identity UID. */
export function unitHash(s: string): number {
  return createHash('sha256').update(s).digest().readUInt32BE(0) / 2 ** 32;
}
