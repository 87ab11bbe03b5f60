// The kubelet's credential bundle for a podCertificate projection: one PEM
// file holding the PKCS#8 PRIVATE KEY block, then the CERTIFICATE chain, Leaf
// first. Split here; material.ts checks the pieces as it checks tls.key/tls.crt.
import { pemBlockPattern } from '../pki/pem.ts';
import { IdentityError } from './errors.ts';

// PKCS#8 only (the kubelet writes no other), with the line end that follows it.
const PRIVATE_KEY_BLOCK = new RegExp(`${pemBlockPattern('PRIVATE KEY').source}\\r?\\n?`, 'g');

/** The key block and the rest (the chain). Messages name the file, never its contents. */
export function splitCredentialBundle(pem: string, path: string): { privateKey: string; certificate: string } {
  const keys = pem.match(PRIVATE_KEY_BLOCK) ?? [];
  if (keys.length !== 1) throw new IdentityError(`${path}: expected one PEM private key block (PKCS#8) before the certificates, found ${keys.length}`);
  return { privateKey: keys[0]!, certificate: pem.replace(PRIVATE_KEY_BLOCK, '') };
}
