// The signer's decision for one PodCertificateRequest, pure: issue, deny (the
// request is wrong: the pod or its identity must change), fail (the signer
// cannot issue now; the kubelet retries with a new request), wait (the
// TrustDomain is still loading), or nothing (already answered, or not ours).
import { firstViolation, type Check } from '../controller/checks.ts';
import { DEFAULT_DURATION, deliveryOf, trustDomainOf } from '../api/defaults.ts';
import { parseDuration } from '../api/duration.ts';
import { POD_CERTIFICATE_AGENT_ANNOTATION, SIGNER_NAME } from '../api/group.ts';
import type { AgentIdentity, PodCertificateRequest, TrustDomain } from '../api/types.ts';
import type { CA } from '../pki/ca.ts';
import type { CryptoKey } from '../pki/crypto.ts';
import { SUPPORTED_POD_KEY_TYPES, type CertificateRequestKey } from '../pki/csr.ts';
import { DEFAULT_BACKDATE_MS, type Validity } from '../pki/validity.ts';
import { tenancyViolation } from '../policy/tenancy.ts';
import type { TrustDomainState } from '../trust/store.ts';
import { renewalTime } from '../identity/renewal.ts';
import { answered } from './ledger.ts';

export type DenyReason =
  | 'InvalidUnverifiedUserAnnotations' | 'IdentityNotFound' | 'ServiceAccountMismatch' | 'IdentitySuspended'
  | 'PodCertificateNotEnabled' | 'NamespaceNotAllowed' | 'DNSNameNotAllowed' | 'InvalidCertificateRequest' | 'UnsupportedKeyType';
export type FailReason = 'TrustDomainNotReady' | 'CANotReady';

export interface SignerInput {
  pcr: PodCertificateRequest;
  /** The AgentIdentity the request's annotation names, in its namespace. */
  identity?: AgentIdentity;
  /** The identity's TrustDomain object, its signing state and why it cannot sign. */
  trustDomainObject?: TrustDomain;
  trustDomain?: TrustDomainState;
  trustDomainFailure?: string;
  namespaceLabels: Record<string, string>;
  key: CertificateRequestKey;
}

export type Decision =
  | { kind: 'Issue'; identity: AgentIdentity; trustDomain: TrustDomainState; signer: CA; publicKey: CryptoKey; durationMs: number }
  | { kind: 'Deny'; reason: DenyReason; message: string }
  | { kind: 'Fail'; reason: FailReason; message: string }
  | { kind: 'Wait' }
  | { kind: 'Done' };

const HOUR_MS = 3_600_000;
const REFRESH_MARGIN_MS = 10 * 60_000;

const agentOf = (pcr: PodCertificateRequest) => pcr.spec.unverifiedUserAnnotations?.[POD_CERTIFICATE_AGENT_ANNOTATION];
const requester = (i: SignerInput) => `pod ${i.pcr.metadata.namespace}/${i.pcr.spec.podName}`;

/** In order: the first violation denies the request. */
export const DENY_CHECKS: readonly Check<SignerInput, DenyReason>[] = [
  (i) => {
    const unknown = Object.keys(i.pcr.spec.unverifiedUserAnnotations ?? {}).filter((k) => k !== POD_CERTIFICATE_AGENT_ANNOTATION);
    if (unknown.length) {
      return { reason: 'InvalidUnverifiedUserAnnotations', message: `userAnnotations may hold only "${POD_CERTIFICATE_AGENT_ANNOTATION}", not ${unknown.map((k) => JSON.stringify(k)).join(', ')}: remove them from the pod's podCertificate volume` };
    }
    if (!agentOf(i.pcr)) {
      return { reason: 'InvalidUnverifiedUserAnnotations', message: `userAnnotations must name the AgentIdentity in "${POD_CERTIFICATE_AGENT_ANNOTATION}"; the webhook sets it for pods it injects, or set it in the pod's podCertificate volume` };
    }
    return undefined;
  },
  (i) => (!i.identity || i.identity.metadata.deletionTimestamp
    ? { reason: 'IdentityNotFound', message: `AgentIdentity "${agentOf(i.pcr)}" does not exist in namespace "${i.pcr.metadata.namespace}"${i.identity ? ' (it is being deleted)' : ''}; create it, or fix the pod's "${POD_CERTIFICATE_AGENT_ANNOTATION}" userAnnotation` }
    : undefined),
  (i) => (i.identity!.spec.serviceAccountName !== i.pcr.spec.serviceAccountName
    ? { reason: 'ServiceAccountMismatch', message: `${requester(i)} runs as ServiceAccount "${i.pcr.spec.serviceAccountName}", but AgentIdentity "${i.identity!.metadata.name}" is bound to "${i.identity!.spec.serviceAccountName}"; run the pod as that ServiceAccount` }
    : undefined),
  (i) => (i.identity!.spec.suspended
    ? { reason: 'IdentitySuspended', message: `AgentIdentity "${i.identity!.metadata.name}" is suspended (spec.suspended); no certificate is issued until it is resumed` }
    : undefined),
  (i) => (deliveryOf(i.identity!) !== 'PodCertificate'
    ? { reason: 'PodCertificateNotEnabled', message: `AgentIdentity "${i.identity!.metadata.name}" has spec.delivery ${deliveryOf(i.identity!)}: its certificate is in a Secret; create an identity with spec.delivery PodCertificate to use pod certificates` }
    : undefined),
  // What the identity reconciler refuses (refuseUnlessAdmitted), refused to pods too.
  (i) => (i.trustDomainObject ? tenancyViolation(i.trustDomainObject, i.identity!, i.namespaceLabels) : undefined),
  (i) => (!i.key.ok ? { reason: 'InvalidCertificateRequest', message: i.key.problem } : undefined),
  (i) => (i.key.ok && !i.key.publicKey
    ? { reason: 'UnsupportedKeyType', message: `key type ${i.key.keyType} is not supported; use ECDSAP256 (or one of ${SUPPORTED_POD_KEY_TYPES.join(', ')}) as the podCertificate volume's keyType` }
    : undefined),
];

export function decide(i: SignerInput): Decision {
  if (i.pcr.spec.signerName !== SIGNER_NAME || answered(i.pcr)) return { kind: 'Done' };
  const violation = firstViolation(DENY_CHECKS, i);
  if (violation) return { kind: 'Deny', ...violation };
  const identity = i.identity!;
  const name = trustDomainOf(identity);
  if (!i.trustDomain) {
    // Loading (just after a restart): the store's change re-queues the request.
    if (i.trustDomainObject && !i.trustDomainFailure) return { kind: 'Wait' };
    return { kind: 'Fail', reason: 'TrustDomainNotReady', message: `TrustDomain "${name}" cannot issue: ${i.trustDomainFailure ?? 'it does not exist'}` };
  }
  if (!i.trustDomain.signer) {
    return { kind: 'Fail', reason: 'CANotReady', message: `TrustDomain "${name}" is changing its CA and may sign only once its new roots are in every bundle copy; the kubelet will ask again` };
  }
  return {
    kind: 'Issue', identity, trustDomain: i.trustDomain, signer: i.trustDomain.signer,
    // The checks above passed: the request parsed and its key type is supported.
    publicKey: (i.key as Extract<CertificateRequestKey, { ok: true }>).publicKey!, durationMs: leafDurationMs(identity, i.pcr),
  };
}

/**
 * The duration to ask issueLeaf for: the identity's, capped by the request's
 * maxExpirationSeconds (both at least 1h, by the CRD and the API), less the
 * back-date issueLeaf adds before now, so notAfter − notBefore is exactly the
 * lifetime and never above the API server's ceiling.
 */
export function leafDurationMs(identity: AgentIdentity, pcr: PodCertificateRequest): number {
  const asked = parseDuration(identity.spec.duration ?? DEFAULT_DURATION);
  const lifetime = Math.max(HOUR_MS, Math.min(asked, (pcr.spec.maxExpirationSeconds ?? 86_400) * 1000));
  return Math.floor(lifetime / 1000) * 1000 - DEFAULT_BACKDATE_MS;
}

/** A lifetime the API server refuses (below its 1h floor): the CA chain clamped notAfter. */
export function tooShort(v: Validity): boolean {
  return v.notAfter.getTime() - v.notBefore.getTime() < HOUR_MS;
}

/**
 * When the kubelet should start refreshing: the Secret leaf's renewal rule and
 * jitter, clamped into the window the API server accepts.
 */
export function beginRefreshAt(identity: AgentIdentity, leaf: Validity & { serialNumber: string }): Date {
  const at = renewalTime(identity.spec, leaf).getTime();
  return new Date(Math.min(Math.max(at, leaf.notBefore.getTime() + REFRESH_MARGIN_MS), leaf.notAfter.getTime() - REFRESH_MARGIN_MS));
}
