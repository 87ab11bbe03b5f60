// mTLS clients: each connection is built from the identity's material at
// the moment it is opened, and the server is judged by its SPIFFE ID, not
// its DNS name.
import https from 'node:https';
import tls, { type TLSSocket } from 'node:tls';
import { authorizeID, type Authorizer } from './authorizer.ts';
import { clientSecureContext } from './credentials.ts';
import type { Identity } from './identity.ts';
import { admitPeer, checkPeer, checkPeerChainSync, peerChainOf } from './peer.ts';

export interface ClientOptions {
  /** Who the server must be: an Authorizer, or the one SPIFFE ID expected. */
  authorize: Authorizer | string;
}

const toAuthorizer = (a: Authorizer | string): Authorizer => (typeof a === 'string' ? authorizeID(a) : a);

/**
 * Options for tls.connect (or anything that passes them through, such as
 * https.request): the current SVID and Bundle, OpenSSL's chain check, and
 * checkServerIdentity replaced by the SPIFFE ID, deny list and Authorizer
 * checks. A refusal surfaces as a PeerRefusedError on the socket. Build new
 * options per connection to pick up reloads. The chain is held to the Bundle
 * of the server's own trust domain (peer.ts).
 */
export function tlsConnectOptions(identity: Identity, opts: ClientOptions): tls.ConnectionOptions {
  const authorize = toAuthorizer(opts.authorize);
  return {
    secureContext: clientSecureContext(identity),
    rejectUnauthorized: true,
    checkServerIdentity: (_host, cert) => {
      try {
        const chain = peerChainOf(cert);
        checkPeerChainSync(chain, identity.bundles);
        checkPeer(chain, identity.policy, authorize);
        return undefined;
      } catch (err) {
        return err as Error;
      }
    },
  };
}

/**
 * Connects and resolves once the server passed every check (peerIdentity()
 * then names it); rejects with a PeerRefusedError naming the failed check,
 * or with the connection error. Under TLS 1.3 the client finishes its
 * handshake before the server has judged it, so a server that refuses this
 * client shows as the socket closing without data.
 */
export function connect(identity: Identity, host: string, port: number, opts: ClientOptions): Promise<TLSSocket> {
  const authorize = toAuthorizer(opts.authorize);
  return new Promise((resolve, reject) => {
    // The SDK judges the server itself, after the handshake, so a refusal can say why.
    const socket = tls.connect({ host, port, secureContext: clientSecureContext(identity), rejectUnauthorized: false, checkServerIdentity: () => undefined });
    socket.once('error', reject);
    socket.once('secureConnect', () => {
      admitPeer(socket, identity, authorize).then(
        () => {
          socket.off('error', reject);
          resolve(socket);
        },
        (err: unknown) => {
          closeRefused(socket);
          reject(err);
        },
      );
    });
  });
}

/**
 * Closes the connection to a server this client refused, without resetting
 * it: under TLS 1.3 the server may not have read our certificate yet, and a
 * close with its session tickets unread sends a reset that drops it, so the
 * server could not judge us (nor log why). What it sends is read and dropped,
 * the close is graceful, and the socket goes at the latest after a second.
 */
function closeRefused(socket: TLSSocket): void {
  socket.on('error', () => undefined);
  socket.resume();
  socket.end();
  const late = setTimeout(() => socket.destroy(), 1000);
  late.unref();
  socket.once('close', () => clearTimeout(late));
}

/**
 * An https.Agent for calling other agents: every new connection uses the
 * identity's current material and checks the server's SPIFFE ID. TLS
 * session caching is off, because node skips checkServerIdentity on a
 * resumed session and the policy may have changed since.
 */
export class AgentHttpsAgent extends https.Agent {
  readonly #identity: Identity;
  readonly #opts: ClientOptions;

  constructor(identity: Identity, opts: ClientOptions & Omit<https.AgentOptions, 'maxCachedSessions'>) {
    const { authorize, ...agentOptions } = opts;
    super({ ...agentOptions, maxCachedSessions: 0 });
    this.#identity = identity;
    this.#opts = { authorize };
  }

  override createConnection(options: https.RequestOptions, callback?: Parameters<https.Agent['createConnection']>[1]) {
    return super.createConnection({ ...options, ...tlsConnectOptions(this.#identity, this.#opts) }, callback);
  }
}

export function httpsAgent(identity: Identity, opts: ClientOptions & Omit<https.AgentOptions, 'maxCachedSessions'>): AgentHttpsAgent {
  return new AgentHttpsAgent(identity, opts);
}
