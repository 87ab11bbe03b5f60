// Issuing a Leaf: an X.509-SVID as the SPIFFE X.509-SVID specification and
// RFC 5280 describe it, shaped like the SVIDs SPIRE issues; or a plain TLS
// serving certificate (the webhook's), named by DNS names and IPs.
import { KeyObject } from 'node:crypto';
import type { CA } from './ca.ts';
import { type CryptoKey, x509 } from './crypto.ts';
import { PkiError } from './errors.ts';
import { issuerOf } from './issuer.ts';
import { describeKeyObject, subjectPublicKeyInfoOf } from './keys.ts';
import { randomSerialNumber } from './serial.ts';
import type { SpiffeID } from './spiffeid.ts';
import {
  certificate, certificatePem, commonNameSubject, dnsName, emptySubject, EXTENDED_KEY_USAGE, KEY_USAGE, leafTbsCertificate, uriName,
} from './tbs.ts';
import { DEFAULT_BACKDATE_MS, validityWindow } from './validity.ts';

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
    subject: emptySubject(),
    publicKey: req.publicKey,
    window: { now: req.now, durationMs: req.durationMs, backdateMs: req.backdateMs ?? DEFAULT_BACKDATE_MS },
    extendedKeyUsages: [EXTENDED_KEY_USAGE.serverAuth, EXTENDED_KEY_USAGE.clientAuth],
    names: [uriName(req.spiffeID.toString()), ...[...new Set(req.dnsNames)].map(dnsName)],
  });
}

export async function issueServingLeaf(ca: CA, req: ServingLeafRequest): Promise<IssuedLeaf> {
  return signLeaf(ca, {
    subject: commonNameSubject(req.commonName),
    publicKey: req.publicKey,
    window: { now: req.now, durationMs: req.durationMs, backdateMs: DEFAULT_BACKDATE_MS },
    extendedKeyUsages: [EXTENDED_KEY_USAGE.serverAuth],
    names: [
      ...req.dnsNames.map(dnsName),
      // IP SANs are rare (the webhook's own certificate): @peculiar/x509 parses and encodes them.
      ...req.ipAddresses.map((ip) => Buffer.from(new x509.GeneralName('ip', ip).rawData)),
    ],
  });
}

interface LeafProfile {
  subject: Buffer;
  publicKey: CryptoKey;
  window: { now: Date; durationMs: number; backdateMs: number };
  extendedKeyUsages: Buffer[];
  names: Buffer[];
}

async function signLeaf(ca: CA, p: LeafProfile): Promise<IssuedLeaf> {
  if (p.publicKey?.type !== 'public') throw new PkiError('KeyUnsupported', 'a Leaf is issued for a public key');
  const publicKey = KeyObject.from(p.publicKey);
  const leafKey = describeKeyObject(publicKey);
  const issuer = issuerOf(ca);
  const validity = validityWindow(p.window.now, p.window.durationMs, p.window.backdateMs, ca.chain);
  const serialNumber = randomSerialNumber();
  const tbs = leafTbsCertificate(issuer, {
    serialNumber: Buffer.from(serialNumber, 'hex'),
    validity,
    subject: p.subject,
    subjectPublicKeyInfo: subjectPublicKeyInfoOf(publicKey),
    // keyEncipherment only means something for RSA key transport; SPIRE and Go set it only then.
    keyUsage: leafKey.algorithm === 'RSA' ? [KEY_USAGE.digitalSignature, KEY_USAGE.keyEncipherment] : [KEY_USAGE.digitalSignature],
    extendedKeyUsages: p.extendedKeyUsages,
    subjectAltNames: p.names,
  });
  const leaf = certificate(tbs, issuer.signatureAlgorithm, await issuer.sign(tbs));
  return { certificatePem: certificatePem(leaf) + issuer.chainPem, serialNumber, ...validity };
}
