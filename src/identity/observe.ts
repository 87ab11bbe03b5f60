// Reads an identity Secret into the facts the checks decide on. Parsing
// failures become short reasons; key bytes never reach a message. Everything
// goes through node:crypto (OpenSSL's parser, microseconds per Leaf): at
// 10,000 identities a restart observes every Secret once (issue 20).
import { createPublicKey, X509Certificate as NodeX509Certificate } from 'node:crypto';
import type { X509Certificate } from '@peculiar/x509';
import { SECRET_CERT, SECRET_KEY } from '../api/group.ts';
import type { Secret } from '../api/types.ts';
import { certificateFields } from '../pki/certificate-fields.ts';
import { describeKeyObject, privateKeyFromPem, privateKeyObjectFromPem, samePublicKey, type KeyPair } from '../pki/keys.ts';
import { fingerprintOf, spiffeIDIn } from '../pki/parse.ts';
import { certificateBlocks } from '../pki/pem.ts';
import { serialNumberFromHex } from '../pki/serial.ts';
import { nodeCertificate, verifyCertificates } from '../pki/verify.ts';
import type { ObservedSecret } from './checks.ts';

export interface Observation {
  observed: ObservedSecret;
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

/**
 * What the Secret's bytes say, parsed once per Secret version (not once per
 * reconcile). No parsed certificate or key is kept (OpenSSL's structures take
 * kilobytes each, per identity): the chain is parsed again, in microseconds,
 * only when the verdict must be, and the key only for a re-issue that keeps
 * it (rotationPolicy Never: existingKeyPair).
 */
interface Parsed {
  observed: Omit<ObservedSecret, 'trust'>;
  verdict?: Verdict;
}

// Informer objects are replaced, never mutated, on change, so an entry lives
// as long as the cached Secret version does. The data strings are kept to
// compare against too: a Secret mutated in place is parsed again, not trusted.
const parsedSecrets = new WeakMap<Secret, { cert: string; key: string; parsed: Parsed }>();

export async function observeSecret(secret: Secret | undefined, bundle: TrustedRoots, now: Date): Promise<Observation> {
  if (!secret) return { observed: { exists: false, missingKeys: REQUIRED } };
  const { parsed, chain } = parsedSecret(secret);
  const { observed, verdict } = parsed;
  if (!observed.leaf || !observed.key) return { observed: { ...observed } };
  const t = now.getTime();
  if (verdict && verdict.bundlePem === bundle.pem && verdict.from <= t && t <= verdict.until) {
    return { observed: { ...observed, trust: { ok: true } }, rootFingerprint: verdict.rootFingerprint };
  }
  const { trust, rootFingerprint, checked } = await chainRoot(chain ?? chainOf(raw(secret.data![SECRET_CERT]!)), bundle.roots, now);
  parsed.verdict = trust?.ok && rootFingerprint ? { bundlePem: bundle.pem, ...windowOf(checked), rootFingerprint } : undefined;
  return { observed: { ...observed, trust }, rootFingerprint };
}

/** The Secret's key, for a re-issue that keeps it (rotationPolicy Never); undefined when it does not parse. */
export function existingKeyPair(secret: Secret | undefined): Promise<KeyPair | undefined> {
  return privateKeyFromPem(raw(secret?.data?.[SECRET_KEY] ?? '')).catch(() => undefined);
}

const raw = (b64: string) => (b64 ? Buffer.from(b64, 'base64').toString('utf8') : '');

/** The Secret version's parse; on a fresh one also the chain it read, so the first verdict does not parse it again. */
function parsedSecret(secret: Secret): { parsed: Parsed; chain?: NodeX509Certificate[] } {
  const cert = secret.data?.[SECRET_CERT] ?? '';
  const key = secret.data?.[SECRET_KEY] ?? '';
  const hit = parsedSecrets.get(secret);
  if (hit && hit.cert === cert && hit.key === key) return { parsed: hit.parsed };
  const { chain, ...parsed } = parse(raw(cert), raw(key));
  parsedSecrets.set(secret, { cert, key, parsed });
  return { parsed, chain };
}

function parse(certPem: string, keyPem: string): Parsed & { chain?: NodeX509Certificate[] } {
  const pems: Record<string, string> = { [SECRET_CERT]: certPem, [SECRET_KEY]: keyPem };
  const observed: ObservedSecret = { exists: true, missingKeys: REQUIRED.filter((k) => !pems[k]) };
  if (observed.missingKeys.length > 0) return { observed };

  let chain: NodeX509Certificate[] | undefined;
  let leaf: NodeX509Certificate | undefined;
  try {
    chain = chainOf(certPem);
    leaf = chain[0]!;
    const { uris, dnsNames } = certificateFields(leaf);
    observed.leaf = { spiffeID: spiffeIDIn(uris)?.toString(), dnsNames, notBefore: leaf.validFromDate, notAfter: leaf.validToDate, serialNumber: serialNumberFromHex(leaf.serialNumber) };
  } catch {
    chain = undefined;
    leaf = undefined;
    observed.leafError = `${SECRET_CERT} does not hold a PEM certificate`;
  }
  try {
    const key = privateKeyObjectFromPem(keyPem);
    observed.key = describeKeyObject(key);
    if (leaf) observed.keyMatchesLeaf = samePublicKey(createPublicKey(key), leaf.publicKey);
  } catch {
    observed.keyError = `${SECRET_KEY} does not hold a supported PEM private key`;
  }
  return { observed, chain };
}

/** Every CERTIFICATE block, Leaf first; throws unless there is one and all parse. */
function chainOf(certPem: string): NodeX509Certificate[] {
  const blocks = certificateBlocks(certPem);
  if (blocks.length === 0 || blocks.includes(null)) throw new Error('no certificate');
  return blocks.map((b) => new NodeX509Certificate(b!));
}

/** Where every certificate a check looked at is valid (both ends inclusive, as verifyChain's are). */
function windowOf(certs: NodeX509Certificate[]): { from: number; until: number } {
  return { from: Math.max(...certs.map((c) => c.validFromDate.getTime())), until: Math.min(...certs.map((c) => c.validToDate.getTime())) };
}

/**
 * Which root of the bundle the chain ends in (rotation moves leaves off
 * retiring roots). Trying each root alone also answers "is it trusted?", so
 * the chain is verified once per root, not once more against the whole bundle;
 * only an untrusted chain is verified against all roots, for the reason.
 * `checked`: the certificates whose validity the answer rests on.
 */
async function chainRoot(chain: NodeX509Certificate[], bundle: X509Certificate[], now: Date): Promise<{ trust: ObservedSecret['trust']; rootFingerprint?: string; checked: NodeX509Certificate[] }> {
  const roots = bundle.map(nodeCertificate);
  for (const [i, root] of roots.entries()) {
    if (verifyCertificates(chain, [root], now).ok) return { trust: { ok: true }, rootFingerprint: await fingerprintOf(bundle[i]!), checked: [...chain, ...roots.slice(0, i + 1)] };
  }
  return { trust: verifyCertificates(chain, roots, now), checked: [] };
}
