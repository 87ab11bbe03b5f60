// Turning the identity files into usable material: an SVID whose key matches,
// a Bundle it chains to, and the policy written for it. Any inconsistency
// (a half-written file, a key from another generation) rejects the whole set.
import type { PolicyDocument } from '../api/documents.ts';
import { Bundle, BundleSet, keyMatchesCertificate, parseCertificates, PkiError, privateKeyFromPem, spiffeIDOf, verifyChain } from '../pki/index.ts';
import { isCACertificate } from '../pki/parse.ts';
import { IdentityError } from './errors.ts';
import { parseFederatedBundles } from './federated-bundles.ts';
import type { IdentityContents } from './files.ts';
import { parsePolicyDocument } from './policy-document.ts';
import { X509SVID } from './svid.ts';

export interface Material {
  svid: X509SVID;
  /** The local trust domain's (ca.crt). */
  bundle: Bundle;
  /** The local Bundle and every foreign one (federated-bundles.json): what peers are verified against, each by its trust domain. */
  bundles: BundleSet;
  policy: PolicyDocument;
  digest: string;
}

// Only PkiError messages are passed on: they never quote input. Anything
// else thrown while reading tls.key could, so it becomes a fixed message.
async function step<T>(file: string, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw new IdentityError(`${file}: ${err instanceof PkiError ? err.message : 'could not be parsed'}`);
  }
}

export async function parseMaterial(contents: IdentityContents, expectedID: string | undefined, now: Date): Promise<Material> {
  // Where each piece was read from: tls.crt and tls.key, or both from the credential bundle.
  const files = contents.from;
  const certs = await step(files.certificate, () => parseCertificates(contents.certificate));
  const id = spiffeIDOf(certs[0]!);
  if (!id) throw new IdentityError(`${files.certificate}: the certificate has no SPIFFE ID (exactly one spiffe:// URI SAN)`);
  // A CA certificate carries its trust domain's ID; only a Leaf is an agent's identity.
  if (isCACertificate(certs[0]!) || id.path === '') throw new IdentityError(`${files.certificate}: the first certificate is a CA, not an X.509-SVID Leaf`);
  if (expectedID !== undefined && id.toString() !== expectedID) {
    throw new IdentityError(`${files.certificate}: the certificate is ${id}, expected ${expectedID}`);
  }
  const key = await step(files.privateKey, () => privateKeyFromPem(contents.privateKey));
  if (!(await keyMatchesCertificate(key, certs[0]!))) {
    throw new IdentityError(`${files.privateKey}: the private key does not match the certificate in ${files.certificate}`);
  }
  const bundle = await step(files.bundle, () => Bundle.fromPem(id.trustDomain, contents.bundle));
  const foreign = contents.federatedBundles === undefined ? [] : await step(files.federatedBundles, () => parseFederatedBundles(contents.federatedBundles!, id.trustDomain));
  const verified = await verifyChain(certs, bundle.roots, now);
  if (!verified.ok) throw new IdentityError(`${files.certificate}: the certificate does not chain to ${files.bundle}: ${verified.reason}`);
  let policy: PolicyDocument;
  try {
    policy = parsePolicyDocument(contents.policy);
  } catch (err) {
    // These messages are the SDK's own, about a file that holds nothing secret.
    throw new IdentityError(`${files.policy}: ${(err as Error).message}`);
  }
  if (policy.spiffeID !== id.toString()) {
    throw new IdentityError(`${files.policy}: the policy protects ${policy.spiffeID}, but the certificate is ${id}`);
  }
  return { svid: new X509SVID(id, certs, contents.certificate, contents.privateKey), bundle, bundles: new BundleSet(bundle, foreign), policy, digest: contents.digest };
}
