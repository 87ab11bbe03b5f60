// Connections admitted under an older policy: when the identity reloads, each
// open connection's peer is checked again against the new deny list and
// allow list. A peer now refused gets no further request (HTTP: its requests
// in flight finish, then the connection closes; TCP: the stream is cut, as it
// cannot be split). A renewal or a widened policy drops nothing.
import type { EventEmitter } from 'node:events';
import type { Server } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { authorizePolicy, type Identity, PeerRefusedError, peerIdentity } from '../sdk/index.ts';
import { checkPeer } from '../sdk/peer.ts';
import type { Direction, ProxyEvents } from './events.ts';

interface Open {
  /** Requests in flight (HTTP). */
  busy: number;
  /** Why the peer is no longer admitted. */
  revoked?: string;
}

export class Admissions {
  readonly #open = new Map<TLSSocket, Open>();
  readonly #cutBusy: boolean;

  /** `cutBusy`: a connection whose peer is refused is closed at once, busy or not (TCP). */
  constructor(server: Server, identity: Identity, events: EventEmitter<ProxyEvents>, opts: { cutBusy: boolean; direction: Direction; inspectsRequests: boolean }) {
    this.#cutBusy = opts.cutBusy;
    server.on('secureConnection', (socket: TLSSocket) => {
      this.#open.set(socket, { busy: 0 });
      socket.once('close', () => this.#open.delete(socket));
    });
    const onUpdate = () => {
      const authorize = authorizePolicy(identity.policy, { inspectsRequests: opts.inspectsRequests });
      for (const [socket, open] of this.#open) {
        const peer = peerIdentity(socket);
        if (!peer || open.revoked !== undefined) continue;
        try {
          checkPeer(peer.certificates, identity.policy, authorize);
        } catch (err) {
          const e = err as PeerRefusedError;
          open.revoked = e.message;
          events.emit('refused', { direction: opts.direction, reason: e.reason, peer: e.peerID, message: `an open connection: ${e.message}` });
          if (open.busy === 0 || this.#cutBusy) socket.destroy();
        }
      }
    };
    identity.on('update', onUpdate);
    server.once('close', () => identity.off('update', onUpdate));
  }

  /** Why the socket's peer is no longer admitted, or undefined. */
  revokedReason(socket: TLSSocket): string | undefined {
    return this.#open.get(socket)?.revoked;
  }

  /** A request started on the socket; the returned function ends it (once). */
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
}
