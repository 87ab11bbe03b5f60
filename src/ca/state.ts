// A self-signed trust domain's whole CA state, persisted in one Secret so
// every rotation step is one atomic write and resumes after a restart from
// exactly what was written. Pure conversion between the Secret and CAState.
import { GROUP, LABEL_MANAGED_BY, MANAGED_BY_VALUE, LABEL_TRUST_DOMAIN } from '../api/group.ts';
import type { RotationPhase, Secret } from '../api/types.ts';
import type { CAMaterial } from '../pki/ca.ts';

export interface CAState {
  /**
   * The root whose intermediate signs leaves. Absent only while a CA lost with
   * its Secret is replaced (ca-loss.ts): then nothing signs until the incoming
   * root is in every bundle copy.
   */
  root?: CAMaterial;
  /** Signs leaves; absent until first generated (or after a root switch). */
  intermediate?: CAMaterial;
  /** A new root being published before it signs (PublishingRoot). */
  incoming?: CAMaterial;
  /** Roots that no longer sign but stay trusted while leaves depend on them (no keys kept). */
  retiringPem?: string;
  rotation?: { phase: RotationPhase; reason: string; startedAt: string; phaseStartedAt: string };
  lastRotationRequest?: string;
}

const K = {
  root: 'root.crt', rootKey: 'root.key',
  intermediate: 'intermediate.crt', intermediateKey: 'intermediate.key',
  incoming: 'incoming-root.crt', incomingKey: 'incoming-root.key',
  retiring: 'retiring-roots.crt',
} as const;
const A = {
  phase: `${GROUP}/rotation-phase`, reason: `${GROUP}/rotation-reason`,
  startedAt: `${GROUP}/rotation-started-at`, phaseStartedAt: `${GROUP}/rotation-phase-started-at`,
  lastRequest: `${GROUP}/last-rotation-request`,
} as const;

export function caSecretName(trustDomainObject: string): string {
  return `${trustDomainObject}-ca`;
}

const text = (s: Secret, k: string) => (s.data?.[k] ? Buffer.from(s.data[k], 'base64').toString('utf8') : undefined);

/** Undefined when the Secret holds neither a root with its key nor an incoming one: it is then not usable, never silently replaced. */
export function readCAState(secret: Secret): CAState | undefined {
  const pair = (c: string, k: string): CAMaterial | undefined => {
    const certificatePem = text(secret, c);
    const privateKeyPem = text(secret, k);
    return certificatePem && privateKeyPem ? { certificatePem, privateKeyPem } : undefined;
  };
  const root = pair(K.root, K.rootKey);
  const incoming = pair(K.incoming, K.incomingKey);
  const ann = secret.metadata.annotations ?? {};
  const phase = ann[A.phase] as RotationPhase | undefined;
  if (!root && !(incoming && phase === 'PublishingRoot')) return undefined;
  return {
    root,
    intermediate: pair(K.intermediate, K.intermediateKey),
    incoming,
    retiringPem: text(secret, K.retiring) || undefined,
    rotation: phase ? { phase, reason: ann[A.reason] ?? 'Unknown', startedAt: ann[A.startedAt] ?? '', phaseStartedAt: ann[A.phaseStartedAt] ?? '' } : undefined,
    lastRotationRequest: ann[A.lastRequest],
  };
}

/** The Secret holding `state`; `base` keeps name, resourceVersion (optimistic concurrency) and foreign metadata. */
export function writeCAState(base: { namespace: string; trustDomainObject: string; existing?: Secret }, state: CAState): Secret {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const data: Record<string, string> = {};
  if (state.root) Object.assign(data, { [K.root]: b64(state.root.certificatePem), [K.rootKey]: b64(state.root.privateKeyPem) });
  if (state.intermediate) Object.assign(data, { [K.intermediate]: b64(state.intermediate.certificatePem), [K.intermediateKey]: b64(state.intermediate.privateKeyPem) });
  if (state.incoming) Object.assign(data, { [K.incoming]: b64(state.incoming.certificatePem), [K.incomingKey]: b64(state.incoming.privateKeyPem) });
  if (state.retiringPem) data[K.retiring] = b64(state.retiringPem);
  const annotations: Record<string, string> = { ...base.existing?.metadata.annotations };
  for (const k of Object.values(A)) delete annotations[k];
  if (state.rotation) Object.assign(annotations, { [A.phase]: state.rotation.phase, [A.reason]: state.rotation.reason, [A.startedAt]: state.rotation.startedAt, [A.phaseStartedAt]: state.rotation.phaseStartedAt });
  if (state.lastRotationRequest) annotations[A.lastRequest] = state.lastRotationRequest;
  return {
    apiVersion: 'v1', kind: 'Secret', type: 'Opaque',
    metadata: {
      name: caSecretName(base.trustDomainObject), namespace: base.namespace,
      resourceVersion: base.existing?.metadata.resourceVersion,
      labels: { ...base.existing?.metadata.labels, [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, [LABEL_TRUST_DOMAIN]: base.trustDomainObject },
      annotations,
    },
    data,
  };
}
