// Extensions shared by the certificates this package issues. CA certificates
// are built with @peculiar/x509 (ca.ts); a Leaf's extensions are written in DER (tbs.ts).
import type { X509Certificate } from '@peculiar/x509';
import { type CryptoKey, x509 } from './crypto.ts';
import { keyIdentifier } from './tbs.ts';

/**
 * The key identifier an AuthorityKeyIdentifier names for this issuer: a copy
 * of its SKI, so path builders match them even for a CA brought from
 * elsewhere that derived its SKI differently; RFC 5280 method 1 without one.
 */
export function authorityKeyIdOf(issuer: X509Certificate): Buffer {
  const ski = issuer.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  return ski !== undefined ? Buffer.from(ski, 'hex') : keyIdentifier(new Uint8Array(issuer.publicKey.rawData));
}

/**
 * SubjectKeyIdentifier of a new CA certificate and AuthorityKeyIdentifier
 * pointing at its issuer (itself when self-signed).
 */
export async function keyIdentifiers(
  subjectPublicKey: CryptoKey,
  issuer: X509Certificate | 'self',
): Promise<[x509.SubjectKeyIdentifierExtension, x509.AuthorityKeyIdentifierExtension]> {
  const ski = await x509.SubjectKeyIdentifierExtension.create(subjectPublicKey);
  const authorityKeyId = issuer === 'self' ? ski.keyId : authorityKeyIdOf(issuer).toString('hex');
  return [ski, new x509.AuthorityKeyIdentifierExtension(authorityKeyId)];
}

/** True when subject and issuer are the same name: a root, for our purposes. */
export function isSelfIssued(cert: X509Certificate): boolean {
  return Buffer.from(cert.subjectName.toArrayBuffer()).equals(Buffer.from(cert.issuerName.toArrayBuffer()));
}
