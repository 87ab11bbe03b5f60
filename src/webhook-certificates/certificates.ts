// The webhook's own PKI: a small CA that only the API server trusts (through
// caBundle) and the serving certificate it signs. Certificates are made by
// src/pki (a standalone root, a serving leaf), the CA rotates by the one
// state machine of src/ca/rotation.ts and lives in a Secret through
// src/ca/state.ts; what is here is the webhook's wording of those: pure
// decisions over observations, so the reconciler only observes, asks, writes.
//
// CA rotation keeps the API server trusting whatever any replica serves:
//   PublishingRoot   a new CA is in caBundle; the old one still signs.
//   ReissuingLeaves  after the propagation delay the new CA signs; the serving
//                    certificate is re-issued under it; the old CA stays in caBundle.
//   RetiringRoot     the serving certificate is from the new CA; once the grace
//                    period (for every replica to reload it) passed, the old CA
//                    leaves caBundle.
import { firstViolation, type Check, type Violation } from '../controller/checks.ts';
import { LABEL_MANAGED_BY, MANAGED_BY_VALUE, SECRET_BUNDLE, SECRET_CERT, SECRET_KEY } from '../api/group.ts';
import type { RotationPhase, Secret } from '../api/types.ts';
import { nextStep, type RotationConfig, type Step } from '../ca/rotation.ts';
import { type CAState, readCAState, trustedRootsPem, WEBHOOK_CA_FORMAT, writeCASecret } from '../ca/state.ts';
import {
  type CA, type CAMaterial, createRoot, generateKeyPair, issuedAt, issueServingLeaf, keyMatchesCertificate, loadCA,
  parseCertificates, privateKeyFromPem, privateKeyToPem, sanValues, serialNumberOf, signedBy, type Validity, type X509Certificate,
} from '../pki/index.ts';

const DAY = 24 * 3600_000;

export interface WebhookLifetimes {
  /** Lifetime of a generated webhook CA. */
  caMs: number;
  /** Lifetime of the serving certificate (never past the CA's notAfter). */
  servingMs: number;
  /** Renew the serving certificate, and rotate the CA, at this fraction of their lifetime. */
  renewAtFraction: number;
  /** How long a new CA sits in caBundle before it signs: time for every API server to load the new caBundle. */
  propagationMs: number;
  /** How long the old CA stays in caBundle after the serving certificate moved to the new CA: time for every replica to reload it. */
  graceMs: number;
}

export const DEFAULT_LIFETIMES: WebhookLifetimes = {
  caMs: 365 * DAY,
  servingMs: 30 * DAY,
  renewAtFraction: 2 / 3,
  propagationMs: 60_000,
  graceMs: 120_000,
};

// --- generation

/** A self-signed CA that signs only the webhook's serving certificates; its random CN suffix tells successive CAs apart. */
export function createWebhookCA(now: Date, validityMs: number): Promise<CAMaterial> {
  return createRoot({ purpose: 'webhook', algorithm: 'ECDSA', size: 256, validityMs, now });
}

export interface ServingNames {
  dnsNames: string[];
  ipAddresses: string[];
}

/** `<service>.<namespace>.svc` (what the API server dials for a service reference), its cluster.local form, and the extras. */
export function servingNames(service: string, namespace: string, extraDNSNames: string[] = [], ipAddresses: string[] = []): ServingNames {
  const svc = `${service}.${namespace}.svc`;
  return { dnsNames: [...new Set([svc, `${svc}.cluster.local`, ...extraDNSNames])], ipAddresses: [...new Set(ipAddresses)] };
}

export interface ServingCertificate extends Validity {
  /** The leaf alone: the CA reaches the API server through caBundle. */
  certificatePem: string;
  privateKeyPem: string;
  serialNumber: string;
}

export async function issueServingCertificate(ca: CA, names: ServingNames, now: Date, validityMs: number): Promise<ServingCertificate> {
  const key = await generateKeyPair('ECDSA', 256);
  const commonName = names.dnsNames[0] ?? names.ipAddresses[0] ?? 'agent-identity-operator-webhook';
  const leaf = await issueServingLeaf(ca, { commonName, ...names, publicKey: key.publicKey, durationMs: validityMs, now });
  return { ...leaf, privateKeyPem: await privateKeyToPem(key) };
}

/** When a certificate is due for renewal (or a CA for rotation): `fraction` of the way from issuance (not the back-dated notBefore) to expiry. */
export function renewalTime(v: Validity, fraction: number): Date {
  const from = issuedAt(v).getTime();
  return new Date(from + fraction * (v.notAfter.getTime() - from));
}

// --- the Secrets

export const WEBHOOK_COMPONENT_LABELS = { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, 'app.kubernetes.io/component': 'webhook' };

const text = (s: Secret, k: string) => (s.data?.[k] ? Buffer.from(s.data[k], 'base64').toString('utf8') : undefined);
const b64 = (s: string) => Buffer.from(s).toString('base64');

/** Undefined when the Secret holds no CA with its key: such a Secret is reported, never replaced. */
export function readCASecret(secret: Secret): CAState | undefined {
  const state = readCAState(secret, WEBHOOK_CA_FORMAT);
  return state?.root ? state : undefined;
}

export function caSecretOf(namespace: string, name: string, state: CAState, existing?: Secret): Secret {
  return writeCASecret({ namespace, name, labels: WEBHOOK_COMPONENT_LABELS, ...(existing ? { existing } : {}) }, state, WEBHOOK_CA_FORMAT);
}

/** What the CA Secret's ca.crt holds as written, to compare with what its CAs imply. */
export function storedBundleOf(secret: Secret): string | undefined {
  return text(secret, SECRET_BUNDLE);
}

export function servingSecretOf(namespace: string, name: string, serving: ServingCertificate): Secret {
  return {
    apiVersion: 'v1', kind: 'Secret',
    metadata: { name, namespace, labels: { ...WEBHOOK_COMPONENT_LABELS } },
    type: 'kubernetes.io/tls',
    data: { [SECRET_CERT]: b64(serving.certificatePem), [SECRET_KEY]: b64(serving.privateKeyPem) },
  };
}

// --- deciding about the CA

export interface CAObservation {
  active: Validity;
  /** The phase as stored: PublishingRoot while a CA is incoming, ReissuingLeaves while an old one is still in ca.crt. */
  rotation?: { phase: RotationPhase; phaseStartedAt: Date };
  /** The Secret's ca.crt is exactly the CAs it should trust (retiring, active, incoming). */
  bundleIntact: boolean;
  /** Webhooks, across both configurations, whose caBundle is that ca.crt. */
  bundleCopies: { total: number; updated: number };
  serving?: { issuedByActive: boolean; issuedAt: Date };
}

export type CAStep =
  | Exclude<Step, { kind: 'RenewIntermediate' | 'RetireRoot' }>
  /** Rewrite a ca.crt that lost a CA that signs or is about to. */
  | { kind: 'RepairBundle' }
  /** The active CA expired: nothing trusts the webhook now, so replace it at once instead of publishing first. */
  | { kind: 'ReplaceRoot'; reason: string };

/** The shared rotation machine, configured for a root that signs the serving certificate itself. */
export function rotationConfig(lt: WebhookLifetimes, pollMs: number): RotationConfig {
  // One leaf, re-issued at once: no re-issue window.
  return { rotateAtFraction: lt.renewAtFraction, propagationDelayMs: lt.propagationMs, reissueWindowMs: 0, graceMs: lt.graceMs, pollMs };
}

const later = (a: Date, b: Date) => (a.getTime() >= b.getTime() ? a : b);

export function planCA(o: CAObservation, now: Date, cfg: RotationConfig): CAStep {
  // Two steps beyond the shared machine, as pure pre-checks: both are about
  // this Secret (its ca.crt, its expired CA), not about a rotation's progress.
  if (!o.bundleIntact) return { kind: 'RepairBundle' };
  if (!o.rotation && now >= o.active.notAfter) return { kind: 'ReplaceRoot', reason: `the webhook CA expired at ${o.active.notAfter.toISOString()}` };
  // RetiringRoot is not stored but read off the serving certificate: once it
  // is from the new CA, the grace period counts from the later of its
  // issuance and the signer switch.
  const moved = o.rotation?.phase === 'ReissuingLeaves' && o.serving?.issuedByActive;
  const rotation = moved ? { phase: 'RetiringRoot' as const, phaseStartedAt: later(o.serving!.issuedAt, o.rotation!.phaseStartedAt) } : o.rotation;
  const step = nextStep({
    now,
    // Lifetimes count from issuance, as for the serving certificate.
    root: { notBefore: issuedAt(o.active), notAfter: o.active.notAfter },
    ...(rotation ? { rotation } : {}),
    bundleCopies: o.bundleCopies,
    leavesOnRetiring: o.serving?.issuedByActive ? 0 : 1,
  }, cfg);
  // Without an intermediate, and with RetiringRoot read off the serving certificate, the machine never asks for these.
  if (step.kind === 'RenewIntermediate' || step.kind === 'RetireRoot') throw new Error(`the webhook CA has no ${step.kind} step`);
  return step;
}

export function observeCA(state: CAState, storedBundlePem: string | undefined, bundleCopies: CAObservation['bundleCopies'], serving: ServingObservation): CAObservation {
  const active = parseCertificates(state.root!.certificatePem)[0]!;
  const started = Date.parse(state.rotation?.phaseStartedAt ?? '');
  return {
    active: { notBefore: active.notBefore, notAfter: active.notAfter },
    // An unreadable phase start counts as long ago.
    ...(state.rotation ? { rotation: { phase: state.rotation.phase, phaseStartedAt: new Date(Number.isNaN(started) ? 0 : started) } } : {}),
    bundleIntact: storedBundlePem === trustedRootsPem(state),
    bundleCopies,
    ...(serving.certificate ? { serving: { issuedByActive: serving.certificate.issuedByActive, issuedAt: issuedAt(serving.certificate) } } : {}),
  };
}

const rotating = (phase: RotationPhase, now: Date) => {
  const at = now.toISOString();
  return { phase, reason: 'Scheduled', startedAt: at, phaseStartedAt: at };
};

/** Applies a CA step to the stored state; a pure function except for generating a new CA. */
export async function applyCAStep(state: CAState, step: CAStep, now: Date, lt: WebhookLifetimes): Promise<CAState> {
  switch (step.kind) {
    case 'Wait':
    case 'RepairBundle':
      // The Secret's ca.crt is rewritten from the state.
      return state;
    case 'ReplaceRoot':
      return { root: await createWebhookCA(now, lt.caMs) };
    case 'StartRotation':
      return { ...state, incoming: await createWebhookCA(now, lt.caMs), rotation: rotating('PublishingRoot', now) };
    case 'SwitchSigner':
      return { root: state.incoming!, retiringPem: [state.retiringPem, state.root!.certificatePem].filter(Boolean).join(''), rotation: rotating('ReissuingLeaves', now) };
    case 'FinishRotation':
      return { root: state.root! };
  }
}

// --- deciding about the serving certificate

export interface ServingObservation {
  exists: boolean;
  missingKeys: string[];
  certificate?: Validity & ServingNames & { serialNumber: string; issuedByActive: boolean };
  certificateError?: string;
  keyMatches?: boolean;
  keyError?: string;
}

export interface ServingInput {
  observed: ServingObservation;
  want: ServingNames;
  now: Date;
  lt: WebhookLifetimes;
}

const sameSet = (a: string[], b: string[]) => a.length === b.length && [...a].sort().join('\n') === [...b].sort().join('\n');

// The checks after certificateUnparsable run only on a parsed certificate.
const secretDoesNotExist: Check<ServingInput> = ({ observed: o }) => (o.exists ? undefined : { reason: 'SecretDoesNotExist', message: 'the serving certificate Secret does not exist' });
const secretIsMissingData: Check<ServingInput> = ({ observed: o }) => (o.missingKeys.length ? { reason: 'SecretIsMissingData', message: `the Secret lacks ${o.missingKeys.join(', ')}` } : undefined);
const certificateUnparsable: Check<ServingInput> = ({ observed: o }) => (o.certificate ? undefined : { reason: 'CertificateUnparsable', message: o.certificateError ?? 'tls.crt could not be parsed' });
const keyUnparsable: Check<ServingInput> = ({ observed: o }) => (o.keyError ? { reason: 'KeyUnparsable', message: o.keyError } : undefined);
const keyMismatch: Check<ServingInput> = ({ observed: o }) => (o.keyMatches === false ? { reason: 'KeyMismatch', message: 'tls.key does not match tls.crt' } : undefined);
const namesDiffer: Check<ServingInput> = ({ observed: { certificate: c }, want }) => (sameSet(c!.dnsNames, want.dnsNames) && sameSet(c!.ipAddresses, want.ipAddresses)
  ? undefined
  : { reason: 'NamesMismatch', message: `the certificate is for ${[...c!.dnsNames, ...c!.ipAddresses].join(', ')}; wanted ${[...want.dnsNames, ...want.ipAddresses].join(', ')}` });
const notIssuedByActiveCA: Check<ServingInput> = ({ observed: o }) => (o.certificate!.issuedByActive ? undefined : { reason: 'IssuerNotActiveCA', message: 'the certificate was not issued by the active webhook CA' });
const expired: Check<ServingInput> = ({ observed: o, now }) => (now >= o.certificate!.notAfter ? { reason: 'Expired', message: `the certificate expired at ${o.certificate!.notAfter.toISOString()}` } : undefined);
const renewing: Check<ServingInput> = ({ observed: o, now, lt }) => {
  const at = renewalTime(o.certificate!, lt.renewAtFraction);
  return now >= at ? { reason: 'Renewing', message: `renewal was due at ${at.toISOString()}` } : undefined;
};

/** Why re-issue the serving certificate? In order; the first violation is the reason. */
export const SERVING_CHECKS: readonly Check<ServingInput>[] = [
  secretDoesNotExist, secretIsMissingData, certificateUnparsable, keyUnparsable, keyMismatch, namesDiffer, notIssuedByActiveCA, expired, renewing,
];

export function servingNeedsIssuance(observed: ServingObservation, want: ServingNames, now: Date, lt: WebhookLifetimes): Violation | undefined {
  return firstViolation(SERVING_CHECKS, { observed, want, now, lt });
}

// --- observing (parsing only; no API calls)

/** Parses the serving Secret against the active CA. Error texts name the problem, never the bytes. */
export async function observeServing(secret: Secret | undefined, active: CA): Promise<ServingObservation> {
  if (!secret) return { exists: false, missingKeys: [SECRET_CERT, SECRET_KEY] };
  const certPem = text(secret, SECRET_CERT);
  const keyPem = text(secret, SECRET_KEY);
  const missingKeys = [SECRET_CERT, SECRET_KEY].filter((k) => !text(secret, k));
  const o: ServingObservation = { exists: true, missingKeys };
  if (!certPem || !keyPem) return o;
  let cert: X509Certificate;
  try {
    cert = parseCertificates(certPem)[0]!;
  } catch (err) {
    return { ...o, certificateError: (err as Error).message };
  }
  o.certificate = {
    notBefore: cert.notBefore, notAfter: cert.notAfter, dnsNames: sanValues(cert, 'dns'), ipAddresses: sanValues(cert, 'ip'),
    serialNumber: serialNumberOf(cert), issuedByActive: await signedBy(cert, active.certificate),
  };
  try {
    o.keyMatches = await keyMatchesCertificate(await privateKeyFromPem(keyPem), cert);
  } catch (err) {
    o.keyError = (err as Error).message;
  }
  return o;
}

/** Loads the signing CA; PkiError messages name the problem without quoting key material. */
export function loadWebhookCA(material: CAMaterial): Promise<CA> {
  return loadCA(material.certificatePem, material.privateKeyPem);
}

