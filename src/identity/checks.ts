// "Does this identity need a new certificate?" as an ordered list of small,
// named, pure checks (the cert-manager pattern). The first violation wins:
// its reason becomes the condition reason and the event text. Adding a
// trigger means adding one function to CHECKS.
import type { KeyRequest } from '../api/defaults.ts';
import type { KeyAlgorithm } from '../api/types.ts';

export interface ObservedLeaf {
  spiffeID?: string;
  dnsNames: string[];
  notBefore: Date;
  notAfter: Date;
  serialNumber: string;
}

/** What the reconciler observed in the identity's Secret, already parsed. */
export interface ObservedSecret {
  exists: boolean;
  missingKeys: string[];
  leaf?: ObservedLeaf;
  leafError?: string;
  key?: { algorithm: KeyAlgorithm; size: number };
  keyError?: string;
  keyMatchesLeaf?: boolean;
  /** Whether the chain verifies against the TrustDomain's current bundle, and why not. */
  trust?: { ok: true } | { ok: false; reason: string };
}

export interface CheckInput {
  secret: ObservedSecret;
  desired: { spiffeID: string; dnsNames: string[]; key: KeyRequest };
  renewalTime?: Date;
  /** Set while the leaf chains to a retiring root: when rotation wants it moved. */
  rotationReissueAt?: Date;
  /** The renew-requested-at annotation, and the value the current certificate answers. */
  renewal?: { requested?: string; answered?: string };
  now: Date;
}

export interface Violation {
  reason: string;
  message: string;
}

export type Check = (i: CheckInput) => Violation | undefined;

const sameSet = (a: readonly string[], b: readonly string[]) => {
  const sa = new Set(a);
  return sa.size === new Set(b).size && b.every((x) => sa.has(x));
};

export const secretDoesNotExist: Check = ({ secret }) =>
  secret.exists ? undefined : { reason: 'SecretDoesNotExist', message: 'the identity Secret does not exist' };

export const secretIsMissingData: Check = ({ secret }) =>
  secret.missingKeys.length === 0 ? undefined
    : { reason: 'SecretIsMissingData', message: `the identity Secret is missing ${secret.missingKeys.join(', ')}` };

export const secretCertificateUnparsable: Check = ({ secret }) =>
  secret.leaf ? undefined : { reason: 'SecretCertificateUnparsable', message: `the certificate in the Secret cannot be used: ${secret.leafError ?? 'unparsable'}` };

export const secretKeyUnparsable: Check = ({ secret }) =>
  secret.key ? undefined : { reason: 'SecretKeyUnparsable', message: `the private key in the Secret cannot be used: ${secret.keyError ?? 'unparsable'}` };

export const secretKeyMismatch: Check = ({ secret }) =>
  secret.keyMatchesLeaf ? undefined : { reason: 'SecretPublicKeyMismatch', message: 'the private key in the Secret does not match its certificate' };

export const spiffeIDMismatch: Check = ({ secret, desired }) =>
  secret.leaf?.spiffeID === desired.spiffeID ? undefined
    : { reason: 'SpiffeIDMismatch', message: `the certificate's SPIFFE ID ${secret.leaf?.spiffeID ?? '(none)'} differs from ${desired.spiffeID}` };

export const dnsNamesMismatch: Check = ({ secret, desired }) =>
  sameSet(secret.leaf?.dnsNames ?? [], desired.dnsNames) ? undefined
    : { reason: 'DNSNamesMismatch', message: `the certificate's DNS names [${(secret.leaf?.dnsNames ?? []).join(', ')}] differ from spec [${desired.dnsNames.join(', ')}]` };

export const issuerNotTrusted: Check = ({ secret }) =>
  !secret.trust || secret.trust.ok ? undefined
    : { reason: 'IssuerNotTrusted', message: `the certificate does not chain to the trust domain's current bundle: ${secret.trust.reason}` };

export const keyAlgorithmMismatch: Check = ({ secret, desired }) => {
  const k = secret.key;
  if (!k) return undefined;
  if (k.algorithm === desired.key.algorithm && k.size === desired.key.size) return undefined;
  const show = (a: string, s: number) => (a === 'Ed25519' ? a : `${a}-${s}`);
  return { reason: 'KeyAlgorithmMismatch', message: `the private key is ${show(k.algorithm, k.size)} but spec asks for ${show(desired.key.algorithm, desired.key.size)}` };
};

export const expired: Check = ({ secret, now }) =>
  secret.leaf && secret.leaf.notAfter.getTime() > now.getTime() ? undefined
    : { reason: 'Expired', message: `the certificate expired at ${secret.leaf?.notAfter.toISOString()}` };

export const renewalRequested: Check = ({ renewal }) =>
  !renewal?.requested || renewal.requested === renewal.answered ? undefined
    : { reason: 'RenewalRequested', message: `renewal was requested (${renewal.requested})` };

export const rootRotation: Check = ({ rotationReissueAt, now }) =>
  !rotationReissueAt || rotationReissueAt.getTime() > now.getTime() ? undefined
    : { reason: 'RootRotation', message: 'the certificate chains to a retiring root' };

export const renewalDue: Check = ({ renewalTime, now }) =>
  !renewalTime || renewalTime.getTime() > now.getTime() ? undefined
    : { reason: 'Renewing', message: `the certificate reached its renewal time ${renewalTime.toISOString()}` };

export const CHECKS: readonly Check[] = [
  secretDoesNotExist,
  secretIsMissingData,
  secretCertificateUnparsable,
  secretKeyUnparsable,
  secretKeyMismatch,
  spiffeIDMismatch,
  dnsNamesMismatch,
  issuerNotTrusted,
  keyAlgorithmMismatch,
  expired,
  renewalRequested,
  rootRotation,
  renewalDue,
];

/** The first violated check, or undefined when the Secret is good as it is. */
export function needsIssuance(input: CheckInput, checks: readonly Check[] = CHECKS): Violation | undefined {
  for (const check of checks) {
    const v = check(input);
    if (v) return v;
  }
  return undefined;
}
