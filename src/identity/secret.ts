// The identity Secret the operator wants to exist. Pure: a function of the
// identity, the leaf it holds, its policy.json and whatever Secret exists
// (whose foreign labels and annotations are kept). PEM becomes Secret data here, and the
// SPIFFE ID an annotation: nowhere earlier.
import {
  API_VERSION, AGENT_IDENTITY, LABEL_MANAGED_BY, MANAGED_BY_VALUE, LABEL_IDENTITY,
  ANNOTATION_SPIFFE_ID, ANNOTATION_SERIAL, ANNOTATION_NOT_AFTER, ANNOTATION_ISSUANCE_REASON, ANNOTATION_ROOT_FINGERPRINT,
  ANNOTATION_RENEWAL_REQUEST, LABEL_TRUST_DOMAIN, SECRET_CERT, SECRET_KEY, SECRET_BUNDLE,
} from '../api/group.ts';
import { secretNameOf, trustDomainOf } from '../api/defaults.ts';
import { rfc3339 } from '../api/conditions.ts';
import type { AgentIdentity, Secret } from '../api/types.ts';
import { FILES } from '../api/documents.ts';
import type { SpiffeID } from '../pki/spiffeid.ts';
import type { Validity } from '../pki/validity.ts';
import type { IssuedIdentity } from './issue.ts';

/** The Leaf an identity Secret holds, as its annotations and the identity's status describe it. */
export interface SecretLeaf extends Validity {
  spiffeID: SpiffeID;
  serialNumber: string;
  /** The check that triggered issuance. */
  reason: string;
  /** Fingerprint of the root the leaf chains to. */
  rootFingerprint: string;
  /** The renew-requested-at value this certificate answers. */
  renewalRequest?: string;
}

const base64 = (pem: string) => Buffer.from(pem).toString('base64');

/**
 * `policyJson`: the identity's policy.json, which rides the Secret so a new
 * identity costs one write for both (the webhook projects it from here).
 * `pem` absent: the Secret keeps the certificate and key it has (only labels,
 * annotations, the bundle or the policy move).
 */
export function desiredSecret(
  identity: AgentIdentity, existing: Secret | undefined, leaf: SecretLeaf, bundlePem: string, policyJson: string, pem?: Pick<IssuedIdentity, 'certificatePem' | 'privateKeyPem'>,
): Secret {
  const tpl = identity.spec.secretTemplate ?? {};
  return {
    apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls',
    metadata: {
      name: secretNameOf(identity),
      namespace: identity.metadata.namespace,
      resourceVersion: existing?.metadata.resourceVersion,
      labels: {
        ...existing?.metadata.labels, ...tpl.labels,
        [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, [LABEL_IDENTITY]: identity.metadata.name!, [LABEL_TRUST_DOMAIN]: trustDomainOf(identity),
      },
      annotations: {
        ...existing?.metadata.annotations, ...tpl.annotations,
        [ANNOTATION_SPIFFE_ID]: leaf.spiffeID.toString(), [ANNOTATION_SERIAL]: leaf.serialNumber, [ANNOTATION_NOT_AFTER]: rfc3339(leaf.notAfter),
        [ANNOTATION_ISSUANCE_REASON]: leaf.reason,
        [ANNOTATION_ROOT_FINGERPRINT]: leaf.rootFingerprint,
        ...(leaf.renewalRequest ? { [ANNOTATION_RENEWAL_REQUEST]: leaf.renewalRequest } : {}),
      },
      ownerReferences: [{
        apiVersion: API_VERSION, kind: AGENT_IDENTITY.kind, name: identity.metadata.name!, uid: identity.metadata.uid!,
        controller: true, blockOwnerDeletion: true,
      }],
    },
    data: {
      [SECRET_CERT]: pem ? base64(pem.certificatePem) : existing?.data?.[SECRET_CERT] ?? '',
      [SECRET_KEY]: pem ? base64(pem.privateKeyPem) : existing?.data?.[SECRET_KEY] ?? '',
      [SECRET_BUNDLE]: base64(bundlePem),
      [FILES.policy]: base64(policyJson),
    },
  };
}

/** The leaf an existing Secret holds and keeps: its certificate's facts, and why and for which request it was issued. */
export function keptLeaf(existing: Secret, leaf: Validity & { serialNumber: string }, spiffeID: SpiffeID, rootFingerprint: string): SecretLeaf {
  return {
    spiffeID, serialNumber: leaf.serialNumber, notBefore: leaf.notBefore, notAfter: leaf.notAfter,
    reason: existing.metadata.annotations?.[ANNOTATION_ISSUANCE_REASON] ?? 'Unknown',
    rootFingerprint,
    renewalRequest: existing.metadata.annotations?.[ANNOTATION_RENEWAL_REQUEST],
  };
}

/** Whether writing `want` over `have` would change anything the operator owns. */
export function secretDiffers(have: Secret, want: Secret): boolean {
  const sub = (want: Record<string, string> = {}, have: Record<string, string> = {}) => Object.entries(want).some(([k, v]) => have[k] !== v);
  const owner = have.metadata.ownerReferences?.find((o) => o.controller);
  const wantOwner = want.metadata.ownerReferences![0]!;
  return have.type !== want.type
    || sub(want.metadata.labels, have.metadata.labels)
    || sub(want.metadata.annotations, have.metadata.annotations)
    || sub(want.data, have.data)
    || Object.keys(have.data ?? {}).length !== Object.keys(want.data ?? {}).length
    || owner?.uid !== wantOwner.uid;
}
