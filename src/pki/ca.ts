// Certificate authorities: creating a self-signed Root or an Intermediate
// below one, and loading a CA (ours or one brought by the admin) from PEM.
import type { X509Certificate } from '@peculiar/x509';
import { DEFAULT_KEY_SIZE } from '../api/defaults.ts';
import type { KeyAlgorithm } from '../api/types.ts';
import { x509 } from './crypto.ts';
import { PkiError } from './errors.ts';
import { isSelfIssued, keyIdentifiers } from './extensions.ts';
import { generateKeyPair, keyMatchesCertificate, type KeyPair, privateKeyFromPem, privateKeyToPem, signingAlgorithmOf } from './keys.ts';
import { isCACertificate, parseCertificates } from './parse.ts';
import { certificatesToPem } from './pem.ts';
import { randomSerialNumber } from './serial.ts';
import { isValidTrustDomainName, SpiffeID } from './spiffeid.ts';
import { DEFAULT_BACKDATE_MS, validityWindow } from './validity.ts';

export interface CA {
  certificate: X509Certificate;
  key: KeyPair;
  /** The CA certificate followed by its issuers, up to but excluding the root; [certificate] for a root. */
  chain: X509Certificate[];
  /** The self-signed root, when the PEM included it (always, for a Root): what a Bundle should trust. */
  root?: X509Certificate;
}

export interface CAOptions {
  trustDomain: string;
  algorithm: KeyAlgorithm;
  /** Defaults to the algorithm's default in src/api/defaults.ts. */
  size?: number;
  validityMs: number;
  now: Date;
}

/**
 * A root outside any trust domain, e.g. the webhook's CA, which only the API
 * server trusts: no SPIFFE ID, and it signs its leaves itself (path length 0).
 * Named "agent-identity-operator <purpose> CA <suffix>".
 */
export interface StandaloneRootOptions {
  purpose: string;
  algorithm: KeyAlgorithm;
  size?: number;
  validityMs: number;
  now: Date;
}

/** What a CA Secret stores. certificatePem is the CA certificate then its chain, as loadCA expects. */
export interface CAMaterial {
  certificatePem: string;
  privateKeyPem: string;
}

const ORGANIZATION = 'agent-identity-operator';
const CA_KEY_USAGES = x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature;
// RFC 5280 upper bound for commonName.
const MAX_COMMON_NAME = 64;

/**
 * "<trustDomain> Root CA 3f9a0c1e": the random suffix makes every generation's
 * subject distinct, so rotation can tell an old root from its successor.
 * A long prefix is shortened to keep the CN within 64 characters.
 */
function commonName(prefix: string, kind: string): string {
  const suffix = ` ${kind} CA ${Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(4))).toString('hex')}`;
  return prefix.slice(0, MAX_COMMON_NAME - suffix.length) + suffix;
}

function checkTrustDomain(trustDomain: string): void {
  if (!isValidTrustDomainName(trustDomain)) {
    throw new PkiError('InvalidTrustDomain', `invalid trust domain name ${JSON.stringify(trustDomain.slice(0, 100))}`);
  }
}

async function caExtensions(
  key: KeyPair,
  issuer: X509Certificate | 'self',
  pathLength: number,
  trustDomain: string | undefined,
): Promise<x509.Extension[]> {
  return [
    new x509.BasicConstraintsExtension(true, pathLength, true),
    new x509.KeyUsagesExtension(CA_KEY_USAGES, true),
    ...(await keyIdentifiers(key.publicKey, issuer)),
    // The SPIFFE X.509-SVID spec allows a signing certificate to carry its trust domain's ID.
    ...(trustDomain === undefined ? [] : [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: SpiffeID.fromParts(trustDomain, '').toString() }], false)]),
  ];
}

export async function createRoot(opts: CAOptions | StandaloneRootOptions): Promise<CAMaterial> {
  const trustDomain = 'trustDomain' in opts ? opts.trustDomain : undefined;
  if (trustDomain !== undefined) checkTrustDomain(trustDomain);
  const key = await generateKeyPair(opts.algorithm, opts.size ?? DEFAULT_KEY_SIZE[opts.algorithm]);
  const cn = 'trustDomain' in opts ? commonName(opts.trustDomain, 'Root') : commonName(ORGANIZATION, opts.purpose);
  const name: x509.JsonName = [{ O: [ORGANIZATION] }, { CN: [cn] }];
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialNumber(),
    subject: name,
    issuer: name,
    ...validityWindow(opts.now, opts.validityMs, DEFAULT_BACKDATE_MS, []),
    publicKey: key.publicKey,
    signingKey: key.privateKey,
    signingAlgorithm: signingAlgorithmOf(key),
    // pathLength 1 leaves room for one Intermediate below a trust domain's Root; a standalone root signs leaves itself.
    extensions: await caExtensions(key, 'self', trustDomain !== undefined ? 1 : 0, trustDomain),
  });
  return { certificatePem: certificatesToPem([certificate]), privateKeyPem: await privateKeyToPem(key) };
}

export async function createIntermediate(root: CA, opts: CAOptions): Promise<CAMaterial> {
  checkTrustDomain(opts.trustDomain);
  if (root.certificate.getExtension(x509.BasicConstraintsExtension)?.pathLength === 0) {
    throw new PkiError('CANotUsable', 'the issuing CA has path length 0 and cannot sign an Intermediate');
  }
  const key = await generateKeyPair(opts.algorithm, opts.size ?? DEFAULT_KEY_SIZE[opts.algorithm]);
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialNumber(),
    subject: [{ O: [ORGANIZATION] }, { CN: [commonName(opts.trustDomain, 'Intermediate')] }],
    issuer: root.certificate.subjectName,
    ...validityWindow(opts.now, opts.validityMs, DEFAULT_BACKDATE_MS, root.chain),
    publicKey: key.publicKey,
    signingKey: root.key.privateKey,
    signingAlgorithm: signingAlgorithmOf(root.key),
    extensions: await caExtensions(key, root.certificate, 0, opts.trustDomain),
  });
  // The new CA's chain is itself plus the issuer's, with the root left out as everywhere else.
  const issuers = root.chain.filter((c) => !isSelfIssued(c));
  return { certificatePem: certificatesToPem([certificate, ...issuers]), privateKeyPem: await privateKeyToPem(key) };
}

function named(cert: X509Certificate): string {
  return JSON.stringify(cert.subject || '(empty subject)');
}

/**
 * Loads a CA from its Secret. The first certificate is the CA's, the rest its
 * chain; a trailing root is dropped, since a chain stops below the root and
 * admins often paste the full chain.
 */
export async function loadCA(certificatePem: string, privateKeyPem: string): Promise<CA> {
  const certs = parseCertificates(certificatePem);
  const key = await privateKeyFromPem(privateKeyPem);
  const certificate = certs[0]!;
  const chain = certs.filter((c, i) => i === 0 || !isSelfIssued(c));
  const root = certs.find(isSelfIssued);

  if (!isCACertificate(certificate)) {
    throw new PkiError('CANotUsable', `certificate ${named(certificate)} is not a CA: BasicConstraints CA:TRUE is missing`);
  }
  const usages = certificate.getExtension(x509.KeyUsagesExtension)?.usages ?? 0;
  if (!(usages & x509.KeyUsageFlags.keyCertSign)) {
    throw new PkiError('CANotUsable', `CA certificate ${named(certificate)} lacks the keyCertSign key usage`);
  }
  if (!(await keyMatchesCertificate(key, certificate))) {
    throw new PkiError('CANotUsable', `the private key does not match CA certificate ${named(certificate)}`);
  }
  for (let i = 0; i + 1 < chain.length; i++) {
    const [child, parent] = [chain[i]!, chain[i + 1]!];
    if (!(await child.verify({ publicKey: parent.publicKey, signatureOnly: true }).catch(() => false))) {
      throw new PkiError('CANotUsable', `CA chain is out of order: ${named(child)} is not signed by the certificate after it`);
    }
  }
  return { certificate, key, chain, ...(root ? { root } : {}) };
}
