// The inbound proxy: terminates mTLS with the pod's identity, admits the
// peer exactly as the SDK does (the SDK's own server: chain to the Bundle,
// SPIFFE ID, deny list, policy.json's allow list, as they are when the peer
// connects), and forwards to the app on 127.0.0.1. HTTP mode names the
// verified peer in headers; TCP mode pipes bytes.
import type { EventEmitter } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { PolicyDocument } from '../api/documents.ts';
import { authorizePolicy, createHttpsServer, createServer, type Identity, PeerRefusedError, peerIdentity, type RequestPolicyOptions } from '../sdk/index.ts';
import type { ProxyEvents } from './events.ts';
import { forwardHeaders, peerHeaders } from './headers.ts';
import { httpServerOptions, type Limits, limitConnections } from './limits.ts';
import { type Admitted, Admissions } from './readmit.ts';
import { relay, sendError } from './relay.ts';

export interface InboundOptions {
  address: string;
  port: number;
  appPort: number;
  mode: 'http' | 'tcp';
  limits: Limits;
  /** HTTP mode: request-level policy (narrowing rules), its caps and audit sink. */
  requests?: RequestPolicyOptions;
}

const APP_HOST = '127.0.0.1';

const appDown = (port: number, err: Error) => `the app on ${APP_HOST}:${port} did not answer: ${(err as NodeJS.ErrnoException).code ?? err.message}`;

export function inboundServer(identity: Identity, opts: InboundOptions, events: EventEmitter<ProxyEvents>): net.Server {
  const server = opts.mode === 'http' ? httpInbound(identity, opts, events) : tcpInbound(identity, opts, events);
  server.on('refused', (err: unknown) => {
    const e = err instanceof PeerRefusedError ? err : new PeerRefusedError('NoCertificate', String(err));
    events.emit('refused', { direction: 'inbound', reason: e.reason, peer: e.peerID, message: e.message });
  });
  // A handshake that fails before admission (a scanner, a client without a certificate) is the client's affair.
  server.on('tlsClientError', () => undefined);
  limitConnections(server, opts.limits);
  return server;
}

function httpInbound(identity: Identity, opts: InboundOptions, events: EventEmitter<ProxyEvents>): net.Server {
  // Keep-alive to the app: connections are reused across requests and peers.
  const app = new http.Agent({ keepAlive: true });
  const admissions = new Admissions(identity, events, 'inbound');
  // The SDK's server holds every request to the narrowing rules first: the handler sees only allowed ones.
  const server = createHttpsServer(identity, { ...httpServerOptions(opts.limits), requests: opts.requests }, (req, res) => {
    const socket = req.socket as TLSSocket;
    const revoked = admissions.revokedReason(socket);
    if (revoked !== undefined) {
      sendError(res, 403, `agent-identity proxy: ${revoked}`, true);
      return;
    }
    const end = admissions.begin(socket);
    const peer = peerIdentity(socket)!;
    const headers = { ...forwardHeaders(req.rawHeaders), host: req.headers.host, ...peerHeaders(peer.certificates[0]!.rawData, peer.spiffeID.toString()) };
    const upstream = http.request({ host: APP_HOST, port: opts.appPort, method: req.method, path: req.url, headers, agent: app });
    void relay(req, res, upstream, opts.limits.maxBodyBytes, (err) => {
      events.emit('failed', { direction: 'inbound', message: appDown(opts.appPort, err) });
      return { status: 502, message: `agent-identity proxy: ${appDown(opts.appPort, err)}` };
    }).then(end);
  });
  // HTTP: requests in flight finish, then the connection closes.
  followAdmitted(server, admissions, true, (socket, busy) => busy === 0 && socket.destroy());
  server.once('close', () => app.destroy());
  return server;
}

function tcpInbound(identity: Identity, opts: InboundOptions, events: EventEmitter<ProxyEvents>): net.Server {
  const server = createServer(identity, {}, (socket) => {
    const app = net.connect({ host: APP_HOST, port: opts.appPort });
    let reported = false;
    const done = (err?: Error) => {
      if (err && !reported && !socket.destroyed) {
        reported = true;
        events.emit('failed', { direction: 'inbound', message: appDown(opts.appPort, err) });
      }
      socket.destroy();
      app.destroy();
    };
    socket.on('error', done).on('close', () => done());
    app.on('error', done).on('close', () => done());
    socket.pipe(app).pipe(socket);
  });
  // TCP: a stream cannot be split between requests, so it is cut.
  followAdmitted(server, new Admissions(identity, events, 'inbound'), false, (socket) => socket.destroy());
  return server;
}

/**
 * Every admitted peer is checked again on each reload, against the policy's allow list as it then is.
 * `inspectsRequests`: whether this server holds requests to the narrowing rules (HTTP), so peers only
 * those rules allow may stay.
 */
function followAdmitted(server: net.Server, admissions: Admissions, inspectsRequests: boolean, revoke: Admitted['revoke']): void {
  const authorizer = (policy: PolicyDocument) => authorizePolicy(policy, { inspectsRequests });
  server.on('secureConnection', (socket: TLSSocket) => {
    admissions.admit(socket, { chain: peerIdentity(socket)!.certificates, authorizer, revoke });
  });
  server.once('close', () => admissions.close());
}
