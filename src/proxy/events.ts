// What the proxy reports, for the command to log (and later to count):
// every refusal names its direction, reason and peer.
export type Direction = 'inbound' | 'outbound';

export interface Refusal {
  direction: Direction;
  /** The SDK's RefusalReason, or the outbound proxy's own (EgressDenied, NotAnAgent, …). */
  reason: string;
  /** The peer's SPIFFE ID, once known. */
  peer?: string;
  message: string;
  /** The refused request (outbound), when the refusal answered one; `host` is empty when it named none. */
  request?: { method: string; path: string; host: string };
}

export interface ProxyEvents {
  refused: [refusal: Refusal];
  /** A request that was allowed but could not be completed (the app or the peer did not answer). */
  failed: [failure: { direction: Direction; message: string }];
  /** Audit lines could not be written (the first failure of a streak; every lost line is counted in the metrics). */
  auditFailed: [failure: { message: string }];
}
