// The one error type src/pki throws. Messages are written here, never copied
// from input or from lower layers, so that nothing secret (a private key, a
// fragment of one) can reach a log, an event or a status condition.

export type PkiErrorReason =
  | 'KeyUnparsable'
  | 'KeyUnsupported'
  | 'InvalidTrustDomain'
  | 'InvalidSpiffeID'
  | 'InvalidTemplate'
  | 'InvalidDNSName'
  | 'InvalidValidity'
  | 'CertificateUnparsable'
  | 'CANotUsable'
  | 'CAExpired'
  | 'InvalidBundle';

export class PkiError extends Error {
  /** Machine-readable; callers use it as a condition reason. */
  readonly reason: PkiErrorReason;

  constructor(reason: PkiErrorReason, message: string) {
    super(message);
    this.name = 'PkiError';
    this.reason = reason;
  }
}
