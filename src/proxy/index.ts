// agent-identity proxy: the SDK's policy engine in front of (inbound) and
// behind (outbound) an app that knows nothing of certificates. One Identity,
// loaded and reloaded by the SDK, serves both directions.
import { EventEmitter, once } from 'node:events';
import type { AddressInfo, Server, Socket } from 'node:net';
import { openAudit, type AuditRecord } from '../audit/index.ts';
import type { Identity } from '../sdk/index.ts';
import { type HealthServer, startHealthServer } from '../telemetry/server.ts';
import { ProxyConfigError, type ProxyConfig } from './config.ts';
import type { ProxyEvents, Refusal } from './events.ts';
import { inboundServer } from './inbound.ts';
import { outboundServer } from './outbound.ts';

export { PROXY_USAGE, proxyConfig, ProxyConfigError, type ProxyConfig } from './config.ts';
export type { ProxyEvents, Refusal } from './events.ts';

export interface RunningProxy {
  inbound?: AddressInfo;
  outbound?: AddressInfo;
  /** The metrics listener's port, with --metrics-port. */
  metricsPort?: number;
  events: EventEmitter<ProxyEvents>;
  /** One authorization decision: counted in the metrics and written to the audit stream. The enforcement's sink. */
  recordDecision(r: AuditRecord): void;
  /** Stops accepting, lets requests in flight finish for up to `graceMs`, then closes the rest. */
  close(graceMs?: number): Promise<void>;
}

// Every accepted socket, so a close that outlasts its grace can end them (a TLS server has no closeAllConnections).
const sockets = new WeakMap<Server, Set<Socket>>();

async function listen(server: Server, address: string, port: number): Promise<AddressInfo> {
  const open = new Set<Socket>();
  sockets.set(server, open);
  server.on('connection', (s: Socket) => {
    open.add(s);
    s.once('close', () => open.delete(s));
  });
  server.listen(port, address);
  await once(server, 'listening');
  return server.address() as AddressInfo;
}

export interface ProxyHooks {
  /** Sees every request-level decision (one per JSON-RPC call of a batch) after the audit stream and the metrics did. */
  onDecision?: (record: AuditRecord) => void;
}

export async function startProxy(identity: Identity, config: ProxyConfig, hooks: ProxyHooks = {}): Promise<RunningProxy> {
  const events = new EventEmitter<ProxyEvents>();
  const servers: Server[] = [];
  const audit = openAuditLog(config, events);
  const onDecision = (record: AuditRecord) => {
    audit.recordDecision(record);
    hooks.onDecision?.(record);
  };
  const requests = { ...config.requests, onDecision };
  // A refusal at the connection (a peer refused at its handshake or on a reload, an egress the policy does not
  // allow, a peer presenting the wrong identity) is a decision too: the request policy never sees it.
  events.on('refused', (r) => onDecision(refusalRecord(identity.spiffeID, r)));
  let health: HealthServer | undefined;
  // Metrics last: a scrape during the drain still answers; the audit after the requests that feed it.
  const stop = async (graceMs: number) => {
    await closeAll(servers, graceMs);
    await health?.close();
    await audit.close();
  };
  const running: RunningProxy = { events, recordDecision: audit.recordDecision, close: (graceMs = 10_000) => stop(graceMs) };
  try {
    // First: a scrape that finds the port answers from the start, before any decision.
    if (config.metrics) {
      health = await startHealthServer(config.metrics.address, config.metrics.port, () => ({ ready: true }), audit.metrics);
      running.metricsPort = health.port;
    }
    // Outbound first: the injected sidecar's startup probe is a TCP connect to the inbound port, so once
    // that answers the agent may start, and its first call out must find the outbound listener there.
    if (config.outbound) {
      const server = outboundServer(identity, { ...config.outbound, resolve: config.resolve, limits: config.limits, requests }, events);
      servers.push(server);
      running.outbound = await listen(server, config.outbound.address, config.outbound.port);
    }
    if (config.inbound) {
      const server = inboundServer(identity, { ...config.inbound, limits: config.limits, requests }, events);
      servers.push(server);
      running.inbound = await listen(server, config.inbound.address, config.inbound.port);
    }
  } catch (err) {
    await stop(0);
    throw err;
  }
  return running;
}

/** The audit record of a refusal the proxy made before any request policy could decide. */
export function refusalRecord(local: string, r: Refusal): AuditRecord {
  return {
    time: new Date().toISOString(), direction: r.direction === 'outbound' ? 'egress' : 'inbound', local,
    peer: r.peer || r.request?.host || 'unknown', transport: r.request ? 'http' : 'tls',
    method: r.request?.method ?? '', path: r.request?.path ?? '', decision: 'deny', rule: null, reason: r.reason, latencyMs: 0,
  };
}

/** A file that cannot be appended to is refused at start-up, by the flag's name; later failures are events. */
function openAuditLog(config: ProxyConfig, events: EventEmitter<ProxyEvents>) {
  try {
    return openAudit(config.audit, (err) => events.emit('auditFailed', { message: `audit lines cannot be written: ${err.message}` }));
  } catch (err) {
    throw new ProxyConfigError(`--audit-log: cannot append to "${(config.audit as { path: string }).path}": ${(err as Error).message}`);
  }
}

async function closeAll(servers: Server[], graceMs: number): Promise<void> {
  await Promise.all(servers.map(async (s: Server & { closeIdleConnections?: () => void }) => {
    if (!s.listening) return;
    const closed = once(s, 'close');
    s.close();
    s.closeIdleConnections?.();
    const timer = setTimeout(() => {
      for (const socket of sockets.get(s) ?? []) socket.destroy();
    }, graceMs);
    await closed;
    clearTimeout(timer);
  }));
}
