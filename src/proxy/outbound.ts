// The outbound proxy: an HTTP forward proxy on 127.0.0.1 for the app's calls
// (absolute-form `GET http://host:port/path`, as HTTP_PROXY makes clients
// send). Each call is decided before any connection (which identity claims
// the host, and may this agent call it), then sent over mTLS with the pod's
// identity to a server that must present exactly that identity.
import type { EventEmitter } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { authorizeID, AgentHttpsAgent, grantsOf, guardRequest, type Identity, PeerRefusedError, type RequestPolicyOptions } from '../sdk/index.ts';
import { decideEgress, normalizeHost } from './destinations.ts';
import type { ProxyEvents } from './events.ts';
import { forwardHeaders } from './headers.ts';
import { capBody, httpServerOptions, type Limits, limitConnections, poolIdleMs } from './limits.ts';
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

/**
 * One keep-alive pool per expected identity and host, of at most
 * --max-connections-per-peer connections. A reload starts new pools:
 * connections opened under the old policy or Bundle finish what they carry
 * and are not reused.
 */
class Pools {
  #agents = new Map<string, AgentHttpsAgent>();
  readonly #identity: Identity;
  readonly #idleMs: number;
  readonly #maxSockets: number;

  constructor(identity: Identity, idleMs: number, maxSockets: number) {
    this.#identity = identity;
    this.#idleMs = idleMs;
    this.#maxSockets = maxSockets;
    const retire = () => {
      const old = this.#agents;
      this.#agents = new Map();
      for (const agent of old.values()) {
        agent.on('free', (socket: Socket) => socket.destroy());
        for (const sockets of Object.values(agent.freeSockets)) for (const s of sockets ?? []) s.destroy();
      }
    };
    identity.on('update', retire);
  }

  agentFor(expected: string): AgentHttpsAgent {
    let agent = this.#agents.get(expected);
    if (!agent) {
      agent = new AgentHttpsAgent(this.#identity, { authorize: authorizeID(expected), keepAlive: true, timeout: this.#idleMs, maxSockets: this.#maxSockets });
      this.#agents.set(expected, agent);
    }
    return agent;
  }

  destroy(): void {
    for (const agent of this.#agents.values()) agent.destroy();
  }
}

export function outboundServer(identity: Identity, opts: OutboundOptions, events: EventEmitter<ProxyEvents>): http.Server {
  const pools = new Pools(identity, poolIdleMs(opts.limits), opts.limits.maxConnectionsPerPeer);
  const refuse = (res: http.ServerResponse, status: number, reason: string, message: string, peer?: string) => {
    events.emit('refused', { direction: 'outbound', reason, peer, message });
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
      refuse(res, 400, 'NotAProxyRequest', `expected an absolute http:// URL as a forward proxy receives (set HTTP_PROXY=http://${opts.address}:${opts.port}), got "${String(req.url).slice(0, 100)}"`);
      return;
    }
    const host = normalizeHost(url.hostname);
    const port = Number(url.port || 80);
    const target = `${host}:${port}`;
    const verdict = decideEgress(identity.policy, host);
    if (!verdict.allowed) {
      refuse(res, verdict.status, verdict.status === 403 ? 'EgressDenied' : 'AmbiguousHost', verdict.message);
      return;
    }
    const expected = verdict.spiffeID;
    const ctx = { direction: 'egress' as const, local: identity.spiffeID, peer: expected, grants: grantsOf(identity.policy.egress, expected), path: url.pathname };
    guardRequest(ctx, req, res, opts.requests ?? {}, (allowed) => {
      const upstream = requestTo(pools.agentFor(expected), opts, { host, port, url, req: allowed });
      void relay(allowed, res, upstream, capBody(opts.limits.maxBodyBytes), (err) => {
        const failure = outboundFailure(err, target, expected, identity.spiffeID);
        if (err instanceof PeerRefusedError) events.emit('refused', { direction: 'outbound', reason: err.reason, peer: err.peerID, message: failure.message });
        else events.emit('failed', { direction: 'outbound', message: failure.message });
        return failure;
      });
    });
  });
  server.on('connect', (_req: http.IncomingMessage, socket: Socket) => {
    events.emit('refused', { direction: 'outbound', reason: 'ConnectNotSupported', message: CONNECT_REFUSAL.trim() });
    socket.end(`HTTP/1.1 405 Method Not Allowed\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(CONNECT_REFUSAL)}\r\nconnection: close\r\n\r\n${CONNECT_REFUSAL}`);
  });
  limitConnections(server, opts.limits);
  server.once('close', () => pools.destroy());
  return server;
}

/** The call over mTLS: to the pinned address if --resolve names the host, with the host as SNI and Host header. */
function requestTo(agent: AgentHttpsAgent, opts: OutboundOptions, to: { host: string; port: number; url: URL; req: http.IncomingMessage }): http.ClientRequest {
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
