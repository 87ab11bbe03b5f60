// `agent-identity proxy`: loads the identity the way the SDK does (either
// delivery, reloaded as Kubernetes updates it), starts the proxy, logs one
// JSON line per event on stdout, and drains on SIGTERM.
import { once } from 'node:events';
import { PROXY_USAGE, proxyConfig, ProxyConfigError, startProxy } from '../proxy/index.ts';
import { loadIdentity } from '../sdk/index.ts';
import type { Output } from './commands.ts';
import { UsageError } from './errors.ts';

export { PROXY_USAGE };

// Kubernetes waits terminationGracePeriodSeconds (30 s by default) after SIGTERM.
const DRAIN_MS = 20_000;

function log(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
}

export async function proxyCommand(argv: string[]): Promise<Output> {
  if (argv.includes('--help') || argv.includes('-h')) return { text: PROXY_USAGE, json: null };
  let config;
  try {
    config = proxyConfig(argv, process.env);
  } catch (err) {
    throw err instanceof ProxyConfigError ? new UsageError(`proxy: ${err.message} (agent-identity proxy --help lists the options)`) : err;
  }
  const identity = await loadIdentity({ dir: config.identityDir });
  identity.on('update', (i) => log('info', 'identity reloaded', { spiffeID: i.spiffeID, serialNumber: i.svid.serialNumber, notAfter: i.svid.notAfter.toISOString() }));
  identity.on('reloadError', (err) => log('warn', 'identity files changed but cannot be used; keeping the last good ones', { error: err.message }));
  let proxy;
  try {
    proxy = await startProxy(identity, config);
  } catch (err) {
    identity.close();
    throw err instanceof ProxyConfigError ? new UsageError(`proxy: ${err.message}`) : err;
  }
  proxy.events.on('refused', (r) => log('warn', 'refused', { ...r }));
  proxy.events.on('failed', (f) => log('warn', 'failed', { ...f }));
  proxy.events.on('auditFailed', (f) => log('warn', 'audit failed', { ...f }));
  log('info', 'listening', {
    spiffeID: identity.spiffeID, serialNumber: identity.svid.serialNumber,
    inbound: proxy.inbound && { port: proxy.inbound.port, appPort: config.inbound!.appPort, mode: config.inbound!.mode },
    outbound: proxy.outbound && { port: proxy.outbound.port },
    metrics: proxy.metricsPort === undefined ? undefined : { port: proxy.metricsPort },
    audit: config.audit.to === 'file' ? config.audit.path : config.audit.to,
  });
  const signal = await Promise.race([once(process, 'SIGTERM'), once(process, 'SIGINT')]);
  log('info', 'draining', { signal: String(signal[0] ?? 'signal') });
  identity.close();
  await proxy.close(DRAIN_MS);
  return { text: '', json: null };
}
