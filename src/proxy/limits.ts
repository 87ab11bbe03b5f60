// What one proxy will hold open, for how long, and how much it reads: the
// same caps on both sides, so a slow or greedy client (or a prompt-injected
// agent) can tie up neither the proxy nor the app behind it.
import type http from 'node:http';
import type net from 'node:net';

export interface Limits {
  /** Request line plus headers (node's maxHeaderSize); more gets 431. */
  maxHeaderBytes: number;
  /** A request body past this gets 413 (or the stream is cut, once the response started). */
  maxBodyBytes: number;
  /** From the first byte of a request to the end of its headers; slower gets 408. */
  headerTimeoutMs: number;
  /** A connection with no bytes either way for this long is closed. */
  idleTimeoutMs: number;
  /** Connections beyond this are dropped on accept (per listener). */
  maxConnections: number;
  /** Outbound: mTLS connections open to one peer at most; requests beyond wait for one to be free. */
  maxConnectionsPerPeer: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxHeaderBytes: 16 * 1024,
  maxBodyBytes: 8 * 1024 * 1024,
  headerTimeoutMs: 10_000,
  idleTimeoutMs: 60_000,
  maxConnections: 1024,
  // Without a cap a burst opens one mTLS connection per waiting request (a handshake and a chain check on
  // both proxies each), which slows the next requests further: measured at 300 req/s from cold, 536 open
  // descriptors and p50 in the seconds; capped at 16, 93 and 1.1 ms (docs/performance.md). 64 keeps that
  // storm bounded while an agent may still hold dozens of long streaming calls (SSE) to one peer at once.
  maxConnectionsPerPeer: 64,
};

// Node checks headersTimeout only this often (default 30 s): a quarter of the
// timeout, at most 1 s, keeps a slow client's wait close to the limit.
const checkInterval = (l: Limits) => Math.max(50, Math.min(1000, Math.floor(l.headerTimeoutMs / 4)));

/**
 * http.Server options for both listeners: node's strict parser (it refuses
 * Content-Length with Transfer-Encoding, duplicate differing lengths, bad
 * chunk sizes and bare LF; insecureHTTPParser stays false whatever
 * NODE_OPTIONS says), a Host header required, header size and time capped.
 */
export function httpServerOptions(l: Limits): http.ServerOptions {
  return {
    insecureHTTPParser: false,
    requireHostHeader: true,
    maxHeaderSize: l.maxHeaderBytes,
    headersTimeout: l.headerTimeoutMs,
    // A whole request (headers and body) may take as long as an idle connection may last.
    requestTimeout: Math.max(l.idleTimeoutMs, l.headerTimeoutMs + 1),
    // The outbound pool gives up on an idle connection first (poolIdleMs), so it never reuses one this side is closing.
    keepAliveTimeout: l.idleTimeoutMs,
    connectionsCheckingInterval: checkInterval(l),
    // Repeated identity headers must stay separate so each is seen and stripped.
    joinDuplicateHeaders: false,
  };
}

/** How long the outbound proxy keeps an idle connection to a peer: half the peer's keep-alive, so the pool always lets go first. */
export const poolIdleMs = (l: Limits) => Math.max(1, Math.floor(l.idleTimeoutMs / 2));

/** The connection cap, and an idle timeout on every accepted socket (TLS, HTTP or TCP alike). */
export function limitConnections(server: net.Server, l: Limits): void {
  server.maxConnections = l.maxConnections;
  server.on('connection', (socket: net.Socket) => socket.setTimeout(l.idleTimeoutMs, () => socket.destroy()));
}

export class BodyTooLarge extends Error {
  constructor(limit: number) {
    super(`request body is larger than ${limit} bytes`);
    this.name = 'BodyTooLarge';
  }
}
