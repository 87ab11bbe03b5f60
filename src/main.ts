#!/usr/bin/env node
// Entry point: configuration, then clients, controllers and servers.
// With --leader-elect only the Lease holder reconciles; a replica that loses
// the lease exits at once (and is restarted as a follower) rather than risk
// reconciling next to the new leader.
import { loadConfig, usage, wantsHelp, envName, type Config } from './config.ts';
import { createLogger } from './log.ts';
import { Metrics } from './controller/metrics.ts';
import { startHealthServer } from './telemetry/server.ts';
import { startOperator, type Operator } from './operator.ts';
import { LeaderElector } from './kube/lease.ts';
import { toKubeError } from './kube/errors.ts';
import { KubeClient, loadKubeConfig, type KubeConfig } from './kube/client.ts';
import { limitRequests } from './kube/transport.ts';
import { OPERATOR_LEASE } from './api/names.ts';
import { startWebhookServer } from './webhook/index.ts';
import { replicaReadiness, SHUTDOWN_DRAIN_MS } from './webhook/readiness.ts';
import { startBundleEndpoint } from './federation/endpoint.ts';
import { cgroupMemoryLimit, heapSetExplicitly, planHeap, reexecArgs, type MemoryLimit } from './memory-limit.ts';
import { getHeapStatistics } from 'node:v8';

/** A start-up problem the user fixes: one line on stderr, no stack trace. */
function fail(message: string, code: number): never {
  console.error(`agent-identity-operator: ${message}`);
  process.exit(code);
}

/** Binds a listener, naming the flag to change when its port is taken. */
async function listen<T>(flag: 'http-port' | 'webhook-port' | 'bundle-endpoint-port', port: number, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    if ((err as { code?: string }).code === 'EADDRINUSE') fail(`port ${port} is already in use (--${flag} / ${envName(flag)})`, 1);
    throw err;
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (wantsHelp(argv)) {
    process.stdout.write(usage());
    return;
  }
  let cfg: Config;
  let kc: KubeConfig;
  try {
    cfg = loadConfig(argv, process.env);
    kc = loadKubeConfig(cfg.kubeconfig);
  } catch (err) {
    fail((err as Error).message, 2);
  }
  const memoryLimit: MemoryLimit | undefined = cfg.memoryLimitBytes !== undefined ? { bytes: cfg.memoryLimitBytes, source: '--memory-limit' } : cgroupMemoryLimit();
  const heap = planHeap(memoryLimit, heapSetExplicitly(process.execArgv, process.env.NODE_OPTIONS));
  // Before any client, server or timer exists: the process is replaced, keeping its PID, fds and environment.
  if (heap.action === 'reexec') process.execve!(process.execPath, reexecArgs(process.execPath, process.execArgv, process.argv, heap.heapMiB), process.env);
  // One connection pool and one request budget for every client below: they all get this kc.
  limitRequests(kc, { qps: cfg.qps, burst: cfg.burst });
  const log = createLogger(cfg.logLevel, cfg.logFormat);
  const metrics = new Metrics({ defaultMetrics: true });
  let operator: Operator | undefined;
  let elector: LeaderElector | undefined;
  // Every replica serves admission; only the leader keeps the webhook's certificates (a controller of the operator's).
  const webhookPort = cfg.webhookPort;
  const webhook = webhookPort === undefined ? undefined : await listen('webhook-port', webhookPort, () => startWebhookServer({
    kubeConfig: kc, namespace: cfg.namespace, host: cfg.webhookHost, port: webhookPort, webhookConfigurationName: cfg.webhookConfiguration, logger: log.child({ component: 'webhook' }),
    onReview: (r) => metrics.webhookReviews.inc({ webhook: r.webhook, result: r.result }),
    ...(cfg.proxy ? { proxy: cfg.proxy } : {}),
  }));
  // Not refused at start-up: with failurePolicy Fail, an operator that will not start over a
  // feature nobody uses yet would block every agent pod. The pods that need it are refused, naming the flag.
  if (webhook && !cfg.proxy) log.warn('no --proxy-image: pods of AgentIdentities with spec.proxy will be refused until it is set');
  // Every replica serves the bundles the leader recorded (federation/endpoint.ts): partners fetch from any of them.
  const bundlePort = cfg.bundleEndpointPort;
  const bundleEndpoint = bundlePort === undefined ? undefined : await listen('bundle-endpoint-port', bundlePort, () => startBundleEndpoint({
    kubeConfig: kc, namespace: cfg.namespace, host: cfg.bundleEndpointHost, port: bundlePort, logger: log.child({ component: 'bundle-endpoint' }),
  }));
  let stopping = false;
  // Every replica: once its webhook serves a certificate the caBundle verifies; the leader also once its caches synced.
  const ready = () => replicaReadiness({
    shuttingDown: stopping, webhook: webhook?.readiness(),
    cachesSynced: elector && !elector.isLeader() ? undefined : operator?.ready() ?? false,
  });
  const http = await listen('http-port', cfg.httpPort, () => startHealthServer(cfg.httpHost, cfg.httpPort, ready, metrics));
  log.info({ port: http.port, namespace: cfg.namespace, server: kc.getCurrentCluster()?.server, identity: cfg.identity }, 'starting');
  log.info({ memoryLimit: memoryLimit && { bytes: memoryLimit.bytes, source: memoryLimit.source }, heapLimitBytes: getHeapStatistics().heap_size_limit, ...(heap.action === 'keep' ? { why: heap.reason } : {}) }, 'memory');

  const shutdown = async (signal: string, code = 0) => {
    if (stopping) return;
    // Not ready from here on (see ready); the webhook keeps answering through the drain, like a
    // pod's preStop sleep, while the controllers stop and the Lease is released for the next leader.
    stopping = true;
    webhook?.drain();
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 20_000);
    force.unref();
    const drained = new Promise((r) => setTimeout(r, webhook?.listened() ? SHUTDOWN_DRAIN_MS : 0));
    await operator?.stop();
    await elector?.stop();
    await drained;
    await webhook?.close();
    await bundleEndpoint?.close();
    await http.close();
    log.flush();
    process.exit(code);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  const lead = () => startLeading().catch((err: unknown) => {
    log.error({ err: toKubeError(err).message }, 'cannot start the controllers');
    void shutdown('StartFailed', 1);
  });
  const startLeading = async () => {
    // A webhook bound to a loopback address is named by it too, so an API server on the same host can call
    // https://127.0.0.1:<port> (development, tests). Only loopback: a pod IP would differ per leader and re-issue at each change.
    const ipAddresses = /^127\.|^::1$/.test(cfg.webhookHost) ? [cfg.webhookHost] : [];
    const webhookCertificates = webhook && { namespace: cfg.namespace, serviceName: cfg.webhookService, webhookConfigurationName: cfg.webhookConfiguration, ipAddresses };
    const op = await startOperator(cfg, kc, log, metrics, { ...(webhookCertificates ? { webhookCertificates } : {}) });
    operator = op;
    // The webhook's certificates have no object to hold a condition; their state is read at each scrape.
    if (op.webhookCertificates) {
      const certificates = op.webhookCertificates;
      metrics.onScrape(() => {
        const s = certificates.status();
        if (s.caNotAfter) metrics.webhookCertificateExpiration.set({ certificate: 'ca' }, s.caNotAfter.getTime() / 1000);
        if (s.servingNotAfter) metrics.webhookCertificateExpiration.set({ certificate: 'serving' }, s.servingNotAfter.getTime() / 1000);
        metrics.webhookManagerErrors.set(s.lastError ? 1 : 0);
      });
    }
  };
  if (!cfg.leaderElect) return lead();
  // The elector steps down at its renew deadline whatever a request does (lease.ts); bounding each
  // request too keeps those stuck on a dead connection from piling up behind it.
  elector = new LeaderElector(new KubeClient(kc, { timeoutMs: cfg.renewDeadlineMs }), {
    namespace: cfg.namespace, name: OPERATOR_LEASE, identity: cfg.identity,
    leaseDurationMs: cfg.leaseDurationMs, renewDeadlineMs: cfg.renewDeadlineMs, retryPeriodMs: cfg.retryPeriodMs,
    onStartedLeading: () => { log.info({ identity: cfg.identity }, 'became leader'); void lead(); },
    onStoppedLeading: () => { log.error({ identity: cfg.identity }, 'lost leadership; exiting'); void shutdown('LeaderLost', 1); },
    onError: (err) => log.warn({ err: toKubeError(err).message }, 'leader election'),
  });
  elector.start();
}

await main();
