#!/usr/bin/env node
// Entry point: configuration, then clients, controllers and servers.
// With --leader-elect only the Lease holder reconciles; a replica that loses
// the lease exits at once (and is restarted as a follower) rather than risk
// reconciling next to the new leader.
import { KubeConfig } from '@kubernetes/client-node';
import { loadConfig, type Config } from './config.ts';
import { createLogger } from './log.ts';
import { Metrics } from './metrics.ts';
import { startHealthServer } from './http.ts';
import { startOperator, type Operator } from './operator.ts';
import { LeaderElector } from './kube/lease.ts';
import { toKubeError } from './kube/errors.ts';
import { startWebhookServer, startWebhookManager, type WebhookManager } from './webhook/index.ts';

async function main(): Promise<void> {
  let cfg: Config;
  try {
    cfg = loadConfig(process.argv.slice(2), process.env);
  } catch (err) {
    console.error(`agent-identity-operator: ${(err as Error).message}`);
    process.exit(2);
  }
  const log = createLogger(cfg.logLevel, cfg.logFormat);
  const kc = new KubeConfig();
  if (cfg.kubeconfig) kc.loadFromFile(cfg.kubeconfig);
  else kc.loadFromCluster();
  const metrics = new Metrics({ defaultMetrics: true });
  let operator: Operator | undefined;
  let elector: LeaderElector | undefined;
  let manager: WebhookManager | undefined;
  // Every replica serves admission; only the leader manages the webhook's certificates.
  const webhook = cfg.webhookPort === undefined ? undefined : await startWebhookServer({
    kubeConfig: kc, namespace: cfg.namespace, port: cfg.webhookPort, logger: log.child({ component: 'webhook' }),
    onReview: (r) => metrics.webhookReviews.inc({ webhook: r.webhook, result: r.result }),
  });
  // A follower is ready (it serves the webhook); the leader once its caches synced.
  const ready = () => (elector && !elector.isLeader() ? true : operator?.ready() ?? false);
  const http = await startHealthServer(cfg.httpHost, cfg.httpPort, ready, metrics);
  log.info({ port: http.port, namespace: cfg.namespace, server: kc.getCurrentCluster()?.server, identity: cfg.identity }, 'starting');

  let stopping = false;
  const shutdown = async (signal: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 20_000);
    force.unref();
    await operator?.stop();
    await manager?.stop();
    await elector?.stop();
    await webhook?.close();
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
    if (webhook) {
      const m = await startWebhookManager({ kubeConfig: kc, namespace: cfg.namespace, serviceName: cfg.webhookService, webhookConfigurationName: cfg.webhookConfiguration, logger: log.child({ component: 'webhook-manager' }) });
      manager = m;
      // The manager has no object to hold a condition; its state is read at each scrape.
      metrics.onScrape(() => {
        const s = m.status();
        if (s.caNotAfter) metrics.webhookCertificateExpiration.set({ certificate: 'ca' }, s.caNotAfter.getTime() / 1000);
        if (s.servingNotAfter) metrics.webhookCertificateExpiration.set({ certificate: 'serving' }, s.servingNotAfter.getTime() / 1000);
        metrics.webhookManagerErrors.set(s.lastError ? 1 : 0);
      });
    }
    operator = await startOperator(cfg, kc, log, metrics);
  };
  if (!cfg.leaderElect) return lead();
  elector = new LeaderElector(kc, {
    namespace: cfg.namespace, name: 'agent-identity-operator', identity: cfg.identity,
    leaseDurationMs: cfg.leaseDurationMs, renewDeadlineMs: cfg.renewDeadlineMs, retryPeriodMs: cfg.retryPeriodMs,
    onStartedLeading: () => { log.info({ identity: cfg.identity }, 'became leader'); void lead(); },
    onStoppedLeading: () => { log.error({ identity: cfg.identity }, 'lost leadership; exiting'); void shutdown('LeaderLost', 1); },
    onError: (err) => log.warn({ err: toKubeError(err).message }, 'leader election'),
  });
  elector.start();
}

await main();
