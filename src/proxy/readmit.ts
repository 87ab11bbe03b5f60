// Connections admitted under an older Bundle, deny list or policy, in both
// directions: the inbound proxy's clients and the outbound proxy's pooled
// connections to peers. When the identity reloads, each open connection's
// peer is checked again as if it connected now: its chain against the
// current Bundle of its trust domain (a retired Root, ours or a partner's), the deny list, and the rule that let it
// in. A peer now refused gets no further request (HTTP: its requests in
// flight finish, then the connection closes; TCP: the stream is cut, as it
// cannot be split). A renewal or a widened policy drops nothing.
import type { EventEmitter } from 'node:events';
import type { TLSSocket } from 'node:tls';
import type { PolicyDocument } from '../api/documents.ts';
import { spiffeIDOf, type X509Certificate } from '../pki/index.ts';
import { type Authorizer, type Identity, PeerRefusedError } from '../sdk/index.ts';
import { checkPeer, verifyPeerChain } from '../sdk/peer.ts';
import type { Direction, ProxyEvents } from './events.ts';

export interface Admitted {
  /** The peer's chain as it presented it, Leaf first. */
  chain: X509Certificate[];
  /** The rule the peer must still pass, under the policy as it is now. */
  authorizer: (policy: PolicyDocument) => Authorizer;
  /** The peer is refused now: close the connection, at once or once its requests in flight (begin()) are done. */
  revoke: (socket: TLSSocket, busy: number) => void;
}

interface Open extends Admitted {
  /** Requests in flight (counted by begin()). */
  busy: number;
  /** Why the peer is no longer admitted. */
  revoked?: string;
}

/** The check a new connection gets, for a chain that passed it once: throws PeerRefusedError. */
async function recheck(open: Admitted, identity: Identity): Promise<void> {
  // Against the current Bundle of the peer's own trust domain: a partner's rotation retires its Roots too.
  const verified = await verifyPeerChain(open.chain, identity.bundles, new Date());
  if (!verified.ok) throw new PeerRefusedError('UntrustedChain', `peer certificate does not chain to the trust bundle: ${verified.reason}`);
  checkPeer(open.chain, identity.policy, open.authorizer(identity.policy));
}

export class Admissions {
  readonly #open = new Map<TLSSocket, Open>();
  readonly #identity: Identity;
  readonly #onUpdate: () => void;
  // Re-checks run one after another, each against the material current when it runs.
  #queue: Promise<void> = Promise.resolve();

  constructor(identity: Identity, events: EventEmitter<ProxyEvents>, direction: Direction) {
    this.#identity = identity;
    const readmit = async () => {
      for (const [socket, open] of this.#open) {
        if (open.revoked !== undefined || socket.destroyed) continue;
        try {
          await recheck(open, identity);
        } catch (err) {
          const e = err instanceof PeerRefusedError ? err : new PeerRefusedError('UntrustedChain', String(err));
          if (open.revoked !== undefined || socket.destroyed) continue;
          open.revoked = e.message;
          // A chain that no longer verifies carries no peer in its error: the Leaf that was admitted names it.
          const peer = e.peerID ?? spiffeIDOf(open.chain[0]!)?.toString();
          events.emit('refused', { direction, reason: e.reason, ...(peer ? { peer } : {}), message: `an open connection: ${e.message}` });
          open.revoke(socket, open.busy);
        }
      }
    };
    this.#onUpdate = () => {
      this.#queue = this.#queue.then(readmit);
    };
    identity.on('update', this.#onUpdate);
  }

  /** Follows an admitted connection until it closes. */
  admit(socket: TLSSocket, admitted: Admitted): void {
    this.#open.set(socket, { ...admitted, busy: 0 });
    socket.once('close', () => this.#open.delete(socket));
  }

  /** Why the socket's peer is no longer admitted, or undefined. */
  revokedReason(socket: TLSSocket): string | undefined {
    return this.#open.get(socket)?.revoked;
  }

  /** A request started on the socket; the returned function ends it (once), closing a revoked connection that is now idle. */
  begin(socket: TLSSocket): () => void {
    const open = this.#open.get(socket);
    if (!open) return () => undefined;
    open.busy++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      open.busy--;
      if (open.busy === 0 && open.revoked !== undefined) socket.destroy();
    };
  }

  /** Stops following reloads (the listener or pool is closing). */
  close(): void {
    this.#identity.off('update', this.#onUpdate);
  }
}
