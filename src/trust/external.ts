// A brought-in CA (spec.ca.secretRef): the admin's issuer (e.g. cert-manager)
// owns the key and may replace it at any time. The operator remembers which
// signer and roots it adopted in a ConfigMap (no keys: only certificates), so
// that when the Secret changes it can run the same overlap as a root rotation:
// publish the new roots next to the old, then sign with the new CA, re-issue
// leaves, and drop the old roots once no leaf depends on them. Pure.
import { GROUP, LABEL_MANAGED_BY, MANAGED_BY_VALUE, LABEL_TRUST_DOMAIN } from '../api/group.ts';
import type { ConfigMap, RotationPhase } from '../api/types.ts';

export interface ExternalState {
  /** Fingerprint of the signer certificate the operator issues with. */
  signer: string;
  /** PEM of the roots adopted with that signer. */
  rootsPem: string;
  /** New roots being published before their signer may issue (PublishingRoot). */
  incomingPem?: string;
  /** Fingerprint of the signer waiting for its roots to be published. */
  incomingSigner?: string;
  /** Old roots still trusted while leaves depend on them. */
  retiringPem?: string;
  rotation?: { phase: RotationPhase; reason: string; startedAt: string; phaseStartedAt: string };
}

const A = { signer: `${GROUP}/signer-fingerprint`, incomingSigner: `${GROUP}/incoming-signer-fingerprint`, phase: `${GROUP}/rotation-phase`, reason: `${GROUP}/rotation-reason`, startedAt: `${GROUP}/rotation-started-at`, phaseStartedAt: `${GROUP}/rotation-phase-started-at` } as const;
const K = { roots: 'roots.crt', incoming: 'incoming-roots.crt', retiring: 'retiring-roots.crt' } as const;

export function externalStateName(trustDomainObject: string): string {
  return `${trustDomainObject}-ca-state`;
}

export function readExternalState(cm: ConfigMap | undefined): ExternalState | undefined {
  const a = cm?.metadata.annotations ?? {};
  const signer = a[A.signer];
  const rootsPem = cm?.data?.[K.roots];
  if (!signer || !rootsPem) return undefined;
  const phase = a[A.phase] as RotationPhase | undefined;
  return {
    signer,
    rootsPem,
    incomingPem: cm!.data![K.incoming] || undefined,
    incomingSigner: a[A.incomingSigner] || undefined,
    retiringPem: cm!.data![K.retiring] || undefined,
    rotation: phase ? { phase, reason: a[A.reason] ?? 'ExternalCAChanged', startedAt: a[A.startedAt] ?? '', phaseStartedAt: a[A.phaseStartedAt] ?? '' } : undefined,
  };
}

export function writeExternalState(base: { namespace: string; trustDomainObject: string; existing?: ConfigMap }, s: ExternalState): ConfigMap {
  const annotations: Record<string, string> = { ...base.existing?.metadata.annotations };
  for (const k of Object.values(A)) delete annotations[k];
  annotations[A.signer] = s.signer;
  if (s.incomingSigner) annotations[A.incomingSigner] = s.incomingSigner;
  if (s.rotation) Object.assign(annotations, { [A.phase]: s.rotation.phase, [A.reason]: s.rotation.reason, [A.startedAt]: s.rotation.startedAt, [A.phaseStartedAt]: s.rotation.phaseStartedAt });
  const data: Record<string, string> = { [K.roots]: s.rootsPem };
  if (s.incomingPem) data[K.incoming] = s.incomingPem;
  if (s.retiringPem) data[K.retiring] = s.retiringPem;
  return {
    apiVersion: 'v1', kind: 'ConfigMap',
    metadata: {
      name: externalStateName(base.trustDomainObject), namespace: base.namespace, resourceVersion: base.existing?.metadata.resourceVersion,
      labels: { ...base.existing?.metadata.labels, [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, [LABEL_TRUST_DOMAIN]: base.trustDomainObject },
      annotations,
    },
    data,
  };
}

/**
 * What to do when the external Secret shows `signer` with `roots`:
 * adopt it silently when it still chains to roots everyone trusts (e.g. the
 * issuer renewed its intermediate), or start publishing its new roots.
 */
export function onExternalSigner(state: ExternalState | undefined, signer: string, roots: { pem: string; fingerprints: string[] }, known: Set<string>, now: string): ExternalState | undefined {
  if (!state) return { signer, rootsPem: roots.pem };
  if (state.rotation || state.signer === signer) return undefined;
  if (roots.fingerprints.every((f) => known.has(f))) return { ...state, signer };
  return { ...state, incomingPem: roots.pem, incomingSigner: signer, rotation: { phase: 'PublishingRoot', reason: 'ExternalCAChanged', startedAt: now, phaseStartedAt: now } };
}
