// Key pairs as WebCrypto keys, plus the PEM forms Secrets hold. Parsing goes
// through node:crypto because it reads PKCS#8, PKCS#1 and SEC1 alike.
import { createPrivateKey, createPublicKey, ECDH, KeyObject, type webcrypto } from 'node:crypto';
import type { X509Certificate } from '@peculiar/x509';
import type { KeyAlgorithm } from '../api/types.ts';
import { subtle, type CryptoKey } from './crypto.ts';
import * as der from './der.ts';
import { PkiError } from './errors.ts';

export interface KeyPair {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  algorithm: KeyAlgorithm;
  /** ECDSA: curve bits (256 | 384); RSA: modulus bits; Ed25519: 0. */
  size: number;
}

const EC_CURVES: Record<number, { namedCurve: string; hash: string }> = {
  256: { namedCurve: 'P-256', hash: 'SHA-256' },
  384: { namedCurve: 'P-384', hash: 'SHA-384' },
};
const RSA_GENERATE_SIZES = [2048, 3072, 4096];
// Loaded keys (a CA someone brings) may have any modulus at least this large.
const RSA_MIN_SIZE = 2048;

/** The WebCrypto import/generate parameters for a supported key. */
function keyParams(algorithm: KeyAlgorithm, size: number): webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams | webcrypto.Algorithm {
  switch (algorithm) {
    case 'RSA':
      return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    case 'ECDSA':
      return { name: 'ECDSA', namedCurve: EC_CURVES[size]!.namedCurve };
    case 'Ed25519':
      return { name: 'Ed25519' };
  }
}

/** The signature algorithm a key signs with: SHA-384 pairs with P-384, SHA-256 otherwise. */
export function signingAlgorithmOf(kp: KeyPair): webcrypto.Algorithm | webcrypto.EcdsaParams {
  if (kp.algorithm === 'ECDSA') return { name: 'ECDSA', hash: EC_CURVES[kp.size]!.hash };
  return kp.privateKey.algorithm;
}

export function describeKey(kp: Pick<KeyPair, 'algorithm' | 'size'>): string {
  return kp.algorithm === 'Ed25519' ? 'Ed25519' : `${kp.algorithm}-${kp.size}`;
}

export async function generateKeyPair(algorithm: KeyAlgorithm, size: number): Promise<KeyPair> {
  let params: webcrypto.RsaHashedKeyGenParams | webcrypto.EcKeyGenParams | webcrypto.Algorithm;
  if (algorithm === 'RSA' && RSA_GENERATE_SIZES.includes(size)) {
    params = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', modulusLength: size, publicExponent: new Uint8Array([1, 0, 1]) };
  } else if (algorithm === 'ECDSA' && size in EC_CURVES) {
    params = keyParams(algorithm, size);
  } else if (algorithm === 'Ed25519') {
    params = keyParams(algorithm, 0);
    size = 0; // the CRD documents size as ignored for Ed25519
  } else {
    throw new PkiError('KeyUnsupported', `unsupported key: ${String(algorithm)} size ${String(size)}`);
  }
  // WebCrypto generates on the thread pool, off the event loop (an RSA-4096 key
  // takes a second of CPU). For P-256 it also measured cheapest per key with
  // several in flight, as the operator has: 20-29 us of wall time and 31-39 us
  // of process CPU, against ~50 us for generateKeyPairSync plus toCryptoKey and
  // 40-47 us / 57-67 us for node:crypto's callback generateKeyPair.
  const pair = (await subtle.generateKey(params, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  return { privateKey: pair.privateKey, publicKey: pair.publicKey, algorithm, size };
}

export async function privateKeyToPem(kp: KeyPair): Promise<string> {
  return KeyObject.from(kp.privateKey).export({ type: 'pkcs8', format: 'pem' }) as string;
}

// Only the key block is handed to OpenSSL, so a PEM that also carries
// certificates or EC PARAMETERS parses the same as a bare key.
const PRIVATE_KEY_BLOCK = /-----BEGIN ((?:RSA |EC |ENCRYPTED )?PRIVATE KEY)-----[\s\S]*?-----END \1-----/;
// PKCS#8 encryption has its own label; PKCS#1/SEC1 encryption is a PEM header.
const ENCRYPTED = /BEGIN ENCRYPTED |Proc-Type:\s*4,ENCRYPTED/;

/** A PEM private key (PKCS#8, PKCS#1 or SEC1, unencrypted) as a node:crypto KeyObject; the errors quote no input. */
export function privateKeyObjectFromPem(pem: string): KeyObject {
  const block = typeof pem === 'string' ? PRIVATE_KEY_BLOCK.exec(pem) : null;
  if (!block) throw new PkiError('KeyUnparsable', 'no PEM private key block found');
  if (ENCRYPTED.test(block[0])) {
    throw new PkiError('KeyUnsupported', 'encrypted private keys are not supported');
  }
  try {
    return createPrivateKey({ key: block[0], format: 'pem' });
  } catch {
    // The OpenSSL error is dropped on purpose: keep every byte of input out of the message.
    throw new PkiError('KeyUnparsable', 'the private key could not be parsed');
  }
}

export async function privateKeyFromPem(pem: string): Promise<KeyPair> {
  const key = privateKeyObjectFromPem(pem);
  const { algorithm, size } = describeKeyObject(key);
  const params = keyParams(algorithm, size);
  return {
    privateKey: key.toCryptoKey(params, true, ['sign']),
    publicKey: createPublicKey(key).toCryptoKey(params, true, ['verify']),
    algorithm,
    size,
  };
}

/** Algorithm and size of a private or public key, or KeyUnsupported. */
export function describeKeyObject(key: KeyObject): { algorithm: KeyAlgorithm; size: number } {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
      if ((details.modulusLength ?? 0) >= RSA_MIN_SIZE) return { algorithm: 'RSA', size: details.modulusLength! };
      throw new PkiError('KeyUnsupported', `RSA keys must be at least ${RSA_MIN_SIZE} bits`);
    case 'ec':
      if (details.namedCurve === 'prime256v1') return { algorithm: 'ECDSA', size: 256 };
      if (details.namedCurve === 'secp384r1') return { algorithm: 'ECDSA', size: 384 };
      throw new PkiError('KeyUnsupported', 'ECDSA keys must use curve P-256 or P-384');
    case 'ed25519':
      return { algorithm: 'Ed25519', size: 0 };
    default:
      throw new PkiError('KeyUnsupported', `unsupported key type ${String(key.asymmetricKeyType)}; use ECDSA, Ed25519 or RSA`);
  }
}

/** A public key of a supported type (describeKeyObject), as the WebCrypto key a Leaf is issued for. */
export function publicCryptoKey(key: KeyObject): CryptoKey {
  const { algorithm, size } = describeKeyObject(key);
  return key.toCryptoKey(keyParams(algorithm, size), true, ['verify']);
}

/**
 * A public key's SubjectPublicKeyInfo DER, with an EC point always
 * uncompressed: OpenSSL keeps the form a key was read in, but RFC 5480 only
 * requires verifiers to support uncompressed points and Go accepts nothing else.
 */
export function subjectPublicKeyInfoOf(key: KeyObject): Buffer {
  const spki = key.export({ type: 'spki', format: 'der' });
  if (key.asymmetricKeyType !== 'ec') return spki;
  const [algorithm, bits] = der.elementsOf(spki);
  const point = der.contentsOf(bits!).subarray(1);
  if (point[0] === 0x04) return spki;
  return der.sequence(algorithm!, der.bitString(ECDH.convertKey(point, key.asymmetricKeyDetails!.namedCurve!, undefined, undefined, 'uncompressed') as Buffer));
}

/** The public key inside a certificate, as a node:crypto KeyObject. */
export function publicKeyObjectOf(cert: X509Certificate): KeyObject {
  try {
    return createPublicKey({ key: Buffer.from(cert.publicKey.rawData), format: 'der', type: 'spki' });
  } catch {
    throw new PkiError('KeyUnsupported', "the certificate's public key could not be read");
  }
}

/** True when the certificate certifies this key pair's public key. */
export async function keyMatchesCertificate(kp: KeyPair, cert: X509Certificate): Promise<boolean> {
  try {
    return samePublicKey(KeyObject.from(kp.publicKey), publicKeyObjectOf(cert));
  } catch {
    return false;
  }
}

/**
 * Whether two public keys are the same key. equals() compares key material,
 * so SPKI encoding differences (e.g. a compressed EC point) do not matter;
 * Node 24's equals() leaves an OpenSSL error queued when key types differ,
 * which makes the next createPrivateKey fail, so it is never asked across types.
 */
export function samePublicKey(ours: KeyObject, theirs: KeyObject): boolean {
  return ours.asymmetricKeyType === theirs.asymmetricKeyType && ours.equals(theirs);
}
