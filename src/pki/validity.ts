// The notBefore/notAfter window of a certificate being issued.
import type { X509Certificate } from '@peculiar/x509';
import { PkiError } from './errors.ts';

/** A certificate's validity window. */
export interface Validity {
  notBefore: Date;
  notAfter: Date;
}

/**
 * How far notBefore is set before "now". Nodes in a cluster are NTP-synced to
 * within a few seconds; 30 s absorbs that skew several times over, so a peer
 * whose clock runs behind the operator's accepts a fresh certificate at once,
 * while the window stays within a rounding error of the requested duration.
 */
export const DEFAULT_BACKDATE_MS = 30_000;

// X.509 times have whole-second precision; rounding here makes the returned
// dates equal what the certificate says.
const floorToSecond = (ms: number) => new Date(Math.floor(ms / 1000) * 1000);

/**
 * notBefore = now - backdate; notAfter = now + duration, but never past any
 * issuer's notAfter, since a certificate cannot outlive its chain. The
 * backdate is capped at a tenth of the window actually granted: a short or
 * clamped certificate must not spend most of its validity in the past, or
 * renewal (scheduled through the window) would fall after its expiry.
 */
export function validityWindow(
  now: Date,
  durationMs: number,
  backdateMs: number,
  issuers: readonly X509Certificate[],
): Validity {
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) throw new PkiError('InvalidValidity', 'now is not a valid date');
  if (!Number.isFinite(durationMs) || durationMs <= 0) throw new PkiError('InvalidValidity', 'duration must be a positive number of milliseconds');
  if (!Number.isFinite(backdateMs) || backdateMs < 0) throw new PkiError('InvalidValidity', 'backdate must be zero or a positive number of milliseconds');
  const ceiling = Math.min(now.getTime() + durationMs, ...issuers.map((c) => c.notAfter.getTime()));
  const notAfter = floorToSecond(ceiling);
  if (notAfter.getTime() <= now.getTime()) {
    throw new PkiError('CAExpired', `the issuing CA chain expires at ${new Date(ceiling).toISOString()}, no later than now`);
  }
  const back = Math.min(backdateMs, (notAfter.getTime() - now.getTime()) / 10);
  return { notBefore: floorToSecond(now.getTime() - back), notAfter };
}

/**
 * When a certificate made by validityWindow was issued, recovered from its
 * window: the inverse of the back-date rule above, so renewal can be
 * scheduled from issuance rather than from the back-dated notBefore.
 */
export function issuedAt(v: Validity, backdateMs = DEFAULT_BACKDATE_MS): Date {
  const nb = v.notBefore.getTime();
  const na = v.notAfter.getTime();
  // Either the full back-date applied, or the cap did (back = (na - issued) / 10).
  return new Date(Math.min(nb + backdateMs, (10 * nb + na) / 11, na));
}
