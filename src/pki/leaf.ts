// Issuing a Leaf: an X.509-SVID as the SPIFFE X.509-SVID specification and
// RFC 5280 describe it, shaped like the SVIDs SPIRE issues.
import { KeyObject } from 'node:crypto';
import type { CA } from './ca.ts';
import { type CryptoKey, x509 } from './crypto.ts';
import { PkiError } from './errors.ts';
import { isSelfIssued, keyIdentifiers } from './extensions.ts';
import { describeKeyObject, signingAlgorithmOf } from './keys.ts';
import { certificatesToPem } from './pem.ts';
import { randomSerialNumber, serialNumberOf } from './serial.ts';
import type { SpiffeID } from './spiffeid.ts';
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
  if (req.publicKey?.type !== 'public') throw new PkiError('KeyUnsupported', 'a Leaf is issued for a public key');
  const leafKey = describeKeyObject(KeyObject.from(req.publicKey));
  // keyEncipherment only means something for RSA key transport; SPIRE and Go set it only then.
  const usages = x509.KeyUsageFlags.digitalSignature | (leafKey.algorithm === 'RSA' ? x509.KeyUsageFlags.keyEncipherment : 0);
  const window = validityWindow(req.now, req.durationMs, req.backdateMs ?? DEFAULT_BACKDATE_MS, ca.chain);

  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialNumber(),
    // Empty subject: the identity is the SPIFFE ID alone, and RFC 5280 then requires a critical SAN.
    subject: [],
    issuer: ca.certificate.subjectName,
    ...window,
    publicKey: req.publicKey,
    signingKey: ca.key.privateKey,
    signingAlgorithm: signingAlgorithmOf(ca.key),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(usages, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
      ...(await keyIdentifiers(req.publicKey, ca.certificate)),
      new x509.SubjectAlternativeNameExtension(
        [
          { type: 'url', value: req.spiffeID.toString() },
          ...[...new Set(req.dnsNames)].map((value) => ({ type: 'dns' as const, value })),
        ],
        true,
      ),
    ],
  });
  return {
    certificatePem: certificatesToPem([certificate, ...ca.chain.filter((c) => !isSelfIssued(c))]),
    serialNumber: serialNumberOf(certificate),
    notBefore: certificate.notBefore,
    notAfter: certificate.notAfter,
  };
}
