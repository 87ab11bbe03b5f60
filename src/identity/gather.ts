// Everything the issuance checks decide on, gathered once per reconcile
// (cert-manager's gatherer): the observed Secret, the desired leaf, when the
// current leaf renews, and when a root rotation wants it moved.
import { ANNOTATION_RENEW_REQUESTED_AT, ANNOTATION_RENEWAL_REQUEST } from '../api/group.ts';
import { keyRequestOf } from '../api/defaults.ts';
import type { AgentIdentity, Secret } from '../api/types.ts';
import { rotationReissueTime } from '../ca/rotation.ts';
import type { SpiffeID } from '../pki/spiffeid.ts';
import type { TrustDomainState } from '../trust/store.ts';
import type { CheckInput } from './checks.ts';
import { observeSecret, type Observation } from './observe.ts';
import { renewalTime, unitHash } from './renewal.ts';

/** The check input, and what observing the Secret found beyond it (the root its leaf chains to). */
export interface Gathered extends Omit<Observation, 'observed'> {
  input: CheckInput;
}

export async function gatherCheckInput(identity: AgentIdentity, secret: Secret | undefined, trustDomain: TrustDomainState, spiffeID: SpiffeID, now: Date): Promise<Gathered> {
  const { observed, rootFingerprint } = await observeSecret(secret, { roots: trustDomain.bundle, pem: trustDomain.bundlePem }, now);
  const rotation = trustDomain.rotation;
  // Spread by identity UID over the window, so a rotation does not re-issue every leaf at once.
  const rotationReissueAt = rootFingerprint && trustDomain.retiringRootFingerprints.has(rootFingerprint) && rotation
    ? rotationReissueTime(rotation.phaseStartedAt, rotation.reissueWindowMs, unitHash(identity.metadata.uid!)) : undefined;
  return {
    input: {
      secret: observed,
      desired: { spiffeID, dnsNames: identity.spec.dnsNames ?? [], key: keyRequestOf(identity) },
      renewalTime: observed.leaf ? renewalTime(identity.spec, observed.leaf) : undefined,
      rotationReissueAt,
      renewal: { requested: identity.metadata.annotations?.[ANNOTATION_RENEW_REQUESTED_AT], answered: secret?.metadata.annotations?.[ANNOTATION_RENEWAL_REQUEST] },
      now,
    },
    rootFingerprint,
  };
}
