// The two errors the SDK raises. Messages are composed here from names,
// SPIFFE IDs and serials only: never from file contents, so no private key
// material can reach a log line through them.

/** Why a peer was refused: one value per check, in the order they run. */
export type RefusalReason = 'NoCertificate' | 'UntrustedChain' | 'NoSpiffeID' | 'DenyListed' | 'NotAuthorized';

/** A peer (client or server) failed the mTLS checks; the message names the rule that refused it. */
export class PeerRefusedError extends Error {
  readonly reason: RefusalReason;
  /** The peer's SPIFFE ID, once it is known. */
  readonly peerID: string | undefined;

  constructor(reason: RefusalReason, message: string, peerID?: string) {
    super(message);
    this.name = 'PeerRefusedError';
    this.reason = reason;
    this.peerID = peerID;
  }
}

/** The mounted identity files are missing, unreadable or inconsistent. */
export class IdentityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IdentityError';
  }
}
