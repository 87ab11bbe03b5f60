// A self-signed CA Secret the API server answered 404 for. A TrustDomain that
// never had a CA gets one. One that had (its status records the roots) lost it,
// and a fresh root would be trusted by no agent: a full trust break. So:
//   Restore  this process still holds the CA it last loaded: write it back
//            unchanged (same root, same intermediate), nothing is re-issued.
//   Hold     no copy (the operator restarted since): nothing signs, identities
//            keep their certificates, until the admin restores the Secret from a
//            backup or asks for a new CA with the rotate annotation.
//   Replace  asked for: a new root goes through the overlap of a root rotation.
//            The old roots' keys are gone, but their certificates are public and
//            still in the bundle copies, so they stay in the bundle (Retiring)
//            while the new root is published, then signs, then leaves are
//            re-issued, and only then do the old roots leave.
// Reusing the rotate annotation (not a new one) because that is what this is:
// a root rotation, minus signing with the old root. Pure.
import type { X509Certificate } from '@peculiar/x509';
import type { CAState } from '../ca/state.ts';

export type CALossAction =
  | { kind: 'Generate' }
  | { kind: 'Restore'; state: CAState }
  | { kind: 'Replace'; request: string }
  | { kind: 'Hold' };

export interface CALossInput {
  /** Fingerprints in status.roots: what this TrustDomain's agents trust. */
  recordedRoots: readonly string[];
  /** The CA state this process last loaded or wrote, if any. */
  held?: CAState;
  /** The rotate annotation, and the value last answered (status.lastRotationRequest). */
  requested?: string;
  lastRequest?: string;
}

export function onCASecretNotFound(i: CALossInput): CALossAction {
  if (i.recordedRoots.length === 0) return { kind: 'Generate' };
  if (i.held) return { kind: 'Restore', state: i.held };
  if (i.requested && i.requested !== i.lastRequest) return { kind: 'Replace', request: i.requested };
  return { kind: 'Hold' };
}

/**
 * The recorded roots among the certificates found in bundle copies, once each.
 * Only fingerprints from status count, so a copy someone edited cannot smuggle
 * in a root.
 */
export async function recordedRootsOf(recorded: readonly string[], found: readonly X509Certificate[], fingerprint: (c: X509Certificate) => Promise<string>): Promise<X509Certificate[]> {
  const byFingerprint = new Map<string, X509Certificate>();
  for (const c of found) byFingerprint.set(await fingerprint(c), c);
  return [...new Set(recorded)].flatMap((fp) => byFingerprint.get(fp) ?? []);
}
