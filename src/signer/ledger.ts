// The pod certificates the signer issued and that may still be valid, read
// from the PodCertificateRequests carrying its finalizer: the signer keeps
// each one in the API until its certificate expires (even after the API's
// cleaner deleted it), so this cache scan is the durable record that root
// retirement and revocation need.
import { ANNOTATION_ROOT_FINGERPRINT, FINALIZER_POD_CERTIFICATE, LABEL_IDENTITY, LABEL_TRUST_DOMAIN } from '../api/group.ts';
import type { PodCertificateRequest } from '../api/types.ts';
import { parseCertificates, spiffeIDOf } from '../pki/parse.ts';
import { serialNumberOf } from '../pki/serial.ts';

export interface PodCertificate {
  namespace: string;
  /** The AgentIdentity's name. */
  identity: string;
  /** The TrustDomain object's name. */
  trustDomain: string;
  /** The root the chain leads to; absent only on a request written by hand. */
  rootFingerprint?: string;
  serialNumber: string;
  spiffeID: string;
  notAfter: Date;
}

export interface PodCertificateLister { list(): readonly PodCertificateRequest[] }

// Informer objects are replaced, never mutated, on change: one parse per version.
const parsed = new WeakMap<PodCertificateRequest, PodCertificate | null>();

/** The issued certificate a ledger request holds, or undefined (not ours, not issued, unreadable). */
export function podCertificateOf(pcr: PodCertificateRequest): PodCertificate | undefined {
  if (!pcr.metadata.finalizers?.includes(FINALIZER_POD_CERTIFICATE)) return undefined;
  let got = parsed.get(pcr);
  if (got === undefined) {
    got = readLeaf(pcr);
    parsed.set(pcr, got);
  }
  return got ?? undefined;
}

function readLeaf(pcr: PodCertificateRequest): PodCertificate | null {
  const labels = pcr.metadata.labels ?? {};
  const identity = labels[LABEL_IDENTITY];
  const trustDomain = labels[LABEL_TRUST_DOMAIN];
  if (!identity || !trustDomain || !pcr.status?.certificateChain) return null;
  try {
    const leaf = parseCertificates(pcr.status.certificateChain)[0]!;
    return {
      namespace: pcr.metadata.namespace!, identity, trustDomain, rootFingerprint: pcr.metadata.annotations?.[ANNOTATION_ROOT_FINGERPRINT],
      serialNumber: serialNumberOf(leaf), spiffeID: spiffeIDOf(leaf)?.toString() ?? '', notAfter: leaf.notAfter,
    };
  } catch {
    return null;
  }
}

const ANSWERS = ['Issued', 'Denied', 'Failed'];

/** Whether the request carries its one terminal condition: then its status is immutable. */
export function answered(pcr: PodCertificateRequest): boolean {
  return pcr.status?.conditions?.some((c) => ANSWERS.includes(c.type) && c.status === 'True') ?? false;
}

/**
 * Requests the signer recorded in the ledger and has not answered yet: a
 * certificate for them may be signed at any moment, so revoking an identity
 * waits for them (else a suspend landing mid-issue would miss that serial).
 */
export function issuingPodCertificates(pcrs: PodCertificateLister, namespace: string, identity: string): PodCertificateRequest[] {
  return pcrs.list().filter((p) => p.metadata.namespace === namespace && p.metadata.labels?.[LABEL_IDENTITY] === identity
    && p.metadata.finalizers?.includes(FINALIZER_POD_CERTIFICATE) && !answered(p));
}

/** Every pod certificate still valid at `now` that matches. */
export function livePodCertificates(pcrs: PodCertificateLister, now: Date, match: (c: PodCertificate) => boolean): PodCertificate[] {
  return pcrs.list().map(podCertificateOf).filter((c): c is PodCertificate => c !== undefined && c.notAfter.getTime() > now.getTime() && match(c));
}

/**
 * The ledger as the other controllers read it (the trust reconciler for
 * rotation progress, the identity reconciler for revocation). operator.ts
 * hands it to them, so they need not import the signer (which imports them).
 */
export interface PodCertificateLedger {
  /** Every pod certificate still valid at `now` that matches. */
  live(now: Date, match: (c: PodCertificate) => boolean): PodCertificate[];
  /** Whether a request of this identity is recorded and not answered yet (issuingPodCertificates). */
  issuing(namespace: string, identity: string): boolean;
}

export function ledgerOf(pcrs: PodCertificateLister): PodCertificateLedger {
  return {
    live: (now, match) => livePodCertificates(pcrs, now, match),
    issuing: (namespace, identity) => issuingPodCertificates(pcrs, namespace, identity).length > 0,
  };
}
