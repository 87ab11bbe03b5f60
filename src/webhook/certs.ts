// The webhook's own PKI: a small CA that only the API server trusts (through
// caBundle) and the serving certificate it signs. Generation is here, and so
// are the decisions — when to renew the serving certificate, when to rotate
// the CA and when the old CA may leave caBundle — as pure functions over
// observations, so the manager only observes, asks, and writes.
//
// CA rotation keeps the API server trusting whatever any replica serves:
//   Publishing  a new CA is generated and added to caBundle; the old one still signs.
//   Retiring    after the propagation delay the new CA signs; the serving
//               certificate is re-issued under it; the old CA stays in caBundle.
//   (done)      once the serving certificate is from the new CA and the grace
//               period (long enough for every replica to reload it) has passed,
//               the old CA leaves caBundle.
import type { X509Certificate } from '@peculiar/x509';
import { GROUP, LABEL_MANAGED_BY, MANAGED_BY_VALUE, SECRET_BUNDLE, SECRET_CERT, SECRET_KEY } from '../api/group.ts';
import type { Secret } from '../api/types.ts';
import { type CA, type CAMaterial, fingerprintOf, generateKeyPair, keyMatchesCertificate, loadCA, parseCertificates, privateKeyFromPem, privateKeyToPem, serialNumberOf, x509 } from '../pki/index.ts';
import { keyIdentifiers } from '../pki/extensions.ts';
import { signingAlgorithmOf } from '../pki/keys.ts';
import { certificatesToPem } from '../pki/pem.ts';
import { randomSerialNumber } from '../pki/serial.ts';
import { issuedAt as issuedAtWindow, validityWindow } from '../pki/validity.ts';

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

/**
 * notBefore is set this far back for clock skew between the operator and the
 * API servers (capped at a tenth of a short window, see pki/validity.ts), and
 * lifetimes count from issuance, not from the back-dated start.
 */
export const BACKDATE_MS = 30_000;

// --- generation

const CA_KEY_USAGES = x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature;

/** A self-signed CA that signs only the webhook's serving certificates (path length 0). */
export async function createWebhookCA(now: Date, validityMs: number): Promise<CAMaterial> {
  const key = await generateKeyPair('ECDSA', 256);
  const suffix = Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(4))).toString('hex');
  // The random suffix tells successive CAs apart in caBundle and in logs.
  const name: x509.JsonName = [{ O: ['agent-identity-operator'] }, { CN: [`agent-identity-operator webhook CA ${suffix}`] }];
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialNumber(),
    subject: name,
    issuer: name,
    ...validityWindow(now, validityMs, BACKDATE_MS, []),
    publicKey: key.publicKey,
    signingKey: key.privateKey,
    signingAlgorithm: signingAlgorithmOf(key),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(CA_KEY_USAGES, true),
      ...(await keyIdentifiers(key.publicKey, 'self')),
    ],
  });
  return { certificatePem: certificatesToPem([certificate]), privateKeyPem: await privateKeyToPem(key) };
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

export interface ServingCertificate {
  certificatePem: string;
  privateKeyPem: string;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
}

export async function issueServingCertificate(ca: CA, names: ServingNames, now: Date, validityMs: number): Promise<ServingCertificate> {
  const key = await generateKeyPair('ECDSA', 256);
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialNumber(),
    subject: [{ CN: [names.dnsNames[0] ?? names.ipAddresses[0] ?? 'agent-identity-operator-webhook'] }],
    issuer: ca.certificate.subjectName,
    ...validityWindow(now, validityMs, BACKDATE_MS, ca.chain),
    publicKey: key.publicKey,
    signingKey: ca.key.privateKey,
    signingAlgorithm: signingAlgorithmOf(ca.key),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      ...(await keyIdentifiers(key.publicKey, ca.certificate)),
      new x509.SubjectAlternativeNameExtension([
        ...names.dnsNames.map((value) => ({ type: 'dns' as const, value })),
        ...names.ipAddresses.map((value) => ({ type: 'ip' as const, value })),
      ]),
    ],
  });
  return {
    // The leaf alone: the CA reaches the API server through caBundle.
    certificatePem: certificatesToPem([certificate]),
    privateKeyPem: await privateKeyToPem(key),
    serialNumber: serialNumberOf(certificate),
    notBefore: certificate.notBefore,
    notAfter: certificate.notAfter,
  };
}

// --- timing

export interface Validity {
  notBefore: Date;
  notAfter: Date;
}

export function issuedAt(v: Validity): Date {
  return issuedAtWindow(v, BACKDATE_MS);
}

/** When a certificate is due for renewal (or a CA for rotation): `fraction` of the way from issuance to expiry. */
export function renewalTime(v: Validity, fraction: number): Date {
  const from = issuedAt(v).getTime();
  return new Date(from + fraction * (v.notAfter.getTime() - from));
}

// --- the CA Secret

const K = { incoming: 'incoming.crt', incomingKey: 'incoming.key' } as const;
export const ANNOTATION_CA_PHASE_STARTED_AT = `${GROUP}/webhook-ca-phase-started-at`;
export const WEBHOOK_COMPONENT_LABELS = { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, 'app.kubernetes.io/component': 'webhook' };

/** The webhook CA, as stored in its Secret. */
export interface WebhookCAState {
  /** Signs the serving certificate. */
  active: CAMaterial;
  /** Published in caBundle but not yet signing (the Publishing phase). */
  incoming?: CAMaterial;
  /** Every CA the API server must trust: a retiring CA, the active one, an incoming one. */
  bundlePem: string;
  /** When Publishing or Retiring began. */
  phaseStartedAt?: Date;
}

const text = (s: Secret, k: string) => (s.data?.[k] ? Buffer.from(s.data[k], 'base64').toString('utf8') : undefined);
const b64 = (s: string) => Buffer.from(s).toString('base64');

/** Undefined when the Secret holds no CA with its key: such a Secret is reported, never replaced. */
export function readCASecret(secret: Secret): WebhookCAState | undefined {
  const certificatePem = text(secret, SECRET_CERT);
  const privateKeyPem = text(secret, SECRET_KEY);
  if (!certificatePem || !privateKeyPem) return undefined;
  const incomingCert = text(secret, K.incoming);
  const incomingKey = text(secret, K.incomingKey);
  const started = secret.metadata.annotations?.[ANNOTATION_CA_PHASE_STARTED_AT];
  return {
    active: { certificatePem, privateKeyPem },
    ...(incomingCert && incomingKey ? { incoming: { certificatePem: incomingCert, privateKeyPem: incomingKey } } : {}),
    bundlePem: text(secret, SECRET_BUNDLE) ?? certificatePem,
    ...(started && !Number.isNaN(Date.parse(started)) ? { phaseStartedAt: new Date(started) } : {}),
  };
}

export function caSecretOf(namespace: string, name: string, state: WebhookCAState): Secret {
  return {
    apiVersion: 'v1', kind: 'Secret',
    metadata: {
      name, namespace, labels: { ...WEBHOOK_COMPONENT_LABELS },
      ...(state.phaseStartedAt ? { annotations: { [ANNOTATION_CA_PHASE_STARTED_AT]: state.phaseStartedAt.toISOString() } } : {}),
    },
    type: 'Opaque',
    data: {
      [SECRET_CERT]: b64(state.active.certificatePem),
      [SECRET_KEY]: b64(state.active.privateKeyPem),
      [SECRET_BUNDLE]: b64(state.bundlePem),
      ...(state.incoming ? { [K.incoming]: b64(state.incoming.certificatePem), [K.incomingKey]: b64(state.incoming.privateKeyPem) } : {}),
    },
  };
}

export function servingSecretOf(namespace: string, name: string, serving: ServingCertificate): Secret {
  return {
    apiVersion: 'v1', kind: 'Secret',
    metadata: { name, namespace, labels: { ...WEBHOOK_COMPONENT_LABELS } },
    type: 'kubernetes.io/tls',
    data: { [SECRET_CERT]: b64(serving.certificatePem), [SECRET_KEY]: b64(serving.privateKeyPem) },
  };
}

/** Certificates as one caBundle PEM: duplicates (by fingerprint) dropped, order kept. */
export async function bundleOf(certs: X509Certificate[]): Promise<string> {
  const seen = new Set<string>();
  const out: X509Certificate[] = [];
  for (const c of certs) {
    const fp = await fingerprintOf(c);
    if (!seen.has(fp)) { seen.add(fp); out.push(c); }
  }
  return certificatesToPem(out);
}

// --- deciding about the CA

export interface CertificateTimes extends Validity {
  fingerprint: string;
}

export interface CAObservation {
  active: CertificateTimes;
  incoming?: CertificateTimes;
  /** What the Secret's ca.crt holds. */
  bundle: CertificateTimes[];
  phaseStartedAt?: Date;
  /** Every existing webhook configuration's caBundle already equals the Secret's ca.crt. */
  bundlePublished: boolean;
  serving?: { issuedByActive: boolean; issuedAt: Date };
}

export type CAStep =
  | { action: 'none'; why: string; nextAt?: Date }
  /** Add the active CA to a ca.crt that lost it. */
  | { action: 'repairBundle'; why: string }
  /** Generate a new CA and publish it next to the active one. */
  | { action: 'publishIncoming'; why: string }
  /** The active CA expired: nothing trusts the webhook now, so replace it at once instead of publishing first. */
  | { action: 'replaceExpired'; why: string }
  /** The incoming CA starts signing; the old one stays in caBundle. */
  | { action: 'promoteIncoming'; why: string }
  /** Only the active CA stays in caBundle. */
  | { action: 'retireOld'; why: string };

const later = (...ds: Date[]) => new Date(Math.max(...ds.map((d) => d.getTime())));

export function planCA(o: CAObservation, now: Date, lt: WebhookLifetimes): CAStep {
  const t = now.getTime();
  const inBundle = (c: CertificateTimes) => o.bundle.some((b) => b.fingerprint === c.fingerprint);
  if (!inBundle(o.active) || (o.incoming && !inBundle(o.incoming))) return { action: 'repairBundle', why: 'ca.crt lacks a CA that signs or is about to' };

  if (o.incoming) {
    const at = new Date((o.phaseStartedAt?.getTime() ?? t) + lt.propagationMs);
    if (!o.bundlePublished) return { action: 'none', why: 'the new CA is not yet in every webhook configuration\'s caBundle' };
    if (t < at.getTime()) return { action: 'none', why: 'the new CA is propagating to the API servers', nextAt: at };
    return { action: 'promoteIncoming', why: 'the new CA has been in caBundle for the propagation delay' };
  }

  const others = o.bundle.filter((b) => b.fingerprint !== o.active.fingerprint);
  if (others.length > 0) {
    if (!o.serving?.issuedByActive) return { action: 'none', why: 'the serving certificate is not yet issued by the new CA' };
    const at = new Date(later(o.serving.issuedAt, o.phaseStartedAt ?? new Date(0)).getTime() + lt.graceMs);
    if (t < at.getTime()) return { action: 'none', why: 'replicas are loading the serving certificate of the new CA', nextAt: at };
    return { action: 'retireOld', why: 'the serving certificate moved to the new CA and the grace period passed' };
  }

  if (t >= o.active.notAfter.getTime()) return { action: 'replaceExpired', why: `the webhook CA expired at ${o.active.notAfter.toISOString()}` };
  const rotateAt = renewalTime(o.active, lt.renewAtFraction);
  if (t >= rotateAt.getTime()) return { action: 'publishIncoming', why: `the webhook CA reached ${Math.round(lt.renewAtFraction * 100)}% of its lifetime` };
  return { action: 'none', why: 'the webhook CA is current', nextAt: rotateAt };
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

export interface Violation {
  reason: string;
  message: string;
}

export interface ServingCheck {
  name: string;
  check: (o: ServingObservation, want: ServingNames, now: Date, lt: WebhookLifetimes) => Violation | undefined;
}

const sameSet = (a: string[], b: string[]) => a.length === b.length && [...a].sort().join('\n') === [...b].sort().join('\n');

/** Why re-issue the serving certificate? In order; the first violation is the reason. */
export const SERVING_CHECKS: readonly ServingCheck[] = [
  { name: 'secretDoesNotExist', check: (o) => (o.exists ? undefined : { reason: 'SecretDoesNotExist', message: 'the serving certificate Secret does not exist' }) },
  { name: 'secretIsMissingData', check: (o) => (o.missingKeys.length ? { reason: 'SecretIsMissingData', message: `the Secret lacks ${o.missingKeys.join(', ')}` } : undefined) },
  { name: 'certificateUnparsable', check: (o) => (o.certificate ? undefined : { reason: 'CertificateUnparsable', message: o.certificateError ?? 'tls.crt could not be parsed' }) },
  { name: 'keyUnparsable', check: (o) => (o.keyError ? { reason: 'KeyUnparsable', message: o.keyError } : undefined) },
  { name: 'keyMismatch', check: (o) => (o.keyMatches === false ? { reason: 'KeyMismatch', message: 'tls.key does not match tls.crt' } : undefined) },
  {
    name: 'namesDiffer',
    check: (o, want) => (sameSet(o.certificate!.dnsNames, want.dnsNames) && sameSet(o.certificate!.ipAddresses, want.ipAddresses)
      ? undefined
      : { reason: 'NamesMismatch', message: `the certificate is for ${[...o.certificate!.dnsNames, ...o.certificate!.ipAddresses].join(', ')}; wanted ${[...want.dnsNames, ...want.ipAddresses].join(', ')}` }),
  },
  { name: 'notIssuedByActiveCA', check: (o) => (o.certificate!.issuedByActive ? undefined : { reason: 'IssuerNotActiveCA', message: 'the certificate was not issued by the active webhook CA' }) },
  { name: 'expired', check: (o, _w, now) => (now >= o.certificate!.notAfter ? { reason: 'Expired', message: `the certificate expired at ${o.certificate!.notAfter.toISOString()}` } : undefined) },
  {
    name: 'renewing',
    check: (o, _w, now, lt) => {
      const at = renewalTime(o.certificate!, lt.renewAtFraction);
      return now >= at ? { reason: 'Renewing', message: `renewal was due at ${at.toISOString()}` } : undefined;
    },
  },
];

export function servingNeedsIssuance(o: ServingObservation, want: ServingNames, now: Date, lt: WebhookLifetimes): Violation | undefined {
  for (const c of SERVING_CHECKS) {
    const v = c.check(o, want, now, lt);
    if (v) return v;
  }
  return undefined;
}

// --- observing (parsing only; no API calls)

export async function timesOf(cert: X509Certificate): Promise<CertificateTimes> {
  return { notBefore: cert.notBefore, notAfter: cert.notAfter, fingerprint: await fingerprintOf(cert) };
}

function ipAddressesOf(cert: X509Certificate): string[] {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return (san?.names.items ?? []).filter((n) => n.type === 'ip').map((n) => n.value);
}

function dnsNamesOf(cert: X509Certificate): string[] {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return (san?.names.items ?? []).filter((n) => n.type === 'dns').map((n) => n.value);
}

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
  const issuedByActive = Buffer.from(cert.issuerName.toArrayBuffer()).equals(Buffer.from(active.certificate.subjectName.toArrayBuffer()))
    && (await cert.verify({ publicKey: active.certificate.publicKey, signatureOnly: true }).catch(() => false));
  o.certificate = { notBefore: cert.notBefore, notAfter: cert.notAfter, dnsNames: dnsNamesOf(cert), ipAddresses: ipAddressesOf(cert), serialNumber: serialNumberOf(cert), issuedByActive };
  try {
    o.keyMatches = await keyMatchesCertificate(await privateKeyFromPem(keyPem), cert);
  } catch (err) {
    o.keyError = (err as Error).message;
  }
  return o;
}

/** The CA observation of a stored state; the CA certificates are parsed, their keys are not needed to decide. */
export async function observeCA(state: WebhookCAState, bundlePublished: boolean, serving: ServingObservation): Promise<CAObservation> {
  const active = await timesOf(parseCertificates(state.active.certificatePem)[0]!);
  const incoming = state.incoming ? await timesOf(parseCertificates(state.incoming.certificatePem)[0]!) : undefined;
  let bundle: CertificateTimes[] = [];
  try {
    bundle = await Promise.all(parseCertificates(state.bundlePem).map(timesOf));
  } catch {
    // An unreadable ca.crt is repaired (repairBundle) rather than trusted.
  }
  return {
    active, ...(incoming ? { incoming } : {}), bundle,
    ...(state.phaseStartedAt ? { phaseStartedAt: state.phaseStartedAt } : {}),
    bundlePublished,
    ...(serving.certificate ? { serving: { issuedByActive: serving.certificate.issuedByActive, issuedAt: issuedAt(serving.certificate) } } : {}),
  };
}

/** Applies a CA step to the stored state; a pure function except for generating a new CA. */
export async function applyCAStep(state: WebhookCAState, step: CAStep, now: Date, lt: WebhookLifetimes): Promise<WebhookCAState> {
  const certs = (pem: string) => { try { return parseCertificates(pem); } catch { return []; } };
  const active = parseCertificates(state.active.certificatePem)[0]!;
  switch (step.action) {
    case 'none':
      return state;
    case 'repairBundle': {
      const incoming = state.incoming ? parseCertificates(state.incoming.certificatePem) : [];
      return { ...state, bundlePem: await bundleOf([...certs(state.bundlePem), active, ...incoming]) };
    }
    case 'publishIncoming': {
      const incoming = await createWebhookCA(now, lt.caMs);
      return { active: state.active, incoming, bundlePem: await bundleOf([...certs(state.bundlePem), ...parseCertificates(incoming.certificatePem)]), phaseStartedAt: now };
    }
    case 'replaceExpired': {
      const fresh = await createWebhookCA(now, lt.caMs);
      return { active: fresh, bundlePem: fresh.certificatePem };
    }
    case 'promoteIncoming':
      return { active: state.incoming!, bundlePem: state.bundlePem, phaseStartedAt: now };
    case 'retireOld':
      return { active: state.active, bundlePem: certificatesToPem([active]) };
  }
}

/** Loads the signing CA; PkiError messages name the problem without quoting key material. */
export function loadWebhookCA(material: CAMaterial): Promise<CA> {
  return loadCA(material.certificatePem, material.privateKeyPem);
}

/** Serial, expiry and issuer of the first certificate in a PEM, for logs and status; undefined when unparsable. */
export function describeCertificatePem(pem: string): { serialNumber: string; notAfter: Date; issuer: string } | undefined {
  try {
    const c = parseCertificates(pem)[0]!;
    return { serialNumber: serialNumberOf(c), notAfter: c.notAfter, issuer: c.issuer };
  } catch {
    return undefined;
  }
}
