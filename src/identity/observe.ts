// Reads an identity Secret into the facts the checks decide on. Parsing
// failures become short reasons; key bytes never reach a message.
import type { X509Certificate } from '@peculiar/x509';
import { SECRET_CERT, SECRET_KEY } from '../api/group.ts';
import type { Secret } from '../api/types.ts';
import { privateKeyFromPem, keyMatchesCertificate, type KeyPair } from '../pki/keys.ts';
import { parseCertificates, describeCertificate, fingerprintOf } from '../pki/parse.ts';
import { verifyChain } from '../pki/verify.ts';
import type { ObservedSecret } from './checks.ts';

export interface Observation {
  observed: ObservedSecret;
  /** The parsed key, kept for rotationPolicy: Never. */
  keyPair?: KeyPair;
  /** Fingerprint of the bundle root the leaf chains to. */
  rootFingerprint?: string;
}

const REQUIRED = [SECRET_CERT, SECRET_KEY];

export async function observeSecret(secret: Secret | undefined, bundle: X509Certificate[], now: Date): Promise<Observation> {
  if (!secret) return { observed: { exists: false, missingKeys: REQUIRED } };
  const raw = (k: string) => (secret.data?.[k] ? Buffer.from(secret.data[k], 'base64').toString('utf8') : '');
  const observed: ObservedSecret = { exists: true, missingKeys: REQUIRED.filter((k) => !raw(k)) };
  if (observed.missingKeys.length > 0) return { observed };

  let chain: X509Certificate[] = [];
  try {
    chain = parseCertificates(raw(SECRET_CERT));
    const info = await describeCertificate(chain[0]!);
    observed.leaf = { spiffeID: info.spiffeID, dnsNames: info.dnsNames, notBefore: info.notBefore, notAfter: info.notAfter, serialNumber: info.serialNumber };
  } catch {
    observed.leafError = `${SECRET_CERT} does not hold a PEM certificate`;
  }
  let keyPair: KeyPair | undefined;
  try {
    keyPair = await privateKeyFromPem(raw(SECRET_KEY));
    observed.key = { algorithm: keyPair.algorithm, size: keyPair.size };
  } catch {
    observed.keyError = `${SECRET_KEY} does not hold a supported PEM private key`;
  }
  let rootFingerprint: string | undefined;
  if (observed.leaf && keyPair) {
    observed.keyMatchesLeaf = await keyMatchesCertificate(keyPair, chain[0]!);
    ({ trust: observed.trust, rootFingerprint } = await chainRoot(chain, bundle, now));
  }
  return { observed, keyPair, rootFingerprint };
}

/**
 * Which root of the bundle the chain ends in (rotation moves leaves off
 * retiring roots). Trying each root alone also answers "is it trusted?", so
 * the chain is verified once per root, not once more against the whole bundle;
 * only an untrusted chain is verified against all roots, for the reason.
 */
async function chainRoot(chain: X509Certificate[], bundle: X509Certificate[], now: Date): Promise<{ trust: ObservedSecret['trust']; rootFingerprint?: string }> {
  for (const root of bundle) {
    if ((await verifyChain(chain, [root], now)).ok) return { trust: { ok: true }, rootFingerprint: await fingerprintOf(root) };
  }
  return { trust: await verifyChain(chain, bundle, now) };
}
