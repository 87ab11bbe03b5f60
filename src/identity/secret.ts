// The identity Secret the operator wants to exist. Pure: a function of the
// identity, the issued material and whatever Secret exists (whose foreign
// labels and annotations are kept).
import {
  API_VERSION, AGENT_IDENTITY, LABEL_MANAGED_BY, MANAGED_BY_VALUE, LABEL_IDENTITY,
  ANNOTATION_SPIFFE_ID, ANNOTATION_SERIAL, ANNOTATION_NOT_AFTER, ANNOTATION_ISSUANCE_REASON, ANNOTATION_ROOT_FINGERPRINT,
  ANNOTATION_RENEWAL_REQUEST, LABEL_TRUST_DOMAIN, SECRET_CERT, SECRET_KEY, SECRET_BUNDLE,
} from '../api/group.ts';
import { secretNameOf, trustDomainOf } from '../api/defaults.ts';
import { rfc3339 } from '../api/conditions.ts';
import type { AgentIdentity, Secret } from '../api/types.ts';

export interface IssuedData {
  /** Base64 values exactly as they go into Secret.data. */
  certificate: string;
  privateKey: string;
  spiffeID: string;
  serialNumber: string;
  notAfter: Date;
  /** The check that triggered issuance. */
  reason: string;
  /** Fingerprint of the root the leaf chains to. */
  root: string;
  /** The renew-requested-at value this certificate answers. */
  renewalRequest?: string;
}

export function desiredSecret(identity: AgentIdentity, existing: Secret | undefined, issued: IssuedData, bundlePem: string): Secret {
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
        [ANNOTATION_SPIFFE_ID]: issued.spiffeID, [ANNOTATION_SERIAL]: issued.serialNumber, [ANNOTATION_NOT_AFTER]: rfc3339(issued.notAfter),
        [ANNOTATION_ISSUANCE_REASON]: issued.reason,
        [ANNOTATION_ROOT_FINGERPRINT]: issued.root,
        ...(issued.renewalRequest ? { [ANNOTATION_RENEWAL_REQUEST]: issued.renewalRequest } : {}),
      },
      ownerReferences: [{
        apiVersion: API_VERSION, kind: AGENT_IDENTITY.kind, name: identity.metadata.name!, uid: identity.metadata.uid!,
        controller: true, blockOwnerDeletion: true,
      }],
    },
    data: { [SECRET_CERT]: issued.certificate, [SECRET_KEY]: issued.privateKey, [SECRET_BUNDLE]: Buffer.from(bundlePem).toString('base64') },
  };
}

/** The data of an existing Secret, as IssuedData, for a rewrite that keeps the certificate (template or bundle changed). */
export function keptData(existing: Secret, leaf: { spiffeID?: string; serialNumber: string; notAfter: Date }, root: string): IssuedData {
  return {
    certificate: existing.data?.[SECRET_CERT] ?? '', privateKey: existing.data?.[SECRET_KEY] ?? '',
    spiffeID: leaf.spiffeID ?? '', serialNumber: leaf.serialNumber, notAfter: leaf.notAfter,
    reason: existing.metadata.annotations?.[ANNOTATION_ISSUANCE_REASON] ?? 'Unknown',
    root,
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
