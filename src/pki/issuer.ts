// What a CA contributes to every Leaf it signs, worked out once per CA and kept
// as long as the CA object lives: its Name and AuthorityKeyIdentifier in DER,
// its signature AlgorithmIdentifier, its key as a node:crypto KeyObject, and
// the chain PEM that follows each Leaf.
import { KeyObject, sign } from 'node:crypto';
import type { CA } from './ca.ts';
import * as der from './der.ts';
import { authorityKeyIdOf, isSelfIssued } from './extensions.ts';
import { describeKeyObject } from './keys.ts';
import { certificatesToPem } from './pem.ts';
import { authorityKeyIdentifierExtension, type IssuerFields } from './tbs.ts';

export interface Issuer extends IssuerFields {
  sign(tbs: Buffer): Promise<Buffer>;
  /** The CA's chain below the root, as PEM: what follows the Leaf. */
  chainPem: string;
}

interface SignatureScheme {
  algorithm: Buffer;
  /** node:crypto's digest name; null for Ed25519, which hashes internally. */
  hash: string | null;
}

// RFC 5758 (ECDSA: no parameters), RFC 4055 (RSA: NULL parameters), RFC 8410 (Ed25519: none).
const SCHEMES: Record<string, SignatureScheme> = {
  'ECDSA-256': { algorithm: der.sequence(der.oid('1.2.840.10045.4.3.2')), hash: 'sha256' },
  'ECDSA-384': { algorithm: der.sequence(der.oid('1.2.840.10045.4.3.3')), hash: 'sha384' },
  RSA: { algorithm: der.sequence(der.oid('1.2.840.113549.1.1.11'), der.NULL), hash: 'sha256' },
  Ed25519: { algorithm: der.sequence(der.oid('1.3.101.112')), hash: null },
};

const issuers = new WeakMap<CA, Issuer>();

export function issuerOf(ca: CA): Issuer {
  let issuer = issuers.get(ca);
  if (!issuer) issuers.set(ca, (issuer = describeIssuer(ca)));
  return issuer;
}

function describeIssuer(ca: CA): Issuer {
  const key = KeyObject.from(ca.key.privateKey);
  const { algorithm, size } = describeKeyObject(key);
  const scheme = SCHEMES[algorithm === 'ECDSA' ? `ECDSA-${size}` : algorithm]!;
  return {
    name: subjectNameOf(new Uint8Array(ca.certificate.rawData)),
    authorityKeyIdentifier: authorityKeyIdentifierExtension(authorityKeyIdOf(ca.certificate)),
    signatureAlgorithm: scheme.algorithm,
    // RSA signing takes milliseconds, so it runs on the thread pool; ECDSA and
    // Ed25519 take microseconds, less than the hop to the pool would cost.
    sign: algorithm === 'RSA'
      ? (tbs) => new Promise((resolve, reject) => sign(scheme.hash, tbs, key, (err, sig) => (err ? reject(err) : resolve(sig))))
      : async (tbs) => sign(scheme.hash, tbs, { key, dsaEncoding: 'der' }),
    chainPem: certificatesToPem(ca.chain.filter((c) => !isSelfIssued(c))),
  };
}

/**
 * The subject Name exactly as the CA certificate encodes it, so each Leaf's
 * issuer matches it byte for byte (what Go's and OpenSSL's path building compare).
 */
function subjectNameOf(certificateDer: Uint8Array): Buffer {
  const fields = der.elementsOf(der.elementsOf(certificateDer)[0]!);
  // [0] version, serialNumber, signature, issuer, validity, subject
  return fields[fields[0]![0] === 0xa0 ? 5 : 4]!;
}
