// The outbound proxy: an HTTP forward proxy on 127.0.0.1 for the app's calls
// (absolute-form `GET http://host:port/path`, as HTTP_PROXY makes clients
// send). Each call is decided before any connection (which identity claims
// the host, and may this agent call it), then sent over mTLS with the pod's
// identity to a server that must present exactly that identity.
import type { EventEmitter } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { PolicyDocument } from '../api/documents.ts';
import { AgentHttpsAgent, authorizeID, type Authorizer, grantsOf, guardRequest, type Identity, PeerRefusedError, type RequestPolicyOptions } from '../sdk/index.ts';
import { peerChainOf } from '../sdk/peer.ts';
import { decideEgress, normalizeHost } from './destinations.ts';
import type { ProxyEvents, Refusal } from './events.ts';
import { forwardHeaders } from './headers.ts';
import { httpServerOptions, type Limits, limitConnections, poolIdleMs } from './limits.ts';
import { Admissions } from './readmit.ts';
import { type Failure, relay, sendError } from './relay.ts';

export interface OutboundOptions {
  address: string;
  port: number;
  resolve: ReadonlyMap<string, string>;
  limits: Limits;
  /** Request-level policy of egress rules that narrow (http, mcp, a2a): caps and audit sink. */
  requests?: RequestPolicyOptions;
}

// CONNECT is refused: with it the app would speak TLS itself and the proxy
// could neither add the identity nor check the server. Agents call peers in
// plain http:// through HTTP_PROXY; https:// to the outside world does not
// use this proxy (HTTPS_PROXY is not pointed at it).
const CONNECT_REFUSAL = 'agent-identity proxy: CONNECT is not supported. Call agents with plain http:// URLs through HTTP_PROXY: the proxy adds mTLS itself.\n';

/** OpenSSL's verdicts on a chain (node puts them in err.code). */
const CHAIN_ERRORS = /^(UNABLE_TO_|CERT_|SELF_SIGNED|DEPTH_ZERO|ERR_TLS_CERT|INVALID_CA|PATH_LENGTH)/;

/** What the app is told when the call to `target` failed after it was allowed. */
export function outboundFailure(err: Error, target: string, expected: string, self: string): Failure {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (err instanceof PeerRefusedError) {
    const message = err.reason === 'NotAuthorized'
      ? `the server at ${target} presented ${err.peerID}, expected ${expected} (the identity that claims the host)`
      : `the server at ${target} was refused: ${err.message} (expected ${expected})`;
    return { status: 502, message: `agent-identity proxy: ${message}` };
  }
  if (CHAIN_ERRORS.test(code)) return { status: 502, message: `agent-identity proxy: the server at ${target} presented a certificate that does not chain to the trust bundle (${code}); expected ${expected}` };
  if (code === 'ETIMEDOUT' || code === 'ERR_PROXY_TIMEOUT') return { status: 504, message: `agent-identity proxy: ${target} (${expected}) did not answer in time` };
  if (code === 'ECONNRESET' || err.message === 'socket hang up') {
    return { status: 502, message: `agent-identity proxy: ${target} (${expected}) closed the connection without an answer: its policy or deny list may refuse ${self} (see its proxy's log)` };
  }
  return { status: 502, message: `agent-identity proxy: cannot reach ${target} (${expected}): ${code || err.message}` };
}

class TimeoutError extends Error {
  readonly code = 'ERR_PROXY_TIMEOUT';
}

/** Egress as the policy now decides it for `host`: the peer must be the identity that claims the host, and this agent may call it. */
function egressAuthorizer(host: string): (policy: PolicyDocument) => Authorizer {
  return (policy) => {
    const verdict = decideEgress(policy, host);
    return verdict.allowed ? authorizeID(verdict.spiffeID) : () => ({ allowed: false, reason: verdict.message });
  };
}

/**
 * The keep-alive pool to one expected identity, of at most
 * --max-connections-per-peer connections, each followed by the Admissions:
 * after a reload, a connection whose peer would not be admitted now is
 * closed, at once when idle, else as soon as its answer is in, before the
 * pool could hand it to a waiting request.
 */
class PeerPool extends AgentHttpsAgent {
  readonly #admissions: Admissions;
  #retired = false;

  constructor(identity: Identity, expected: string, admissions: Admissions, opts: { idleMs: number; maxSockets: number }) {
    super(identity, { authorize: authorizeID(expected), keepAlive: true, timeout: opts.idleMs, maxSockets: opts.maxSockets });
    this.#admissions = admissions;
    this.prependListener('free', (socket: TLSSocket) => {
      if (admissions.revokedReason(socket) !== undefined) socket.destroy();
    });
  }

  override createConnection(options: https.RequestOptions, callback?: Parameters<https.Agent['createConnection']>[1]) {
    const socket = super.createConnection(options, callback) as TLSSocket;
    const host = options.servername ?? String(options.host);
    // The SDK's checks passed before 'secureConnect' (checkServerIdentity).
    socket.once('secureConnect', () => this.#admissions.admit(socket, {
      chain: peerChainOf(socket.getPeerCertificate(true)),
      authorizer: egressAuthorizer(host),
      revoke: (s) => {
        if (this.#isFree(s)) s.destroy();
      },
    }));
    return socket;
  }

  #isFree(socket: Socket): boolean {
    return Object.values(this.freeSockets).some((free) => free?.includes(socket));
  }

  // Node asks this before it keeps an idle connection; requests already waiting still get one.
  override keepSocketAlive(socket: Socket): boolean {
    if (this.#retired) return false;
    super.keepSocketAlive(socket);
    return true;
  }

  /** No longer reused: each connection closes once nothing waits for it. */
  retire(): void {
    this.#retired = true;
    for (const free of Object.values(this.freeSockets)) for (const s of free ?? []) s.destroy();
  }
}

/**
 * One PeerPool per expected identity. A new SVID of our own (a renewal, the
 * Leaf moving to a new Root) starts new pools, so peers see the new Leaf at
 * once; the old connections finish what they carry and close. A reload of
 * the Bundle, deny list or policy alone keeps every connection whose peer is
 * still admitted (Admissions).
 */
class Pools {
  #pools = new Map<string, PeerPool>();
  readonly #identity: Identity;
  readonly #admissions: Admissions;
  readonly #opts: { idleMs: number; maxSockets: number };
  /** Our Leaf's serial: each reload builds new objects, a renewal a new serial. */
  #serial: string;

  constructor(identity: Identity, events: EventEmitter<ProxyEvents>, opts: { idleMs: number; maxSockets: number }) {
    this.#identity = identity;
    this.#opts = opts;
    this.#serial = identity.svid.serialNumber;
    this.#admissions = new Admissions(identity, events, 'outbound');
    identity.on('update', this.#renewed);
  }

  readonly #renewed = () => {
    if (this.#identity.svid.serialNumber === this.#serial) return;
    this.#serial = this.#identity.svid.serialNumber;
    const old = this.#pools;
    this.#pools = new Map();
    for (const pool of old.values()) pool.retire();
  };

  poolFor(expected: string): PeerPool {
    let pool = this.#pools.get(expected);
    if (!pool) {
      pool = new PeerPool(this.#identity, expected, this.#admissions, this.#opts);
      this.#pools.set(expected, pool);
    }
    return pool;
  }

  destroy(): void {
    this.#identity.off('update', this.#renewed);
    this.#admissions.close();
    for (const pool of this.#pools.values()) pool.destroy();
  }
}

export function outboundServer(identity: Identity, opts: OutboundOptions, events: EventEmitter<ProxyEvents>): http.Server {
  const pools = new Pools(identity, events, { idleMs: poolIdleMs(opts.limits), maxSockets: opts.limits.maxConnectionsPerPeer });
  const refuse = (res: http.ServerResponse, status: number, reason: string, message: string, request?: Refusal['request'], peer?: string) => {
    events.emit('refused', { direction: 'outbound', reason, message, ...(peer ? { peer } : {}), ...(request ? { request } : {}) });
    sendError(res, status, `agent-identity proxy: ${message}`);
  };
  const server = http.createServer(httpServerOptions(opts.limits), (req, res) => {
    let url: URL | undefined;
    try {
      url = /^http:\/\//i.test(req.url ?? '') ? new URL(req.url!) : undefined;
    } catch {
      url = undefined;
    }
    if (!url) {
      refuse(res, 400, 'NotAProxyRequest', `expected an absolute http:// URL as a forward proxy receives (set HTTP_PROXY=http://${opts.address}:${opts.port}), got "${String(req.url).slice(0, 100)}"`, { method: req.method ?? '', path: '', host: '' });
      return;
    }
    const host = normalizeHost(url.hostname);
    const port = Number(url.port || 80);
    const target = `${host}:${port}`;
    const verdict = decideEgress(identity.policy, host);
    if (!verdict.allowed) {
      refuse(res, verdict.status, verdict.status === 403 ? 'EgressDenied' : 'AmbiguousHost', verdict.message, { method: req.method ?? '', path: url.pathname, host }, verdict.spiffeID);
      return;
    }
    const expected = verdict.spiffeID;
    const ctx = { direction: 'egress' as const, local: identity.spiffeID, peer: expected, grants: grantsOf(identity.policy.egress, expected), path: url.pathname };
    guardRequest(ctx, req, res, opts.requests ?? {}, (allowed) => {
      const upstream = requestTo(pools.poolFor(expected), opts, { host, port, url, req: allowed });
      void relay(allowed, res, upstream, opts.limits.maxBodyBytes, (err) => {
        const failure = outboundFailure(err, target, expected, identity.spiffeID);
        if (err instanceof PeerRefusedError) {
          events.emit('refused', { direction: 'outbound', reason: err.reason, peer: err.peerID, message: failure.message, request: { method: allowed.method ?? '', path: url.pathname, host } });
        }
        else events.emit('failed', { direction: 'outbound', message: failure.message });
        return failure;
      });
    });
  });
  server.on('connect', (req: http.IncomingMessage, socket: Socket) => {
    // CONNECT's target is host:port; only the host goes to the audit line.
    const host = String(req.url ?? '').replace(/:\d+$/, '').slice(0, 256);
    events.emit('refused', { direction: 'outbound', reason: 'ConnectNotSupported', message: CONNECT_REFUSAL.trim(), request: { method: 'CONNECT', path: '', host } });
    socket.end(`HTTP/1.1 405 Method Not Allowed\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(CONNECT_REFUSAL)}\r\nconnection: close\r\n\r\n${CONNECT_REFUSAL}`);
  });
  limitConnections(server, opts.limits);
  server.once('close', () => pools.destroy());
  return server;
}

/** The call over mTLS: to the pinned address if --resolve names the host, with the host as SNI and Host header. */
function requestTo(agent: PeerPool, opts: OutboundOptions, to: { host: string; port: number; url: URL; req: http.IncomingMessage }): http.ClientRequest {
  const upstream = https.request({
    host: opts.resolve.get(to.host) ?? to.host,
    port: to.port,
    servername: to.host,
    method: to.req.method,
    path: `${to.url.pathname}${to.url.search}`,
    headers: { ...forwardHeaders(to.req.rawHeaders), host: to.url.host },
    agent,
  });
  upstream.setTimeout(opts.limits.idleTimeoutMs, () => upstream.destroy(new TimeoutError('no answer in time')));
  return upstream;
}
