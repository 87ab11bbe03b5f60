// The Leaf builder before issue 20 (X509CertificateGenerator), kept only to prove the DER builder byte-compatible with it.
import { KeyObject } from 'node:crypto';
import type { CA } from '../../../src/pki/ca.ts';
import { type CryptoKey, x509 } from '../../../src/pki/crypto.ts';
import { PkiError } from '../../../src/pki/errors.ts';
import { isSelfIssued, keyIdentifiers } from '../../../src/pki/extensions.ts';
import { describeKeyObject, signingAlgorithmOf } from '../../../src/pki/keys.ts';
import { certificatesToPem } from '../../../src/pki/pem.ts';
import { randomSerialNumber, serialNumberOf } from '../../../src/pki/serial.ts';
import type { SpiffeID } from '../../../src/pki/spiffeid.ts';
import { DEFAULT_BACKDATE_MS, validityWindow } from '../../../src/pki/validity.ts';

export interface LeafRequest {
  spiffeID: SpiffeID;
  dnsNames: string[];
  /** The Leaf's public key; its private half never comes near the CA. */
  publicKey: CryptoKey;
  durationMs: number;
  now: Date;
  /** Defaults to DEFAULT_BACKDATE_MS (30 s, see validity.ts for why). */
  backdateMs?: number;
}

/** A TLS server certificate: a CN, DNS and IP SANs, serverAuth only. */
export interface ServingLeafRequest {
  commonName: string;
  dnsNames: string[];
  ipAddresses: string[];
  publicKey: CryptoKey;
  durationMs: number;
  now: Date;
}

export interface IssuedLeaf {
  /** The Leaf followed by its intermediates, as PEM. A root is never sent: peers must already hold it in their bundle. */
  certificatePem: string;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
}

// RFC 1123 host names, optionally with a leading wildcard label.
const DNS_NAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

export function isValidDNSName(name: string): boolean {
  return typeof name === 'string' && name.length <= 253 && DNS_NAME.test(name);
}

export async function issueLeaf(ca: CA, req: LeafRequest): Promise<IssuedLeaf> {
  for (const name of req.dnsNames) {
    if (!isValidDNSName(name)) throw new PkiError('InvalidDNSName', `invalid DNS name ${JSON.stringify(String(name).slice(0, 100))}`);
  }
  return signLeaf(ca, {
    // Empty subject: the identity is the SPIFFE ID alone.
    subject: [],
    publicKey: req.publicKey,
    window: { now: req.now, durationMs: req.durationMs, backdateMs: req.backdateMs ?? DEFAULT_BACKDATE_MS },
    extendedKeyUsages: [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
    names: [
      { type: 'url', value: req.spiffeID.toString() },
      ...[...new Set(req.dnsNames)].map((value) => ({ type: 'dns' as const, value })),
    ],
  });
}

export async function issueServingLeaf(ca: CA, req: ServingLeafRequest): Promise<IssuedLeaf> {
  return signLeaf(ca, {
    subject: [{ CN: [req.commonName] }],
    publicKey: req.publicKey,
    window: { now: req.now, durationMs: req.durationMs, backdateMs: DEFAULT_BACKDATE_MS },
    extendedKeyUsages: [x509.ExtendedKeyUsage.serverAuth],
    names: [
      ...req.dnsNames.map((value) => ({ type: 'dns' as const, value })),
      ...req.ipAddresses.map((value) => ({ type: 'ip' as const, value })),
    ],
  });
}

interface LeafProfile {
  subject: x509.JsonName;
  publicKey: CryptoKey;
  window: { now: Date; durationMs: number; backdateMs: number };
  extendedKeyUsages: string[];
  names: x509.JsonGeneralName[];
}

async function signLeaf(ca: CA, p: LeafProfile): Promise<IssuedLeaf> {
  if (p.publicKey?.type !== 'public') throw new PkiError('KeyUnsupported', 'a Leaf is issued for a public key');
  const leafKey = describeKeyObject(KeyObject.from(p.publicKey));
  // keyEncipherment only means something for RSA key transport; SPIRE and Go set it only then.
  const usages = x509.KeyUsageFlags.digitalSignature | (leafKey.algorithm === 'RSA' ? x509.KeyUsageFlags.keyEncipherment : 0);
  const window = validityWindow(p.window.now, p.window.durationMs, p.window.backdateMs, ca.chain);
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialNumber(),
    subject: p.subject,
    issuer: ca.certificate.subjectName,
    ...window,
    publicKey: p.publicKey,
    signingKey: ca.key.privateKey,
    signingAlgorithm: signingAlgorithmOf(ca.key),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(usages, true),
      new x509.ExtendedKeyUsageExtension(p.extendedKeyUsages, false),
      ...(await keyIdentifiers(p.publicKey, ca.certificate)),
      // RFC 5280: the SAN is critical exactly when the subject is empty.
      new x509.SubjectAlternativeNameExtension(p.names, p.subject.length === 0),
    ],
  });
  return {
    certificatePem: certificatesToPem([certificate, ...ca.chain.filter((c) => !isSelfIssued(c))]),
    serialNumber: serialNumberOf(certificate),
    notBefore: certificate.notBefore,
    notAfter: certificate.notAfter,
  };
}
