// Reading the stub PKCS#10 request a kubelet puts in a PodCertificateRequest:
// its signature proves the kubelet holds the new key, and its public key is
// the only part of it the signer uses (subject and extensions are ignored:
// the identity decides what the certificate says).
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { PodCertificateKeyType } from '../api/types.ts';
import { type CryptoKey, x509 } from './crypto.ts';
import { publicCryptoKey } from './keys.ts';

/** The key types the signer issues for; the kubelet's others (ECDSAP521) are refused. */
export const SUPPORTED_POD_KEY_TYPES: readonly PodCertificateKeyType[] = ['ECDSAP256', 'ECDSAP384', 'ED25519', 'RSA3072', 'RSA4096'];

export type CertificateRequestKey =
  /** The request could not be read, or its signature does not verify with its own key. */
  | { ok: false; problem: string }
  /** keyType names the kubelet's type, or the key as found when it is none of them (e.g. RSA-2048). */
  | { ok: true; keyType: PodCertificateKeyType | string; publicKey?: CryptoKey };

const EC_TYPES: Record<string, PodCertificateKeyType> = { prime256v1: 'ECDSAP256', secp384r1: 'ECDSAP384', secp521r1: 'ECDSAP521' };

/** The kubelet's name for a key type (PodCertificateKeyType), or a description of a key that has none. */
export function podKeyTypeOf(key: KeyObject): PodCertificateKeyType | string {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return details.modulusLength === 3072 || details.modulusLength === 4096 ? `RSA${details.modulusLength}` as PodCertificateKeyType : `RSA-${details.modulusLength}`;
    case 'ec':
      return EC_TYPES[details.namedCurve ?? ''] ?? `ECDSA on ${details.namedCurve}`;
    case 'ed25519':
      return 'ED25519';
    default:
      return String(key.asymmetricKeyType);
  }
}

/**
 * The public key of a base64 DER PKCS#10 request, once its signature verified.
 * publicKey is set only for a supported key type. Problems are described in
 * our own words: nothing from the request is quoted.
 */
export async function parseCertificateRequest(base64Der: string): Promise<CertificateRequestKey> {
  let csr: x509.Pkcs10CertificateRequest;
  let key: KeyObject;
  try {
    csr = new x509.Pkcs10CertificateRequest(Buffer.from(base64Der, 'base64'));
    key = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
  } catch {
    return { ok: false, problem: 'stubPKCS10Request is not a DER PKCS#10 certificate request with a readable public key' };
  }
  const verified = await csr.verify().catch(() => false);
  if (!verified) return { ok: false, problem: "stubPKCS10Request's signature does not verify with its own public key" };
  const keyType = podKeyTypeOf(key);
  return SUPPORTED_POD_KEY_TYPES.includes(keyType as PodCertificateKeyType) ? { ok: true, keyType, publicKey: publicCryptoKey(key) } : { ok: true, keyType };
}
