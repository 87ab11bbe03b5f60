// The TBSCertificate of a Leaf and the Certificate around it, written with the
// DER writer: the one profile every Leaf has (RFC 5280, SPIFFE X.509-SVID),
// byte for byte what @peculiar/x509 produced for it before, at a fraction of
// the cost. CA certificates are rare and still go through @peculiar/x509 (ca.ts).
import { createHash } from 'node:crypto';
import * as der from './der.ts';
import type { Validity } from './validity.ts';

/** ExtendedKeyUsage purposes, as encoded OIDs. */
export const EXTENDED_KEY_USAGE = { serverAuth: der.oid('1.3.6.1.5.5.7.3.1'), clientAuth: der.oid('1.3.6.1.5.5.7.3.2') } as const;
/** KeyUsage bit numbers (RFC 5280 4.2.1.3). */
export const KEY_USAGE = { digitalSignature: 0, keyEncipherment: 2 } as const;

const OID = {
  basicConstraints: der.oid('2.5.29.19'),
  keyUsage: der.oid('2.5.29.15'),
  extKeyUsage: der.oid('2.5.29.37'),
  subjectKeyIdentifier: der.oid('2.5.29.14'),
  authorityKeyIdentifier: der.oid('2.5.29.35'),
  subjectAltName: der.oid('2.5.29.17'),
  commonName: der.oid('2.5.4.3'),
};
const VERSION_3 = der.explicit(0, der.smallInteger(2));
const EMPTY_NAME = der.sequence();
const TRUE = der.boolean(true);

/** What a CA puts in every Leaf it signs, encoded once per CA (issuer.ts). */
export interface IssuerFields {
  /** The CA's subject Name, exactly as its certificate encodes it. */
  name: Buffer;
  /** The AuthorityKeyIdentifier extension. */
  authorityKeyIdentifier: Buffer;
  /** The AlgorithmIdentifier of the CA key's signature. */
  signatureAlgorithm: Buffer;
}

export interface LeafFields {
  /** The serial number's magnitude, big-endian. */
  serialNumber: Uint8Array;
  validity: Validity;
  /** The subject Name; an empty one (a SPIFFE Leaf) makes the SAN critical. */
  subject: Buffer;
  /** SubjectPublicKeyInfo DER. */
  subjectPublicKeyInfo: Buffer;
  keyUsage: readonly number[];
  /** Encoded OIDs (EXTENDED_KEY_USAGE), in order. */
  extendedKeyUsages: readonly Buffer[];
  /** GeneralName encodings, in order. */
  subjectAltNames: readonly Buffer[];
}

const extension = (id: Buffer, critical: boolean, value: Buffer): Buffer =>
  critical ? der.sequence(id, TRUE, der.octetString(value)) : der.sequence(id, der.octetString(value));

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's bits. */
export function keyIdentifier(subjectPublicKeyInfo: Uint8Array): Buffer {
  const bits = der.contentsOf(der.elementsOf(subjectPublicKeyInfo)[1]!).subarray(1);
  return createHash('sha1').update(bits).digest();
}

export const authorityKeyIdentifierExtension = (keyId: Uint8Array): Buffer =>
  extension(OID.authorityKeyIdentifier, false, der.sequence(der.implicit(0, keyId)));

/** A Name with one RDN, the commonName: PrintableString when it can be, UTF8String otherwise. */
export function commonNameSubject(cn: string): Buffer {
  const value = /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(cn) ? der.printableString(cn) : der.utf8String(cn);
  return der.sequence(der.set(der.sequence(OID.commonName, value)));
}

export const emptySubject = (): Buffer => EMPTY_NAME;

/** GeneralName uniformResourceIdentifier [6] and dNSName [2], both IA5String. */
export const uriName = (uri: string): Buffer => der.implicit(6, Buffer.from(uri, 'latin1'));
export const dnsName = (name: string): Buffer => der.implicit(2, Buffer.from(name, 'latin1'));

export function leafTbsCertificate(issuer: IssuerFields, f: LeafFields): Buffer {
  const extensions = [
    extension(OID.basicConstraints, true, der.sequence()), // cA FALSE is the DEFAULT, so omitted
    extension(OID.keyUsage, true, der.namedBits(f.keyUsage)),
    extension(OID.extKeyUsage, false, der.sequence(...f.extendedKeyUsages)),
    extension(OID.subjectKeyIdentifier, false, der.octetString(keyIdentifier(f.subjectPublicKeyInfo))),
    issuer.authorityKeyIdentifier,
    // RFC 5280 4.2.1.6: the SAN is critical exactly when the subject is empty.
    extension(OID.subjectAltName, f.subject.equals(EMPTY_NAME), der.sequence(...f.subjectAltNames)),
  ];
  return der.sequence(
    VERSION_3,
    der.unsignedInteger(f.serialNumber),
    issuer.signatureAlgorithm,
    issuer.name,
    der.sequence(der.time(f.validity.notBefore), der.time(f.validity.notAfter)),
    f.subject,
    f.subjectPublicKeyInfo,
    der.explicit(3, der.sequence(...extensions)),
  );
}

export const certificate = (tbs: Buffer, signatureAlgorithm: Buffer, signature: Buffer): Buffer =>
  der.sequence(tbs, signatureAlgorithm, der.bitString(signature));

/** PEM with 64-character lines, as @peculiar/x509 and OpenSSL write it. */
export function certificatePem(certificateDer: Buffer): string {
  const b64 = certificateDer.toString('base64');
  let body = '';
  for (let i = 0; i < b64.length; i += 64) body += `${b64.slice(i, i + 64)}\n`;
  return `-----BEGIN CERTIFICATE-----\n${body}-----END CERTIFICATE-----\n`;
}
