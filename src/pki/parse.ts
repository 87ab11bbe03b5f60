// Reading certificates and summarising them for status fields and annotations.
import type { X509Certificate } from '@peculiar/x509';
import type { KeyAlgorithm } from '../api/types.ts';
import { subtle, x509 } from './crypto.ts';
import { PkiError } from './errors.ts';
import { describeKeyObject, publicKeyObjectOf } from './keys.ts';
import { certificateBodies } from './pem.ts';
import { serialNumberOf } from './serial.ts';
import { SpiffeID } from './spiffeid.ts';

/**
 * Recently parsed certificates by their base64 DER. ASN.1 decoding in JS was
 * most of the operator's CPU: every reconcile of a trust domain re-read its
 * root and intermediate, and every leaf check its bundle and chain. A parsed
 * certificate is an immutable value, so the same bytes may share one object.
 * Bounded (least recently used goes first): the CA certificates stay, leaves
 * pass through.
 */
const parsed = new Map<string, X509Certificate>();
const PARSED_MAX = 64;

function parseOne(body: string): X509Certificate {
  let cert = parsed.get(body);
  if (cert) parsed.delete(body);
  else cert = new x509.X509Certificate(Buffer.from(body, 'base64'));
  parsed.set(body, cert);
  if (parsed.size > PARSED_MAX) parsed.delete(parsed.keys().next().value!);
  return cert;
}

export function parseCertificates(pem: string): X509Certificate[] {
  const blocks = typeof pem === 'string' ? certificateBodies(pem) : [];
  if (blocks.length === 0) throw new PkiError('CertificateUnparsable', 'no PEM CERTIFICATE block found');
  return blocks.map((body, i) => {
    try {
      if (body) return parseOne(body);
    } catch {
      // fall through to the error below; the parser's message may quote input
    }
    throw new PkiError('CertificateUnparsable', `certificate ${i + 1} of ${blocks.length} could not be parsed`);
  });
}

export interface CertificateInfo {
  /** Lowercase hex without leading zero bytes. */
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  subject: string;
  issuer: string;
  isCA: boolean;
  uris: string[];
  dnsNames: string[];
  /** The certificate's SPIFFE ID: set only when its single URI SAN is a valid one. */
  spiffeID?: string;
  keyAlgorithm: KeyAlgorithm;
  keySize: number;
  /** "sha256:" + lowercase hex of the DER. */
  fingerprint: string;
}

// Per parsed certificate: bundle roots are fingerprinted on every identity reconcile.
const fingerprints = new WeakMap<X509Certificate, Promise<string>>();

export function fingerprintOf(cert: X509Certificate): Promise<string> {
  let fingerprint = fingerprints.get(cert);
  if (!fingerprint) {
    fingerprint = subtle.digest('SHA-256', cert.rawData).then((digest) => `sha256:${Buffer.from(digest).toString('hex')}`);
    fingerprints.set(cert, fingerprint);
  }
  return fingerprint;
}

export function isCACertificate(cert: X509Certificate): boolean {
  return cert.getExtension(x509.BasicConstraintsExtension)?.ca === true;
}

/** SAN entries of one type, in certificate order. */
export function sanValues(cert: X509Certificate, type: 'url' | 'dns' | 'ip'): string[] {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return (san?.names.items ?? []).filter((n) => n.type === type).map((n) => n.value);
}

/** The certificate's SPIFFE ID, if it has exactly one URI SAN and that is a valid SPIFFE ID. */
export function spiffeIDOf(cert: X509Certificate): SpiffeID | undefined {
  return spiffeIDIn(sanValues(cert, 'url'));
}

/** The SPIFFE ID a certificate's URI SANs make: exactly one, and a valid SPIFFE ID. */
export function spiffeIDIn(uris: readonly string[]): SpiffeID | undefined {
  if (uris.length !== 1) return undefined;
  try {
    return SpiffeID.parse(uris[0]!);
  } catch {
    return undefined;
  }
}

export async function describeCertificate(cert: X509Certificate): Promise<CertificateInfo> {
  const key = describeKeyObject(publicKeyObjectOf(cert));
  const spiffeID = spiffeIDOf(cert);
  return {
    serialNumber: serialNumberOf(cert),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    subject: cert.subject,
    issuer: cert.issuer,
    isCA: isCACertificate(cert),
    uris: sanValues(cert, 'url'),
    dnsNames: sanValues(cert, 'dns'),
    ...(spiffeID ? { spiffeID: spiffeID.toString() } : {}),
    keyAlgorithm: key.algorithm,
    keySize: key.size,
    fingerprint: await fingerprintOf(cert),
  };
}
