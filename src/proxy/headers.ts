// Header hygiene at the trust boundary: what a client sent about identity is
// never passed on, hop-by-hop headers stop at the proxy, and the headers the
// inbound proxy adds name the peer it verified.
import { createHash } from 'node:crypto';
import type { OutgoingHttpHeaders } from 'node:http';

/** The verified peer's SPIFFE ID. */
export const PEER_HEADER = 'x-agent-identity-peer';
/** Envoy's header for the client certificate: Hash (SHA-256 of the Leaf's DER, hex) and URI (its SPIFFE ID). */
export const XFCC_HEADER = 'x-forwarded-client-cert';

const IDENTITY_HEADERS = new Set([PEER_HEADER, XFCC_HEADER]);

// RFC 9110 7.6.1, plus the proxy's own: they describe one hop, not the request.
const HOP_BY_HOP = new Set([
  'connection', 'proxy-connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authorization', 'proxy-authenticate', 'host',
]);

/**
 * The headers to pass on, from node's rawHeaders (name, value pairs, as
 * sent): without hop-by-hop headers, those the Connection header names, and
 * the identity headers, whatever their case or count. Host is set by the caller.
 */
export function forwardHeaders(rawHeaders: readonly string[]): OutgoingHttpHeaders {
  const named = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() === 'connection') for (const t of rawHeaders[i + 1]!.split(',')) named.add(t.trim().toLowerCase());
  }
  const out: Record<string, string[]> = {};
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (HOP_BY_HOP.has(name) || IDENTITY_HEADERS.has(name) || named.has(name)) continue;
    (out[name] ??= []).push(rawHeaders[i + 1]!);
  }
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.length === 1 ? v[0]! : v]));
}

/** `Hash=<sha256 of the Leaf's DER, hex>;URI=<SPIFFE ID>`, as Envoy writes it for a verified client. */
export function forwardedClientCert(leafDer: ArrayBuffer | Uint8Array, spiffeID: string): string {
  const hash = createHash('sha256').update(leafDer instanceof Uint8Array ? leafDer : new Uint8Array(leafDer)).digest('hex');
  return `Hash=${hash};URI=${spiffeID}`;
}

/** What the inbound proxy tells the app about the peer. */
export function peerHeaders(leafDer: ArrayBuffer | Uint8Array, spiffeID: string): OutgoingHttpHeaders {
  return { [PEER_HEADER]: spiffeID, [XFCC_HEADER]: forwardedClientCert(leafDer, spiffeID) };
}
