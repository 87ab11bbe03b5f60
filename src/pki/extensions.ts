// Extensions shared by every certificate this package issues.
import type { X509Certificate } from '@peculiar/x509';
import { type CryptoKey, x509 } from './crypto.ts';

/**
 * SubjectKeyIdentifier of the new certificate and AuthorityKeyIdentifier
 * pointing at its issuer (itself when self-signed). The AKI copies the
 * issuer's SKI, so path builders match them even for a CA brought from
 * elsewhere that derived its SKI differently.
 */
export async function keyIdentifiers(
  subjectPublicKey: CryptoKey,
  issuer: X509Certificate | 'self',
): Promise<[x509.SubjectKeyIdentifierExtension, x509.AuthorityKeyIdentifierExtension]> {
  const ski = await x509.SubjectKeyIdentifierExtension.create(subjectPublicKey);
  const authorityKeyId =
    issuer === 'self'
      ? ski.keyId
      : (issuer.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId ??
        (await x509.SubjectKeyIdentifierExtension.create(issuer.publicKey)).keyId);
  return [ski, new x509.AuthorityKeyIdentifierExtension(authorityKeyId)];
}

/** True when subject and issuer are the same name: a root, for our purposes. */
export function isSelfIssued(cert: X509Certificate): boolean {
  return Buffer.from(cert.subjectName.toArrayBuffer()).equals(Buffer.from(cert.issuerName.toArrayBuffer()));
}
