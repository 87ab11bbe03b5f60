// The AgentIdentity status the operator wants to report. Pure.
import { setCondition, rfc3339 } from '../api/conditions.ts';
import type { AgentIdentity, AgentIdentityStatus } from '../api/types.ts';
import type { SecretLeaf } from './secret.ts';
import type { SpiffeID } from '../pki/spiffeid.ts';
import { SIGNER_NAME } from '../api/group.ts';

export interface Issued extends SecretLeaf {
  renewalTime: Date;
  secretName: string;
  caFingerprint: string;
  policyPeers?: number;
}

/** A function of the spec and the Secret only, so a stale cached status can never overwrite newer facts. */
export function readyStatus(identity: AgentIdentity, issued: Issued, now: Date): AgentIdentityStatus {
  const gen = identity.metadata.generation;
  const prev = identity.status ?? {};
  let conditions = setCondition(prev.conditions, {
    type: 'Ready', status: 'True', reason: 'Issued',
    message: `certificate for ${issued.spiffeID} is valid until ${rfc3339(issued.notAfter)}`, observedGeneration: gen,
  }, now);
  conditions = setCondition(conditions, { type: 'Issuing', status: 'False', reason: 'UpToDate', message: 'no issuance needed', observedGeneration: gen }, now);
  return {
    ...prev,
    conditions,
    observedGeneration: gen,
    spiffeID: issued.spiffeID.toString(),
    serialNumber: issued.serialNumber,
    notBefore: rfc3339(issued.notBefore),
    notAfter: rfc3339(issued.notAfter),
    renewalTime: rfc3339(issued.renewalTime),
    secretName: issued.secretName,
    caFingerprint: issued.caFingerprint,
    lastIssuanceReason: issued.reason,
    lastRenewalRequest: issued.renewalRequest,
    policyPeers: issued.policyPeers,
    failedIssuanceAttempts: 0,
    lastFailureTime: prev.lastFailureTime,
  };
}

/**
 * PodCertificate delivery: Ready once the signer may issue for it; each pod's
 * certificate is in its own PodCertificateRequest, so no serial or expiry here.
 */
export function podCertificateStatus(identity: AgentIdentity, p: { spiffeID: SpiffeID; caFingerprint: string; policyPeers?: number }, now: Date): AgentIdentityStatus {
  const gen = identity.metadata.generation;
  const prev = identity.status ?? {};
  const message = `pods running as ServiceAccount "${identity.spec.serviceAccountName}" get certificates for ${p.spiffeID} from the signer ${SIGNER_NAME} through PodCertificateRequests; no Secret is kept`;
  let conditions = setCondition(prev.conditions, { type: 'Ready', status: 'True', reason: 'PodCertificates', message, observedGeneration: gen }, now);
  conditions = setCondition(conditions, { type: 'Issuing', status: 'False', reason: 'PodCertificates', message: 'the signer issues on each PodCertificateRequest', observedGeneration: gen }, now);
  return {
    conditions, observedGeneration: gen, spiffeID: p.spiffeID.toString(), caFingerprint: p.caFingerprint, policyPeers: p.policyPeers,
    failedIssuanceAttempts: 0, lastFailureTime: prev.lastFailureTime,
  };
}

/**
 * A failure: Ready goes False only when there is no usable certificate; an
 * identity whose current certificate is still valid stays Ready while the
 * failed renewal retries, and Issuing carries the failure.
 */
export function failedStatus(identity: AgentIdentity, reason: string, message: string, stillValid: boolean, now: Date): AgentIdentityStatus {
  const gen = identity.metadata.generation;
  const prev = identity.status ?? {};
  let conditions = prev.conditions;
  if (!stillValid) conditions = setCondition(conditions, { type: 'Ready', status: 'False', reason, message, observedGeneration: gen }, now);
  conditions = setCondition(conditions, { type: 'Issuing', status: 'False', reason, message, observedGeneration: gen }, now);
  return { ...prev, conditions, observedGeneration: gen, failedIssuanceAttempts: (prev.failedIssuanceAttempts ?? 0) + 1, lastFailureTime: rfc3339(now) };
}

/**
 * A status that claims no certificate: for an identity whose Secret is not
 * its own, nothing in that Secret (or left over from before) is reported.
 */
export function withoutCertificate(status: AgentIdentityStatus): AgentIdentityStatus {
  const { conditions, observedGeneration, failedIssuanceAttempts, lastFailureTime } = status;
  return { conditions, observedGeneration, failedIssuanceAttempts, lastFailureTime };
}

/** Suspended: revoked on purpose, not a failure. */
export function suspendedStatus(identity: AgentIdentity, now: Date): AgentIdentityStatus {
  const gen = identity.metadata.generation;
  const message = 'spec.suspended is true: the Secret was removed and its certificate deny-listed';
  let conditions = setCondition(identity.status?.conditions, { type: 'Ready', status: 'False', reason: 'Suspended', message, observedGeneration: gen }, now);
  conditions = setCondition(conditions, { type: 'Issuing', status: 'False', reason: 'Suspended', message, observedGeneration: gen }, now);
  return { conditions, observedGeneration: gen, lastFailureTime: identity.status?.lastFailureTime };
}
