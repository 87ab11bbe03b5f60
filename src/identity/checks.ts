// "Does this identity need a new certificate?" as an ordered list of small,
// named, pure checks (the cert-manager pattern, controller/checks.ts). The first
// violation wins: its reason becomes the condition reason and the event text.
// Adding a trigger means adding one function to CHECKS. gather.ts builds the
// input once.
import type { Check } from '../controller/checks.ts';
import type { KeyRequest } from '../api/defaults.ts';
import type { KeyAlgorithm } from '../api/types.ts';
import type { SpiffeID } from '../pki/spiffeid.ts';

export interface ObservedLeaf {
  /** As the certificate says it, when it holds a valid one. */
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
  desired: { spiffeID: SpiffeID; dnsNames: string[]; key: KeyRequest };
  renewalTime?: Date;
  /** Set while the leaf chains to a retiring root: when rotation wants it moved. */
  rotationReissueAt?: Date;
  /** The renew-requested-at annotation, and the value the current certificate answers. */
  renewal?: { requested?: string; answered?: string };
  now: Date;
}

export type IssuanceReason =
  | 'SecretDoesNotExist' | 'SecretIsMissingData' | 'SecretCertificateUnparsable' | 'SecretKeyUnparsable' | 'SecretPublicKeyMismatch'
  | 'SpiffeIDMismatch' | 'DNSNamesMismatch' | 'IssuerNotTrusted' | 'KeyAlgorithmMismatch' | 'Expired' | 'RenewalRequested'
  | 'RootRotation' | 'Renewing';

type IssuanceCheck = Check<CheckInput, IssuanceReason>;

const sameSet = (a: readonly string[], b: readonly string[]) => {
  const sa = new Set(a);
  return sa.size === new Set(b).size && b.every((x) => sa.has(x));
};

export const secretDoesNotExist: IssuanceCheck = ({ secret }) =>
  secret.exists ? undefined : { reason: 'SecretDoesNotExist', message: 'the identity Secret does not exist' };

export const secretIsMissingData: IssuanceCheck = ({ secret }) =>
  secret.missingKeys.length === 0 ? undefined
    : { reason: 'SecretIsMissingData', message: `the identity Secret is missing ${secret.missingKeys.join(', ')}` };

export const secretCertificateUnparsable: IssuanceCheck = ({ secret }) =>
  secret.leaf ? undefined : { reason: 'SecretCertificateUnparsable', message: `the certificate in the Secret cannot be used: ${secret.leafError ?? 'unparsable'}` };

export const secretKeyUnparsable: IssuanceCheck = ({ secret }) =>
  secret.key ? undefined : { reason: 'SecretKeyUnparsable', message: `the private key in the Secret cannot be used: ${secret.keyError ?? 'unparsable'}` };

export const secretKeyMismatch: IssuanceCheck = ({ secret }) =>
  secret.keyMatchesLeaf ? undefined : { reason: 'SecretPublicKeyMismatch', message: 'the private key in the Secret does not match its certificate' };

export const spiffeIDMismatch: IssuanceCheck = ({ secret, desired }) =>
  secret.leaf?.spiffeID === desired.spiffeID.toString() ? undefined
    : { reason: 'SpiffeIDMismatch', message: `the certificate's SPIFFE ID ${secret.leaf?.spiffeID ?? '(none)'} differs from ${desired.spiffeID}` };

export const dnsNamesMismatch: IssuanceCheck = ({ secret, desired }) =>
  sameSet(secret.leaf?.dnsNames ?? [], desired.dnsNames) ? undefined
    : { reason: 'DNSNamesMismatch', message: `the certificate's DNS names [${(secret.leaf?.dnsNames ?? []).join(', ')}] differ from spec [${desired.dnsNames.join(', ')}]` };

export const issuerNotTrusted: IssuanceCheck = ({ secret }) =>
  !secret.trust || secret.trust.ok ? undefined
    : { reason: 'IssuerNotTrusted', message: `the certificate does not chain to the trust domain's current bundle: ${secret.trust.reason}` };

export const keyAlgorithmMismatch: IssuanceCheck = ({ secret, desired }) => {
  const k = secret.key;
  if (!k) return undefined;
  if (k.algorithm === desired.key.algorithm && k.size === desired.key.size) return undefined;
  const show = (a: string, s: number) => (a === 'Ed25519' ? a : `${a}-${s}`);
  return { reason: 'KeyAlgorithmMismatch', message: `the private key is ${show(k.algorithm, k.size)} but spec asks for ${show(desired.key.algorithm, desired.key.size)}` };
};

export const expired: IssuanceCheck = ({ secret, now }) =>
  secret.leaf && secret.leaf.notAfter.getTime() > now.getTime() ? undefined
    : { reason: 'Expired', message: `the certificate expired at ${secret.leaf?.notAfter.toISOString()}` };

export const renewalRequested: IssuanceCheck = ({ renewal }) =>
  !renewal?.requested || renewal.requested === renewal.answered ? undefined
    : { reason: 'RenewalRequested', message: `renewal was requested (${renewal.requested})` };

export const rootRotation: IssuanceCheck = ({ rotationReissueAt, now }) =>
  !rotationReissueAt || rotationReissueAt.getTime() > now.getTime() ? undefined
    : { reason: 'RootRotation', message: 'the certificate chains to a retiring root' };

export const renewalDue: IssuanceCheck = ({ renewalTime, now }) =>
  !renewalTime || renewalTime.getTime() > now.getTime() ? undefined
    : { reason: 'Renewing', message: `the certificate reached its renewal time ${renewalTime.toISOString()}` };

export const CHECKS: readonly IssuanceCheck[] = [
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
