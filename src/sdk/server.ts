// mTLS servers that admit a connection only after the peer passed every
// check. OpenSSL is told to accept any certificate (rejectUnauthorized:
// false) so that the SDK, not a bare handshake alert, decides and names the
// reason; refused sockets are destroyed before the application sees them.
import { constants } from 'node:crypto';
import https from 'node:https';
import tls, { type TLSSocket } from 'node:tls';
import type { Authorizer } from './authorizer.ts';
import { currentPolicyAuthorizer, secureContextOptions } from './credentials.ts';
import type { Identity } from './identity.ts';
import { admitPeer } from './peer.ts';
import { enforceRequestPolicy, type RequestPolicyOptions } from './request-policy.ts';

type Owned = 'cert' | 'key' | 'ca' | 'pfx' | 'passphrase' | 'secureContext' | 'requestCert' | 'rejectUnauthorized' | 'SNICallback';

export interface ServerOptions extends Omit<tls.TlsOptions, Owned> {
  /** Default: the identity's policy.json, as it is when each peer connects. */
  authorize?: Authorizer;
}

export interface HttpsServerOptions extends Omit<https.ServerOptions, Owned> {
  authorize?: Authorizer;
  /** Request-level policy (the narrowing rules of policy.json): caps and the audit sink. Always enforced. */
  requests?: RequestPolicyOptions;
}

/**
 * The server's TLS options: the caller's, then ours. Session resumption is
 * off: a resumed session carries no peer chain to verify, and skipping the
 * checks would let a peer in under a Bundle or policy that has since changed.
 */
function tlsOptionsFor<T extends { secureOptions?: number | undefined }>(identity: Identity, opts: T) {
  return {
    ...opts,
    ...secureContextOptions(identity),
    secureOptions: (opts.secureOptions ?? 0) | constants.SSL_OP_NO_TICKET,
    requestCert: true,
    rejectUnauthorized: false,
  };
}

/**
 * Wires a server to its identity: swaps the server's credentials on every
 * reload (open connections keep theirs), and puts admission between a
 * finished handshake and 'secureConnection', which node emits itself.
 */
function gate<T extends { secureOptions?: number | undefined }>(server: tls.Server, identity: Identity, opts: T, authorizer: Authorizer | undefined, inspectsRequests: boolean): void {
  const authorize = authorizer ?? currentPolicyAuthorizer(identity, { inspectsRequests });
  // setSecureContext resets every option it is not given, so it gets them all again.
  const onUpdate = () => server.setSecureContext(tlsOptionsFor(identity, opts));
  identity.on('update', onUpdate);
  server.once('close', () => identity.off('update', onUpdate));

  const emit = server.emit.bind(server);
  server.emit = (event: string | symbol, ...args: unknown[]): boolean => {
    if (event !== 'secureConnection') return emit(event, ...args);
    const socket = args[0] as TLSSocket;
    // Until it is admitted nobody else listens; a reset must not crash the process.
    const swallow = () => undefined;
    socket.on('error', swallow);
    admitPeer(socket, identity, authorize).then(
      () => {
        socket.off('error', swallow);
        emit(event, ...args);
      },
      (err: unknown) => {
        socket.destroy();
        emit('refused', err, socket);
      },
    );
    return true;
  };
}

/**
 * A tls.Server that emits 'secureConnection' (and calls `listener`) only
 * for admitted peers, and 'refused' (err: PeerRefusedError, socket) for the rest.
 */
export class AgentServer extends tls.Server {
  constructor(identity: Identity, opts: ServerOptions = {}, listener?: (socket: TLSSocket) => void) {
    const { authorize, ...rest } = opts;
    super(tlsOptionsFor(identity, rest), listener);
    gate(this, identity, rest, authorize, false);
  }
}

/**
 * The same admission in front of an HTTPS server: requests only ever come
 * from admitted peers, and each is held to the narrowing rules of the
 * policy (request-policy.ts) before any listener sees it.
 */
export class AgentHttpsServer extends https.Server {
  constructor(identity: Identity, opts: HttpsServerOptions = {}, requestListener?: Parameters<typeof https.createServer>[1]) {
    const { authorize, requests, ...rest } = opts;
    super(tlsOptionsFor(identity, rest), requestListener);
    gate(this, identity, rest, authorize, true);
    enforceRequestPolicy(this, identity, requests);
  }
}

export function createServer(identity: Identity, opts: ServerOptions = {}, listener?: (socket: TLSSocket) => void): AgentServer {
  return new AgentServer(identity, opts, listener);
}

export function createHttpsServer(identity: Identity, opts: HttpsServerOptions = {}, requestListener?: Parameters<typeof https.createServer>[1]): AgentHttpsServer {
  return new AgentHttpsServer(identity, opts, requestListener);
}
