// The SPIFFE bundle document (SPIFFE Trust Domain and Bundle, section 4): a
// JWK Set whose `x509-svid` keys each carry one Root in `x5c`, plus
// `spiffe_sequence` and `spiffe_refresh_hint`. Pure: encode our Roots, parse
// a partner's document strictly. A foreign document is hostile input, so its
// size is capped before a byte is parsed, and error messages are our own words
// (never a fragment of the input).
import type { X509Certificate } from '@peculiar/x509';
import { Bundle, fingerprintOf, parseCertificates, x509 } from '../pki/index.ts';
import { publicKeyObjectOf } from '../pki/keys.ts';

export const X509_SVID_USE = 'x509-svid';
export const JWT_SVID_USE = 'jwt-svid';

/**
 * A document larger than this is refused unread. A Root as a JWK is about
 * 1-2 KB (RSA 4096 about 3 KB): 1 MiB holds hundreds, far more than any trust
 * domain keeps through a rotation, and bounds what a hostile endpoint costs.
 */
export const MAX_BUNDLE_DOCUMENT_BYTES = 1024 * 1024;

export interface SpiffeBundle {
  /** Deduplicated, in the Bundle's canonical order. */
  roots: X509Certificate[];
  /** Absent when the document has none (the spec makes it optional). */
  sequence?: number;
  /** Seconds; absent when the document has none. */
  refreshHintSeconds?: number;
  /** jwt-svid keys the document carried: accepted, counted, not used (the operator issues X.509-SVIDs only). */
  jwtAuthorities: number;
}

export type BundleDocumentErrorReason = 'BundleTooLarge' | 'BundleUnparsable' | 'BundleInvalid';

export class BundleDocumentError extends Error {
  readonly reason: BundleDocumentErrorReason;
  constructor(reason: BundleDocumentErrorReason, message: string) {
    super(message);
    this.name = 'BundleDocumentError';
    this.reason = reason;
  }
}

/** The JWK of a Root's public key, as the spec and go-spiffe write it: kty with crv/x/y (EC, OKP) or n/e (RSA). */
function publicJwk(cert: X509Certificate): Record<string, string> {
  const jwk = publicKeyObjectOf(cert).export({ format: 'jwk' }) as Record<string, string>;
  const fields = jwk.kty === 'RSA' ? ['kty', 'n', 'e'] : jwk.kty === 'EC' ? ['kty', 'crv', 'x', 'y'] : ['kty', 'crv', 'x'];
  return Object.fromEntries(fields.map((f) => [f, jwk[f]!]));
}

export interface BundleDocumentInput {
  roots: readonly X509Certificate[];
  sequence: number;
  refreshHintSeconds: number;
}

/** Our Roots as a SPIFFE bundle document; the same input always gives the same bytes. */
export function encodeBundleDocument(b: BundleDocumentInput): string {
  const keys = b.roots.map((root) => ({ use: X509_SVID_USE, ...publicJwk(root), x5c: [Buffer.from(root.rawData).toString('base64')] }));
  return JSON.stringify({ keys, spiffe_refresh_hint: b.refreshHintSeconds, spiffe_sequence: b.sequence }, null, 2) + '\n';
}

const invalid = (message: string) => new BundleDocumentError('BundleInvalid', message);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const STANDARD_BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function optionalCount(doc: Record<string, unknown>, field: string): number | undefined {
  const v = doc[field];
  if (v === undefined) return undefined;
  // JSON numbers past 2^53 lose precision in JavaScript: such a sequence could not be compared safely.
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw invalid(`${field} must be a non-negative integer below 2^53`);
  return v;
}

/** One x509-svid key: exactly one certificate, whose public key is the one the JWK states. */
function x509Authority(key: Record<string, unknown>, i: number): X509Certificate {
  const x5c = key.x5c;
  if (!Array.isArray(x5c) || x5c.length !== 1) throw invalid(`key ${i}: an x509-svid key must carry exactly one certificate in x5c`);
  const b64 = x5c[0];
  if (typeof b64 !== 'string' || !STANDARD_BASE64.test(b64)) throw invalid(`key ${i}: x5c[0] is not base64 (RFC 7517 4.7)`);
  let cert: X509Certificate;
  try {
    cert = new x509.X509Certificate(Buffer.from(b64, 'base64'));
  } catch {
    throw invalid(`key ${i}: x5c[0] is not an X.509 certificate`);
  }
  let stated: Record<string, string>;
  try {
    stated = publicJwk(cert);
  } catch {
    throw invalid(`key ${i}: the certificate's public key is of an unsupported type`);
  }
  // RFC 7517 4.7: the key in the first certificate MUST match the JWK's own parameters.
  for (const [field, value] of Object.entries(stated)) {
    if (key[field] !== value) throw invalid(`key ${i}: ${field} does not match the public key of its certificate`);
  }
  return cert;
}

/**
 * Parses a foreign bundle document. Refused: anything over maxBytes, anything
 * that is not a JSON object with a `keys` array, a key with no `use` or one
 * other than x509-svid or jwt-svid (as SPIRE's bundle parser: a key we cannot
 * place is a document we do not understand), an x509-svid key that is not
 * exactly one certificate matching the key, a jwt-svid key without `kid`, and
 * a document with no Root at all (accepting it would withdraw all trust).
 */
export function parseBundleDocument(input: string | Uint8Array, maxBytes = MAX_BUNDLE_DOCUMENT_BYTES): SpiffeBundle {
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.byteLength;
  if (size > maxBytes) throw new BundleDocumentError('BundleTooLarge', `the bundle document is ${size} bytes, more than the ${maxBytes} accepted`);
  let doc: unknown;
  try {
    doc = JSON.parse(typeof input === 'string' ? input : Buffer.from(input).toString('utf8'));
  } catch {
    throw new BundleDocumentError('BundleUnparsable', 'the bundle document is not JSON');
  }
  if (!isObject(doc)) throw invalid('the bundle document is not a JSON object');
  if (!Array.isArray(doc.keys)) throw invalid('the bundle document has no keys array (SPIFFE bundle 4.1.3: keys MUST be present)');
  const roots: X509Certificate[] = [];
  let jwtAuthorities = 0;
  doc.keys.forEach((key: unknown, i) => {
    if (!isObject(key)) throw invalid(`key ${i} is not a JSON object`);
    if (key.use === X509_SVID_USE) roots.push(x509Authority(key, i));
    else if (key.use === JWT_SVID_USE) {
      if (typeof key.kid !== 'string' || key.kid === '') throw invalid(`key ${i}: a jwt-svid key must have a kid`);
      jwtAuthorities++;
    } else if (key.use === undefined) throw invalid(`key ${i} has no use`);
    else throw invalid(`key ${i} has the use ${JSON.stringify(String(key.use).slice(0, 40))}, not x509-svid or jwt-svid`);
  });
  if (roots.length === 0) throw invalid('the bundle document has no x509-svid key: accepting it would withdraw trust in every Root');
  const sequence = optionalCount(doc, 'spiffe_sequence');
  const refreshHintSeconds = optionalCount(doc, 'spiffe_refresh_hint');
  return {
    // The trust domain name only orders and deduplicates here; the caller knows whose Roots these are.
    roots: new Bundle('bundle.invalid', roots).roots,
    ...(sequence !== undefined ? { sequence } : {}),
    ...(refreshHintSeconds !== undefined ? { refreshHintSeconds } : {}),
    jwtAuthorities,
  };
}

/**
 * The initial bundle an admin gives (ClusterFederatedTrustDomain
 * spec.trustDomainBundle): a SPIFFE bundle document, or PEM Roots as
 * `spire-server bundle show -format pem` prints them.
 */
export function parseInitialBundle(text: string): SpiffeBundle {
  if (text.trimStart().startsWith('{')) return parseBundleDocument(text);
  let roots: X509Certificate[];
  try {
    roots = parseCertificates(text);
  } catch {
    throw invalid('the initial bundle is neither a SPIFFE bundle document nor PEM certificates');
  }
  return { roots: new Bundle('bundle.invalid', roots).roots, jwtAuthorities: 0 };
}

/** sha256 fingerprints of the Roots, the form TrustDomain status uses. */
export function rootFingerprints(roots: readonly X509Certificate[]): Promise<string[]> {
  return Promise.all(roots.map((r) => fingerprintOf(r)));
}
