// The public face of src/pki. Other folders import from here (or the named
// module) and never load @peculiar/x509 themselves: see crypto.ts.
export { Bundle } from './bundle.ts';
export { BundleSet } from './bundle-set.ts';
export { type CA, type CAMaterial, type CAOptions, createIntermediate, createRoot, loadCA, type StandaloneRootOptions } from './ca.ts';
export { type CryptoKey, x509 } from './crypto.ts';
export { PkiError, type PkiErrorReason } from './errors.ts';
export {
  describeKey,
  generateKeyPair,
  type KeyPair,
  keyMatchesCertificate,
  privateKeyFromPem,
  privateKeyToPem,
} from './keys.ts';
export { type IssuedLeaf, isValidDNSName, issueLeaf, issueServingLeaf, type LeafRequest, type ServingLeafRequest } from './leaf.ts';
export { type CertificateInfo, describeCertificate, fingerprintOf, parseCertificates, sanValues, spiffeIDOf } from './parse.ts';
export { certificatesToPem } from './pem.ts';
export { serialNumberOf } from './serial.ts';
export { isValidTrustDomainName, renderSpiffeID, SpiffeID, type TemplateVars } from './spiffeid.ts';
export { DEFAULT_BACKDATE_MS, issuedAt, type Validity } from './validity.ts';
export { chainsToRoots, signedBy, verifyChain, type VerifyResult } from './verify.ts';
export type { X509Certificate } from '@peculiar/x509';
