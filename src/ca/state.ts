// A CA's whole state, persisted in one Secret so every rotation step is one
// atomic write and resumes after a restart from exactly what was written.
// Pure conversion between the Secret and CAState. A trust domain's CA and the
// webhook's CA share it; they differ only in the Secret's key names
// (CASecretFormat), kept as they were so existing Secrets read back after an
// upgrade.
import { GROUP, LABEL_MANAGED_BY, MANAGED_BY_VALUE, LABEL_TRUST_DOMAIN, SECRET_BUNDLE, SECRET_CERT, SECRET_KEY } from '../api/group.ts';
import type { RotationPhase, Secret } from '../api/types.ts';
import type { CAMaterial } from '../pki/ca.ts';
import { certificateBlocks, certificatePemBlocks } from '../pki/pem.ts';

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

type Pair = readonly [certificate: string, key: string];

/** Where a CA Secret keeps each part of a CAState. */
export interface CASecretFormat {
  root: Pair;
  intermediate?: Pair;
  incoming: Pair;
  /**
   * 'retiring': the retiring roots alone. 'trusted': every root to trust —
   * retiring, active, incoming, in that order — ready to be a caBundle;
   * the retiring roots are what it holds beyond the other two.
   */
  bundle: { key: string; holds: 'retiring' | 'trusted' };
  /**
   * Without a phase annotation the phase is read off what the Secret holds
   * (an incoming root: PublishingRoot; retiring roots: ReissuingLeaves), and a
   * rotation is a scheduled one that began when its phase did.
   */
  annotations: { phaseStartedAt: string; phase?: string; reason?: string; startedAt?: string; lastRequest?: string };
}

export const TRUST_DOMAIN_CA_FORMAT: CASecretFormat = {
  root: ['root.crt', 'root.key'],
  intermediate: ['intermediate.crt', 'intermediate.key'],
  incoming: ['incoming-root.crt', 'incoming-root.key'],
  bundle: { key: 'retiring-roots.crt', holds: 'retiring' },
  annotations: {
    phase: `${GROUP}/rotation-phase`, reason: `${GROUP}/rotation-reason`,
    startedAt: `${GROUP}/rotation-started-at`, phaseStartedAt: `${GROUP}/rotation-phase-started-at`,
    lastRequest: `${GROUP}/last-rotation-request`,
  },
};

/** The webhook's CA: a root that signs the serving certificate itself, its Secret shaped like a TLS Secret with ca.crt. */
export const WEBHOOK_CA_FORMAT: CASecretFormat = {
  root: [SECRET_CERT, SECRET_KEY],
  incoming: ['incoming.crt', 'incoming.key'],
  bundle: { key: SECRET_BUNDLE, holds: 'trusted' },
  annotations: { phaseStartedAt: `${GROUP}/webhook-ca-phase-started-at` },
};

export function caSecretName(trustDomainObject: string): string {
  return `${trustDomainObject}-ca`;
}

/** Every root to trust: the retiring ones, the active one, the incoming one. */
export function trustedRootsPem(state: CAState): string {
  return [state.retiringPem, state.root?.certificatePem, state.incoming?.certificatePem].filter(Boolean).join('');
}

const text = (s: Secret, k: string) => (s.data?.[k] ? Buffer.from(s.data[k], 'base64').toString('utf8') : undefined);
const der = (pem: string | undefined) => (pem ? certificateBlocks(pem)[0] : undefined);

/** The certificates of `bundlePem` that are neither `root` nor `incoming`. */
function retiringOf(bundlePem: string, ...exclude: (CAMaterial | undefined)[]): string | undefined {
  const known = exclude.map((m) => der(m?.certificatePem)).filter((d): d is Uint8Array => !!d);
  const rest = certificatePemBlocks(bundlePem).filter((b) => {
    const d = der(b);
    return !d || !known.some((k) => Buffer.from(k).equals(d));
  });
  return rest.join('') || undefined;
}

/** Undefined when the Secret holds neither a root with its key nor an incoming one: it is then not usable, never silently replaced. */
export function readCAState(secret: Secret, format: CASecretFormat = TRUST_DOMAIN_CA_FORMAT): CAState | undefined {
  const pair = (p: Pair | undefined): CAMaterial | undefined => {
    const certificatePem = p && text(secret, p[0]);
    const privateKeyPem = p && text(secret, p[1]);
    return certificatePem && privateKeyPem ? { certificatePem, privateKeyPem } : undefined;
  };
  const root = pair(format.root);
  const incoming = pair(format.incoming);
  const bundle = text(secret, format.bundle.key);
  const retiringPem = format.bundle.holds === 'retiring' ? bundle || undefined : bundle && retiringOf(bundle, root, incoming);
  const ann = secret.metadata.annotations ?? {};
  const A = format.annotations;
  const derived: RotationPhase | undefined = incoming ? 'PublishingRoot' : retiringPem ? 'ReissuingLeaves' : undefined;
  const phase = A.phase ? ann[A.phase] as RotationPhase | undefined : derived;
  if (!root && !(incoming && phase === 'PublishingRoot')) return undefined;
  const phaseStartedAt = ann[A.phaseStartedAt] ?? '';
  return {
    root,
    intermediate: pair(format.intermediate),
    incoming,
    retiringPem,
    rotation: phase ? {
      phase,
      reason: A.reason ? ann[A.reason] ?? 'Unknown' : 'Scheduled',
      startedAt: A.startedAt ? ann[A.startedAt] ?? '' : phaseStartedAt,
      phaseStartedAt,
    } : undefined,
    lastRotationRequest: A.lastRequest && ann[A.lastRequest],
  };
}

/** A trust domain's CA Secret holding `state`; `base` keeps resourceVersion (optimistic concurrency) and foreign metadata. */
export function writeCAState(base: { namespace: string; trustDomainObject: string; existing?: Secret }, state: CAState): Secret {
  const name = caSecretName(base.trustDomainObject);
  return writeCASecret({ ...base, name, labels: { [LABEL_TRUST_DOMAIN]: base.trustDomainObject } }, state, TRUST_DOMAIN_CA_FORMAT);
}

/** The Secret holding `state` in `format`; `meta.existing` keeps resourceVersion (optimistic concurrency) and foreign metadata. */
export function writeCASecret(meta: { namespace: string; name: string; labels: Record<string, string>; existing?: Secret }, state: CAState, format: CASecretFormat): Secret {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const data: Record<string, string> = {};
  const put = (p: Pair | undefined, m: CAMaterial | undefined) => {
    if (p && m) Object.assign(data, { [p[0]]: b64(m.certificatePem), [p[1]]: b64(m.privateKeyPem) });
  };
  put(format.root, state.root);
  put(format.intermediate, state.intermediate);
  put(format.incoming, state.incoming);
  const bundle = format.bundle.holds === 'retiring' ? state.retiringPem : trustedRootsPem(state);
  if (bundle) data[format.bundle.key] = b64(bundle);
  const A = format.annotations;
  const annotations: Record<string, string> = { ...meta.existing?.metadata.annotations };
  for (const k of Object.values(A)) delete annotations[k];
  const set = (k: string | undefined, v: string | undefined) => { if (k && v !== undefined) annotations[k] = v; };
  if (state.rotation) {
    set(A.phase, state.rotation.phase);
    set(A.reason, state.rotation.reason);
    set(A.startedAt, state.rotation.startedAt);
    set(A.phaseStartedAt, state.rotation.phaseStartedAt);
  }
  if (state.lastRotationRequest) set(A.lastRequest, state.lastRotationRequest);
  return {
    apiVersion: 'v1', kind: 'Secret', type: 'Opaque',
    metadata: {
      name: meta.name, namespace: meta.namespace,
      resourceVersion: meta.existing?.metadata.resourceVersion,
      labels: { ...meta.existing?.metadata.labels, [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, ...meta.labels },
      annotations,
    },
    data,
  };
}
