// agent-identity proxy: the SDK's policy engine in front of (inbound) and
// behind (outbound) an app that knows nothing of certificates. One Identity,
// loaded and reloaded by the SDK, serves both directions.
import { EventEmitter, once } from 'node:events';
import type { AddressInfo, Server, Socket } from 'node:net';
import type { AuditRecord } from '../audit/record.ts';
import type { Identity } from '../sdk/index.ts';
import type { ProxyConfig } from './config.ts';
import type { ProxyEvents } from './events.ts';
import { inboundServer } from './inbound.ts';
import { outboundServer } from './outbound.ts';

export { PROXY_USAGE, proxyConfig, ProxyConfigError, type ProxyConfig } from './config.ts';
export type { ProxyEvents, Refusal } from './events.ts';

export interface RunningProxy {
  inbound?: AddressInfo;
  outbound?: AddressInfo;
  events: EventEmitter<ProxyEvents>;
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
  /** Every request-level decision (one per JSON-RPC call of a batch), for the audit stream. */
  onDecision?: (record: AuditRecord) => void;
}

export async function startProxy(identity: Identity, config: ProxyConfig, hooks: ProxyHooks = {}): Promise<RunningProxy> {
  const requests = { ...config.requests, onDecision: hooks.onDecision };
  const events = new EventEmitter<ProxyEvents>();
  const servers: Server[] = [];
  const running: RunningProxy = { events, close: (graceMs = 10_000) => closeAll(servers, graceMs) };
  try {
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
    await closeAll(servers, 0);
    throw err;
  }
  return running;
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
