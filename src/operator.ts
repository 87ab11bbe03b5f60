// Wiring: what is watched, which queue each change lands in, and how errors
// back off. Reads top to bottom like the sentence in the README:
//   AgentIdentity, its Secret, or its TrustDomain changes → reconcile the identity;
//   TrustDomain or its CA Secret changes                → reconcile the trust domain.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { LABEL_IDENTITY, LABEL_TRUST_DOMAIN } from './api/group.ts';
import { trustDomainOf } from './api/defaults.ts';
import type { AgentIdentity, Secret, TrustDomain } from './api/types.ts';
import { KubeClient } from './kube/client.ts';
import { EventRecorder } from './kube/events.ts';
import { toKubeError } from './kube/errors.ts';
import { WorkQueue } from './controller/queue.ts';
import { identityReconciler } from './identity/reconciler.ts';
import { trustReconciler } from './trust/reconciler.ts';
import { TrustStore } from './trust/store.ts';
import { Metrics } from './metrics.ts';
import type { Config } from './config.ts';

export interface Operator {
  metrics: Metrics;
  store: TrustStore;
  ready(): boolean;
  /** Resolves when both queues are idle (tests). */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

export async function startOperator(cfg: Config, kc: KubeConfig, log: Logger, metrics = new Metrics()): Promise<Operator> {
  const kube = new KubeClient(kc);
  const store = new TrustStore();
  const events = new EventRecorder(kc, 'agent-identity-operator', (err) => log.warn({ err: toKubeError(err).message }, 'recording event failed'));
  const now = () => new Date();
  const queueOptions = (controller: string) => ({
    concurrency: cfg.concurrency,
    rateLimit: { perSecond: cfg.qps },
    backoff: { baseMs: 1000, maxMs: 5 * 60_000 },
    onError: (key: string, err: unknown, attempt: number, retryInMs: number) =>
      log.debug({ controller, key, attempt, retryInMs, err: err instanceof Error ? err.message : String(err) }, 'reconcile will be retried'),
    onDepth: (depth: number) => metrics.queueDepth.set({ controller }, depth),
  });
  const restartLogger = (resource: string) => (err: unknown, delayMs: number) => {
    metrics.informerRestarts.inc({ resource });
    log.warn({ resource, delayMs, err: toKubeError(err).message }, 'watch failed; restarting');
  };

  // Nothing is queued until every cache has synced: a reconcile that saw the
  // identities but not yet their TrustDomain would report a false failure.
  let synced = false;
  const identityKey = (o: AgentIdentity) => `${o.metadata.namespace}/${o.metadata.name}`;
  let identityQueue: WorkQueue;
  let trustQueue: WorkQueue;
  const addIdentity = (key: string) => { if (synced) identityQueue.add(key); };
  const addTrustDomain = (name: string) => { if (synced) trustQueue.add(name); };
  const enqueueIdentitiesOf = (td: string) => {
    for (const i of identities.list()) if (trustDomainOf(i) === td) addIdentity(identityKey(i));
  };

  const identities = kube.identityInformer({
    resyncMs: cfg.resyncMs, onRestart: restartLogger('agentidentities'),
    onChange: (o) => addIdentity(identityKey(o)),
  });
  const trustDomains = kube.trustDomainInformer({
    resyncMs: cfg.resyncMs, onRestart: restartLogger('trustdomains'),
    onChange: (o: TrustDomain) => { addTrustDomain(o.metadata.name!); enqueueIdentitiesOf(o.metadata.name!); },
  });
  const secrets = kube.managedSecretInformer({
    resyncMs: cfg.resyncMs, onRestart: restartLogger('secrets'),
    onChange: (s: Secret) => {
      const identity = s.metadata.labels?.[LABEL_IDENTITY];
      const td = s.metadata.labels?.[LABEL_TRUST_DOMAIN];
      if (identity) addIdentity(`${s.metadata.namespace}/${identity}`);
      if (td && s.metadata.namespace === cfg.namespace) addTrustDomain(td);
    },
  });

  identityQueue = new WorkQueue(identityReconciler({
    api: kube, identities, trustDomains, secrets, store, events, metrics, log: log.child({ controller: 'agentidentity' }),
    minDurationMs: cfg.minDurationMs, now,
  }), queueOptions('agentidentity'));
  trustQueue = new WorkQueue(trustReconciler({
    api: kube, trustDomains, secrets, store, events, metrics, log: log.child({ controller: 'trustdomain' }),
    operatorNamespace: cfg.namespace, caDurationMs: cfg.caDurationMs, externalCAPollMs: cfg.externalCAPollMs, now,
  }), queueOptions('trustdomain'));
  store.onChange(enqueueIdentitiesOf);

  const informers = [secrets, trustDomains, identities];
  await Promise.all(informers.map((i) => i.start()));
  synced = true;
  for (const td of trustDomains.list()) addTrustDomain(td.metadata.name!);
  for (const i of identities.list()) addIdentity(identityKey(i));
  log.info('caches synced; reconciling');

  return {
    metrics, store,
    ready: () => informers.every((i) => i.hasSynced()),
    idle: async () => { await trustQueue.drain(); await identityQueue.drain(); },
    stop: async () => {
      await Promise.all(informers.map((i) => i.stop()));
      await Promise.all([identityQueue.shutdown(), trustQueue.shutdown()]);
    },
  };
}
