#!/usr/bin/env node
// Entry point: configuration, then clients, controllers and servers.
import { KubeConfig } from '@kubernetes/client-node';
import { loadConfig } from './config.ts';
import { createLogger } from './log.ts';
import { Metrics } from './metrics.ts';
import { startHealthServer } from './http.ts';
import { startOperator, type Operator } from './operator.ts';

async function main(): Promise<void> {
  let cfg;
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
  const http = await startHealthServer(cfg.httpHost, cfg.httpPort, () => operator?.ready() ?? false, metrics.registry);
  log.info({ port: http.port, namespace: cfg.namespace, server: kc.getCurrentCluster()?.server }, 'starting');

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 20_000);
    force.unref();
    await operator?.stop();
    await http.close();
    log.flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  operator = await startOperator(cfg, kc, log, metrics);
}

await main();
