// The few fields of a certificate that chain checks and Leaf observations
// read and node:crypto's X509Certificate does not expose as bytes: the
// issuer and subject Names (compared byte for byte), the SANs, BasicConstraints
// and KeyUsage. Read straight from the DER of a certificate OpenSSL has
// already parsed (so its structure is sound), in microseconds: the ASN.1
// object graph @peculiar/x509 builds for the same took ~1 ms per Leaf, most
// of a restart's CPU at 10,000 identities (issue 20).
import type { X509Certificate as NodeX509Certificate } from 'node:crypto';
import * as der from './der.ts';

export interface CertificateFields {
  /** DER of the issuer and subject Names. */
  issuer: Buffer;
  subject: Buffer;
  /** SAN entries in certificate order: URIs and DNS names. */
  uris: string[];
  dnsNames: string[];
  /** BasicConstraints: absent means not a CA. */
  ca: boolean;
  pathLength?: number;
  /** KeyUsage bit 5 (keyCertSign) when the extension is present; undefined without one. */
  keyCertSign?: boolean;
}

const OID = {
  subjectAltName: der.oid('2.5.29.17'),
  basicConstraints: der.oid('2.5.29.19'),
  keyUsage: der.oid('2.5.29.15'),
};
const TAG = { explicit0: 0xa0, explicit3: 0xa3, boolean: 0x01, integer: 0x02, uri: 0x86, dns: 0x82 } as const;
const KEY_CERT_SIGN_BIT = 5;

const cache = new WeakMap<NodeX509Certificate, CertificateFields>();

/** The fields of a certificate node:crypto parsed, read once per object. */
export function certificateFields(cert: NodeX509Certificate): CertificateFields {
  let fields = cache.get(cert);
  if (!fields) {
    fields = readFields(cert.raw);
    cache.set(cert, fields);
  }
  return fields;
}

function readFields(certificate: Buffer): CertificateFields {
  const tbs = der.elementsOf(der.elementsOf(certificate)[0]!);
  // version [0] is optional; then serial, signature, issuer, validity, subject, subjectPublicKeyInfo, [1], [2], [3].
  const at = tbs[0]![0] === TAG.explicit0 ? 1 : 0;
  const fields: CertificateFields = { issuer: tbs[at + 2]!, subject: tbs[at + 4]!, uris: [], dnsNames: [], ca: false };
  const extensions = tbs.slice(at + 6).find((e) => e[0] === TAG.explicit3);
  const seen = new Set<string>();
  for (const extension of extensions ? der.elementsOf(der.elementsOf(extensions)[0]!) : []) {
    const parts = der.elementsOf(extension);
    const id = parts[0]!;
    // RFC 5280 4.2: a certificate must not include more than one instance of an extension.
    const key = id.toString('hex');
    if (seen.has(key)) throw new Error('duplicate extension');
    seen.add(key);
    const value = der.contentsOf(parts.at(-1)!);
    if (id.equals(OID.subjectAltName)) readNames(value, fields);
    else if (id.equals(OID.basicConstraints)) readBasicConstraints(value, fields);
    else if (id.equals(OID.keyUsage)) fields.keyCertSign = hasBit(der.contentsOf(value), KEY_CERT_SIGN_BIT);
  }
  return fields;
}

function readNames(generalNames: Buffer, fields: CertificateFields): void {
  for (const name of der.elementsOf(generalNames)) {
    // IA5String contents: ASCII by definition; anything else never parses as a SPIFFE ID or DNS name.
    if (name[0] === TAG.uri) fields.uris.push(der.contentsOf(name).toString('latin1'));
    else if (name[0] === TAG.dns) fields.dnsNames.push(der.contentsOf(name).toString('latin1'));
  }
}

function readBasicConstraints(value: Buffer, fields: CertificateFields): void {
  for (const e of der.elementsOf(value)) {
    if (e[0] === TAG.boolean) fields.ca = der.contentsOf(e)[0] !== 0;
    else if (e[0] === TAG.integer) fields.pathLength = der.contentsOf(e).reduce((n, b) => n * 256 + b, 0);
  }
}

/** BIT STRING contents: one octet of unused-bit count, then the bits, most significant first. */
function hasBit(bitString: Buffer, bit: number): boolean {
  const octet = bitString[1 + (bit >> 3)];
  return octet !== undefined && (octet & (0x80 >> (bit & 7))) !== 0;
}
