// The CA lifecycle as a pure decision: given the persisted CA state and what
// the cluster shows, which single step comes next. Root rotation overlaps old
// and new roots so that at no moment do two agents that trusted each other
// stop doing so:
//   PublishingRoot   new root added to the bundle; wait until every copy carries it
//   ReissuingLeaves  a new intermediate under the new root signs; leaves are re-issued, spread over a window
//   RetiringRoot     no leaf depends on the old root; it leaves the bundle after a grace period
// The same machine drives a root that signs its leaves itself (the webhook's
// CA): no intermediate, and "bundle copies" are the webhook configurations'
// caBundle.
import type { RotationPhase } from '../api/types.ts';
import type { Validity } from '../pki/validity.ts';

export interface RotationConfig {
  /** Start rotating automatically once this fraction of the root's lifetime has passed. */
  rotateAtFraction: number;
  /** Renew the intermediate once this fraction of its lifetime has passed; absent for a root that signs leaves itself. */
  intermediateRenewFraction?: number;
  /** After every copy carries the new root, wait this long for kubelets to refresh mounted volumes. */
  propagationDelayMs: number;
  /** Re-issue leaves spread over this window after the signer switch. */
  reissueWindowMs: number;
  /** Keep the old root this long after the last leaf moved off it. */
  graceMs: number;
  /** How often to look again while waiting on the cluster. */
  pollMs: number;
}

export interface RotationInput {
  now: Date;
  root: Validity;
  /** Absent, or not issued by the active root, means it must be (re)made. */
  intermediate?: Validity & { issuedByRoot: boolean };
  rotation?: { phase: RotationPhase; phaseStartedAt: Date };
  requested?: string;
  lastRequest?: string;
  bundleCopies: { total: number; updated: number };
  leavesOnRetiring: number;
  /**
   * The refresh hint our bundle endpoint publishes; absent when it publishes none.
   * A partner polls at most this often and then carries the new Root to its own
   * agents as we do, so the signer switch waits this on top of the propagation
   * delay: a Leaf, or the endpoint's SVID, chaining to a Root a partner has not
   * fetched would break federation, the endpoint's for good (the partner could
   * no longer authenticate the endpoint that serves the Root it lacks).
   */
  partnerRefreshMs?: number;
}

export type Step =
  | { kind: 'StartRotation'; reason: 'Requested' | 'Scheduled' }
  | { kind: 'RenewIntermediate'; reason: string }
  | { kind: 'SwitchSigner' }
  | { kind: 'RetireRoot' }
  | { kind: 'FinishRotation' }
  | { kind: 'Wait'; afterMs?: number; why: string };

const at = (v: Validity, fraction: number) => v.notBefore.getTime() + (v.notAfter.getTime() - v.notBefore.getTime()) * fraction;

export function nextStep(i: RotationInput, cfg: RotationConfig): Step {
  const now = i.now.getTime();
  if (!i.rotation) {
    if (i.requested && i.requested !== i.lastRequest) return { kind: 'StartRotation', reason: 'Requested' };
    const rotateAt = at(i.root, cfg.rotateAtFraction);
    if (now >= rotateAt) return { kind: 'StartRotation', reason: 'Scheduled' };
    if (cfg.intermediateRenewFraction === undefined) return { kind: 'Wait', afterMs: rotateAt - now, why: 'steady' };
    if (!i.intermediate) return { kind: 'RenewIntermediate', reason: 'no intermediate signs for the active root' };
    if (!i.intermediate.issuedByRoot) return { kind: 'RenewIntermediate', reason: 'the intermediate was not issued by the active root' };
    const renewAt = at(i.intermediate, cfg.intermediateRenewFraction);
    if (now >= renewAt) return { kind: 'RenewIntermediate', reason: 'the intermediate reached its renewal time' };
    return { kind: 'Wait', afterMs: Math.min(rotateAt, renewAt) - now, why: 'steady' };
  }
  return phaseStep(i.rotation, i, cfg);
}

/** The steps of a running rotation; shared by self-signed and brought-in CAs. */
export function phaseStep(rotation: { phase: RotationPhase; phaseStartedAt: Date }, i: Pick<RotationInput, 'now' | 'bundleCopies' | 'leavesOnRetiring' | 'partnerRefreshMs'>, cfg: RotationConfig): Step {
  const since = i.now.getTime() - rotation.phaseStartedAt.getTime();
  switch (rotation.phase) {
    case 'PublishingRoot': {
      const { total, updated } = i.bundleCopies;
      if (updated < total) return { kind: 'Wait', afterMs: cfg.pollMs, why: `${updated} of ${total} bundle copies carry the new root` };
      const settleMs = cfg.propagationDelayMs + (i.partnerRefreshMs ?? 0);
      if (since < settleMs) return { kind: 'Wait', afterMs: settleMs - since, why: i.partnerRefreshMs === undefined ? 'letting mounted volumes catch up' : 'letting mounted volumes and federation partners (refresh hint) catch up' };
      return { kind: 'SwitchSigner' };
    }
    case 'ReissuingLeaves':
      if (i.leavesOnRetiring > 0) return { kind: 'Wait', afterMs: cfg.pollMs, why: `${i.leavesOnRetiring} leaves still chain to the retiring root` };
      return { kind: 'RetireRoot' };
    case 'RetiringRoot':
      if (since < cfg.graceMs) return { kind: 'Wait', afterMs: cfg.graceMs - since, why: 'grace period before the old root leaves the bundle' };
      return { kind: 'FinishRotation' };
  }
}

/**
 * When a leaf still chaining to a retiring root should be re-issued: spread
 * over the window by a stable hash of the identity, so a mass rotation never
 * floods the API server and a restart reschedules identically.
 */
export function rotationReissueTime(phaseStartedAt: Date, windowMs: number, unitHash: number): Date {
  return new Date(phaseStartedAt.getTime() + Math.floor(windowMs * unitHash));
}
