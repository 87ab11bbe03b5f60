// The https_spiffe bundle endpoint's own X.509-SVID: whether the one held must
// be re-issued, and issuing it. Renewed like an identity's Leaf: 2/3 through
// its life, when the CA that signs changed, or when what it must name changed.
import type { CA } from '../pki/ca.ts';
import { generateKeyPair, privateKeyToPem } from '../pki/keys.ts';
import { issueLeaf } from '../pki/leaf.ts';
import { parseCertificates, sanValues, spiffeIDOf } from '../pki/parse.ts';
import { SpiffeID } from '../pki/spiffeid.ts';
import { signedBy } from '../pki/verify.ts';
import { ENDPOINT_SPIFFE_PATH } from './names.ts';

/** A day: short enough that a leaked endpoint key is worth little, long enough to ride out an operator outage. */
export const ENDPOINT_SVID_DURATION_MS = 24 * 3600_000;
const RENEW_AT_FRACTION = 2 / 3;

export function endpointSpiffeID(trustDomain: string): SpiffeID {
  return SpiffeID.fromParts(trustDomain, ENDPOINT_SPIFFE_PATH);
}

export interface SVIDWant {
  trustDomain: string;
  dnsNames: readonly string[];
  signer: CA;
}

/** Why the SVID in `certificatePem` must be re-issued, or undefined with when it will be due. */
export async function svidRenewal(certificatePem: string | undefined, want: SVIDWant, now: Date): Promise<{ reason?: string; dueAt?: Date }> {
  if (!certificatePem) return { reason: 'Missing' };
  let leaf;
  try {
    leaf = parseCertificates(certificatePem)[0]!;
  } catch {
    return { reason: 'Unparsable' };
  }
  if (spiffeIDOf(leaf)?.toString() !== endpointSpiffeID(want.trustDomain).toString()) return { reason: 'SPIFFEIDChanged' };
  if ([...sanValues(leaf, 'dns')].sort().join() !== [...want.dnsNames].sort().join()) return { reason: 'DNSNamesChanged' };
  if (!(await signedBy(leaf, want.signer.certificate))) return { reason: 'SignerChanged' };
  const lifetime = leaf.notAfter.getTime() - leaf.notBefore.getTime();
  const dueAt = new Date(leaf.notBefore.getTime() + lifetime * RENEW_AT_FRACTION);
  return now >= dueAt ? { reason: 'Expiring' } : { dueAt };
}

export async function issueEndpointSVID(want: SVIDWant, now: Date): Promise<{ certificatePem: string; privateKeyPem: string; notAfter: Date }> {
  const key = await generateKeyPair('ECDSA', 256);
  const leaf = await issueLeaf(want.signer, { spiffeID: endpointSpiffeID(want.trustDomain), dnsNames: [...want.dnsNames], publicKey: key.publicKey, durationMs: ENDPOINT_SVID_DURATION_MS, now });
  return { certificatePem: leaf.certificatePem, privateKeyPem: await privateKeyToPem(key), notAfter: leaf.notAfter };
}
