// The SDK's HTTP middleware for request-level policy: the narrowing rules
// of policy.json (http, mcp, a2a) enforced on every request an admitted
// peer sends, with the same decisions as the identity proxy. The SDK's
// HTTPS server applies it to every request itself (so no handler can be
// left out); withRequestPolicy wraps one handler for other uses.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server } from 'node:https';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { grantsOf } from './requests/decide.ts';
import { guardRequest, type RequestPolicyOptions } from './requests/guard.ts';
import type { Identity } from './identity.ts';
import { peerIdentity } from './peer.ts';

export type { RequestPolicyOptions } from './requests/guard.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const pathOf = (url: string | undefined) => {
  const u = url ?? '/';
  const q = u.indexOf('?');
  return q < 0 ? u : u.slice(0, q);
};

/**
 * `handler`, called only for requests the identity's current policy.json
 * allows, with the body replayed when it was inspected and list answers
 * filtered. A request on a socket the SDK did not admit is refused: there is
 * no verified peer to decide for.
 */
export function withRequestPolicy(identity: Identity, handler: Handler, opts: RequestPolicyOptions = {}): Handler {
  return (req, res) => {
    const peer = peerIdentity(req.socket as TLSSocket);
    if (!peer) {
      res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' }).end('agent-identity policy: the connection has no verified peer\n');
      return;
    }
    const ctx = { direction: 'inbound' as const, local: identity.spiffeID, peer: peer.spiffeID.toString(), grants: grantsOf(identity.policy, peer.spiffeID.toString()), path: pathOf(req.url) };
    guardRequest(ctx, req, res, opts, (allowed) => handler(allowed, res));
  };
}

/** Whether the peer on `socket` is held to narrowing rules (and so may not switch protocols past them). */
function narrowed(identity: Identity, socket: TLSSocket): boolean {
  const peer = peerIdentity(socket);
  return !peer || !grantsOf(identity.policy, peer.spiffeID.toString()).unrestricted;
}

/**
 * Puts the policy between node's HTTP parser and every listener: 'request'
 * (and 'checkContinue') go through withRequestPolicy; an 'upgrade' (e.g. a
 * WebSocket, whose frames the policy cannot read) is refused for a peer
 * that narrowing rules hold.
 */
export function enforceRequestPolicy(server: Server, identity: Identity, opts: RequestPolicyOptions = {}): void {
  const emit = server.emit.bind(server) as (event: string | symbol, ...args: unknown[]) => boolean;
  const guarded = withRequestPolicy(identity, (req, res) => emit('request', req, res), opts);
  server.emit = (event: string | symbol, ...args: unknown[]): boolean => {
    if (event === 'request') {
      guarded(args[0] as IncomingMessage, args[1] as ServerResponse);
      return true;
    }
    if (event === 'checkContinue') {
      // The body is read for the decision, so the client is told to send it now.
      (args[1] as ServerResponse).writeContinue();
      guarded(args[0] as IncomingMessage, args[1] as ServerResponse);
      return true;
    }
    if (event === 'upgrade' && narrowed(identity, (args[0] as IncomingMessage).socket as TLSSocket)) {
      (args[1] as Duplex).end('HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n\r\nagent-identity policy: a peer held to narrowing rules may not upgrade the connection\n');
      return true;
    }
    return emit(event, ...args);
  };
}
