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

/** The bundle a chain is checked against; its PEM names it in the cache. */
export interface TrustedRoots { roots: X509Certificate[]; pem: string }

/**
 * A chain found trusted: the same answer holds for the same bundle while `now`
 * stays inside every validity window the check looked at (signatures, names
 * and CA flags do not depend on time). Untrusted answers are not kept: they
 * lead to re-issuance, and the reason may depend on the time.
 */
interface Verdict { bundlePem: string; from: number; until: number; rootFingerprint: string }

/** What the Secret's bytes say, parsed once per Secret version (not once per reconcile); the parsed chain itself is not kept. */
interface Parsed {
  observed: Omit<ObservedSecret, 'trust'>;
  keyPair?: KeyPair;
  verdict?: Verdict;
}

// Informer objects are replaced, never mutated, on change, so an entry lives
// as long as the cached Secret version does. The data strings are kept to
// compare against too: a Secret mutated in place is parsed again, not trusted.
const parsedSecrets = new WeakMap<Secret, { cert: string; key: string; parsed: Promise<Parsed> }>();

export async function observeSecret(secret: Secret | undefined, bundle: TrustedRoots, now: Date): Promise<Observation> {
  if (!secret) return { observed: { exists: false, missingKeys: REQUIRED } };
  const parsed = await parsedSecret(secret);
  const { observed, keyPair, verdict } = parsed;
  if (!observed.leaf || !keyPair) return { observed: { ...observed }, keyPair };
  const t = now.getTime();
  if (verdict && verdict.bundlePem === bundle.pem && verdict.from <= t && t <= verdict.until) {
    return { observed: { ...observed, trust: { ok: true } }, keyPair, rootFingerprint: verdict.rootFingerprint };
  }
  const chain = parseCertificates(raw(secret.data![SECRET_CERT]!));
  const { trust, rootFingerprint, checked } = await chainRoot(chain, bundle.roots, now);
  parsed.verdict = trust?.ok && rootFingerprint ? { bundlePem: bundle.pem, ...windowOf(checked), rootFingerprint } : undefined;
  return { observed: { ...observed, trust }, keyPair, rootFingerprint };
}

const raw = (b64: string) => (b64 ? Buffer.from(b64, 'base64').toString('utf8') : '');

function parsedSecret(secret: Secret): Promise<Parsed> {
  const cert = secret.data?.[SECRET_CERT] ?? '';
  const key = secret.data?.[SECRET_KEY] ?? '';
  const hit = parsedSecrets.get(secret);
  if (hit && hit.cert === cert && hit.key === key) return hit.parsed;
  const parsed = parse(raw(cert), raw(key));
  parsedSecrets.set(secret, { cert, key, parsed });
  return parsed;
}

async function parse(certPem: string, keyPem: string): Promise<Parsed> {
  const pems: Record<string, string> = { [SECRET_CERT]: certPem, [SECRET_KEY]: keyPem };
  const observed: ObservedSecret = { exists: true, missingKeys: REQUIRED.filter((k) => !pems[k]) };
  if (observed.missingKeys.length > 0) return { observed };

  let leaf: X509Certificate | undefined;
  try {
    leaf = parseCertificates(certPem)[0]!;
    const info = await describeCertificate(leaf);
    observed.leaf = { spiffeID: info.spiffeID, dnsNames: info.dnsNames, notBefore: info.notBefore, notAfter: info.notAfter, serialNumber: info.serialNumber };
  } catch {
    observed.leafError = `${SECRET_CERT} does not hold a PEM certificate`;
  }
  let keyPair: KeyPair | undefined;
  try {
    keyPair = await privateKeyFromPem(keyPem);
    observed.key = { algorithm: keyPair.algorithm, size: keyPair.size };
  } catch {
    observed.keyError = `${SECRET_KEY} does not hold a supported PEM private key`;
  }
  if (observed.leaf && keyPair) observed.keyMatchesLeaf = await keyMatchesCertificate(keyPair, leaf!);
  return { observed, keyPair };
}

/** Where every certificate a check looked at is valid (both ends inclusive, as verifyChain's are). */
function windowOf(certs: X509Certificate[]): { from: number; until: number } {
  return { from: Math.max(...certs.map((c) => c.notBefore.getTime())), until: Math.min(...certs.map((c) => c.notAfter.getTime())) };
}

/**
 * Which root of the bundle the chain ends in (rotation moves leaves off
 * retiring roots). Trying each root alone also answers "is it trusted?", so
 * the chain is verified once per root, not once more against the whole bundle;
 * only an untrusted chain is verified against all roots, for the reason.
 * `checked`: the certificates whose validity the answer rests on.
 */
async function chainRoot(chain: X509Certificate[], bundle: X509Certificate[], now: Date): Promise<{ trust: ObservedSecret['trust']; rootFingerprint?: string; checked: X509Certificate[] }> {
  for (const [i, root] of bundle.entries()) {
    if ((await verifyChain(chain, [root], now)).ok) return { trust: { ok: true }, rootFingerprint: await fingerprintOf(root), checked: [...chain, ...bundle.slice(0, i + 1)] };
  }
  return { trust: await verifyChain(chain, bundle, now), checked: [] };
}
