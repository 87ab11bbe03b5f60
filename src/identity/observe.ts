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

/** What the Secret's bytes alone say: parsed once per Secret version, not once per reconcile. */
interface Parsed {
  observed: Omit<ObservedSecret, 'trust'>;
  chain: X509Certificate[];
  keyPair?: KeyPair;
}

// Informer objects are replaced, never mutated, on change, so an entry lives
// as long as the cached Secret version does. The data strings are kept to
// compare against too: a Secret mutated in place is parsed again, not trusted.
const parsedSecrets = new WeakMap<Secret, { cert: string; key: string; parsed: Promise<Parsed> }>();

export async function observeSecret(secret: Secret | undefined, bundle: X509Certificate[], now: Date): Promise<Observation> {
  if (!secret) return { observed: { exists: false, missingKeys: REQUIRED } };
  const { observed, chain, keyPair } = await parsedSecret(secret);
  if (!observed.leaf || !keyPair) return { observed: { ...observed }, keyPair };
  // Validity windows depend on `now` and the bundle may have changed: the chain is checked every time (signatures are memoized).
  const { trust, rootFingerprint } = await chainRoot(chain, bundle, now);
  return { observed: { ...observed, trust }, keyPair, rootFingerprint };
}

function parsedSecret(secret: Secret): Promise<Parsed> {
  const cert = secret.data?.[SECRET_CERT] ?? '';
  const key = secret.data?.[SECRET_KEY] ?? '';
  const hit = parsedSecrets.get(secret);
  if (hit && hit.cert === cert && hit.key === key) return hit.parsed;
  const parsed = parse(cert, key);
  parsedSecrets.set(secret, { cert, key, parsed });
  return parsed;
}

async function parse(certB64: string, keyB64: string): Promise<Parsed> {
  const raw = (b64: string) => (b64 ? Buffer.from(b64, 'base64').toString('utf8') : '');
  const pems: Record<string, string> = { [SECRET_CERT]: raw(certB64), [SECRET_KEY]: raw(keyB64) };
  const observed: ObservedSecret = { exists: true, missingKeys: REQUIRED.filter((k) => !pems[k]) };
  if (observed.missingKeys.length > 0) return { observed, chain: [] };

  let chain: X509Certificate[] = [];
  try {
    chain = parseCertificates(pems[SECRET_CERT]!);
    const info = await describeCertificate(chain[0]!);
    observed.leaf = { spiffeID: info.spiffeID, dnsNames: info.dnsNames, notBefore: info.notBefore, notAfter: info.notAfter, serialNumber: info.serialNumber };
  } catch {
    observed.leafError = `${SECRET_CERT} does not hold a PEM certificate`;
  }
  let keyPair: KeyPair | undefined;
  try {
    keyPair = await privateKeyFromPem(pems[SECRET_KEY]!);
    observed.key = { algorithm: keyPair.algorithm, size: keyPair.size };
  } catch {
    observed.keyError = `${SECRET_KEY} does not hold a supported PEM private key`;
  }
  if (observed.leaf && keyPair) observed.keyMatchesLeaf = await keyMatchesCertificate(keyPair, chain[0]!);
  return { observed, chain, keyPair };
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
