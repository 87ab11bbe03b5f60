// Reading federated-bundles.json into the foreign Bundles of the agent's
// BundleSet. Strict: a document the SDK misread could only let a wrong CA
// vouch for someone, so anything unexpected rejects the whole reload.
import { Bundle, isValidTrustDomainName, PkiError } from '../pki/index.ts';

// PkiError: material.ts passes its message on (it quotes names, never certificates).
const invalid = (message: string) => new PkiError('InvalidBundle', message);

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The foreign Bundles the document holds; throws a PkiError naming the first problem (never quoting a certificate). */
export function parseFederatedBundles(text: string, localTrustDomain: string): Bundle[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw invalid('not valid JSON');
  }
  if (!isObject(raw)) throw invalid('must be a JSON object');
  if (raw.version !== 1) throw invalid(`unsupported version ${JSON.stringify(raw.version)}; this SDK reads version 1`);
  if (!isObject(raw.bundles)) throw invalid('bundles must be an object of trust domain -> PEM Roots');
  return Object.entries(raw.bundles).map(([trustDomain, pem]) => {
    if (!isValidTrustDomainName(trustDomain)) throw invalid(`bundles: ${JSON.stringify(trustDomain.slice(0, 100))} is not a trust domain name`);
    // Our own Roots come from ca.crt alone: a second source for them could only widen who speaks for us.
    if (trustDomain === localTrustDomain) throw invalid(`bundles: ${trustDomain} is this agent's own trust domain, whose Roots are ca.crt's alone`);
    if (typeof pem !== 'string') throw invalid(`bundles.${trustDomain} must be PEM text`);
    return Bundle.fromPem(trustDomain, pem);
  });
}
