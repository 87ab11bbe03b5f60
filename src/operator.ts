// Wiring: what is watched, which queue each change lands in, and how errors
// back off. Reads top to bottom like the sentence in the README:
//   AgentIdentity, its Secret, its TrustDomain, its Namespace or its
//   ServiceAccount changes                              → reconcile the identity;
//   TrustDomain or its CA Secret changes                → reconcile the trust domain;
//   a PodCertificateRequest for our signer, or a TrustDomain's signing
//   state changing                                      → answer the request.
import type { Logger } from 'pino';
import { LABEL_IDENTITY, LABEL_TRUST_DOMAIN } from './api/group.ts';
import { trustDomainOf } from './api/defaults.ts';
import type { AgentIdentity, PodCertificateRequest, Secret, TrustDomain } from './api/types.ts';
import { KubeClient, type KubeConfig } from './kube/client.ts';
import { EventRecorder } from './kube/events.ts';
import { limitRequests, observeRetries } from './kube/transport.ts';
import { toKubeError } from './kube/errors.ts';
import type { Restart } from './kube/restart.ts';
import { WorkQueue } from './controller/queue.ts';
import { identityReconciler } from './identity/reconciler.ts';
import { trustReconciler } from './trust/reconciler.ts';
import { signerReconciler } from './signer/reconciler.ts';
import { answered } from './trust/ledger.ts';
import { TrustStore } from './trust/store.ts';
import { Metrics } from './controller/metrics.ts';
import type { Config } from './config.ts';

export interface Operator {
  metrics: Metrics;
  store: TrustStore;
  ready(): boolean;
  /** Resolves when every queue is idle (tests). */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

export interface OperatorOptions {
  /**
   * The clock every controller decides by (renewal, rotation, the ledger's
   * expiry); default real time. For tests that drive time past what the API
   * server lets them shorten (a pod certificate lives at least 1h). Queue
   * timers, leases and the API server keep real time, so a jumped clock is
   * seen at the next reconcile (an event, a resync, a rotation poll), and
   * what it signs starts in its future for real peers.
   */
  now?: () => Date;
}

/** How long work caused by another object's change waits to be coalesced (see touchTrustDomain). */
const COALESCE_MS = 1000;

export async function startOperator(cfg: Config, kc: KubeConfig, log: Logger, metrics = new Metrics(), opts: OperatorOptions = {}): Promise<Operator> {
  // Paces the operator's API requests, not its reconciles (main.ts sets the same limit for the whole process).
  limitRequests(kc, { qps: cfg.qps, burst: cfg.burst });
  observeRetries(kc, (reason) => metrics.apiRequestRetries.inc({ reason }));
  const kube = new KubeClient(kc);
  const store = new TrustStore();
  // Events ride an unpaced client with a budget of their own, the same size as the operator's (--qps/--burst).
  const events = new EventRecorder(new KubeClient(kc, { paced: false }), 'agent-identity-operator', {
    rate: { qps: cfg.qps, burst: cfg.burst },
    onError: (err) => log.warn({ err: toKubeError(err).message }, 'recording event failed'),
  });
  const now = opts.now ?? (() => new Date());
  const queueOptions = (controller: string) => ({
    concurrency: cfg.concurrency,
    backoff: { baseMs: 1000, maxMs: 5 * 60_000 },
    onError: (key: string, err: unknown, attempt: number, retryInMs: number) =>
      log.debug({ controller, key, attempt, retryInMs, err: err instanceof Error ? err.message : String(err) }, 'reconcile will be retried'),
    onDepth: (depth: number) => metrics.queueDepth.set({ controller }, depth),
  });
  // The informer says what to do once per outage at warn, then at debug.
  const restartLogger = (resource: string) => (err: unknown, delayMs: number, restart?: Restart) => {
    metrics.informerRestarts.inc({ resource });
    log[restart?.level ?? 'warn']({ resource, delayMs, err: toKubeError(err).message }, restart?.message ?? 'watch failed; restarting');
  };

  // Nothing is queued until every cache has synced: a reconcile that saw the
  // identities but not yet their TrustDomain would report a false failure.
  let synced = false;
  const identityKey = (o: AgentIdentity) => `${o.metadata.namespace}/${o.metadata.name}`;
  let identityQueue: WorkQueue;
  let trustQueue: WorkQueue;
  let signerQueue: WorkQueue | undefined;
  const addIdentity = (key: string) => { if (synced) identityQueue.add(key); };
  const addTrustDomain = (name: string) => { if (synced) trustQueue.add(name); };
  // Work that another object's change causes (a TrustDomain's bundle copies and rotation progress
  // after an identity, its Secret or a ledger entry moved; a policy's peers after an identity moved)
  // waits a moment and is coalesced: a burst of N identities makes one pass per second, not N passes.
  const touchTrustDomain = (name: string) => { if (synced) trustQueue.addAfter(name, COALESCE_MS); };
  const addRequest = (key: string) => { if (synced) signerQueue?.add(key); };
  const enqueueIdentitiesOf = (trustDomain: string) => {
    for (const i of identities.list()) if (trustDomainOf(i) === trustDomain) addIdentity(identityKey(i));
  };

  // Our own status writes come back as watch events; reacting to them would
  // defeat backoff and loop. Like controller-runtime's generation predicate,
  // only spec and metadata changes (and deletions, and resyncs) queue work.
  const seen = new Map<string, string>();
  const specChanged = (key: string, m: AgentIdentity['metadata']) => {
    const f = JSON.stringify([m.generation, m.annotations, m.labels, m.finalizers, m.deletionTimestamp]);
    if (seen.get(key) === f) return false;
    seen.set(key, f);
    return true;
  };
  // Policies name peers: any identity appearing, changing or leaving may change them.
  const enqueuePolicyHolders = () => { if (synced) for (const i of identities.list()) if (i.spec.policy) identityQueue.addAfter(identityKey(i), COALESCE_MS); };
  const onIdentity = (o: AgentIdentity) => { addIdentity(identityKey(o)); touchTrustDomain(trustDomainOf(o)); enqueuePolicyHolders(); };
  const identities = kube.identityInformer({
    resyncMs: cfg.resyncMs, onRestart: restartLogger('agentidentities'),
    onChange: (o) => { if (specChanged(`ai/${identityKey(o)}`, o.metadata)) onIdentity(o); },
    onDelete: (o) => { seen.delete(`ai/${identityKey(o)}`); onIdentity(o); },
    onResync: onIdentity,
  });
  const onTrustDomain = (o: TrustDomain) => { addTrustDomain(o.metadata.name!); enqueueIdentitiesOf(o.metadata.name!); };
  const trustDomains = kube.trustDomainInformer({
    resyncMs: cfg.resyncMs, onRestart: restartLogger('trustdomains'),
    onChange: (o) => { if (specChanged(`td/${o.metadata.name}`, o.metadata)) onTrustDomain(o); },
    onDelete: (o) => { seen.delete(`td/${o.metadata.name}`); onTrustDomain(o); },
    onResync: onTrustDomain,
  });
  const configMaps = kube.managedConfigMapInformer({
    resyncMs: cfg.resyncMs, onRestart: restartLogger('configmaps'),
    onChange: (c) => {
      const trustDomain = c.metadata.labels?.[LABEL_TRUST_DOMAIN];
      const identity = c.metadata.labels?.[LABEL_IDENTITY];
      if (identity) addIdentity(`${c.metadata.namespace}/${identity}`);
      if (!trustDomain) return;
      // A bundle copy at once; a policy.json only for the namespaces it shows identities in.
      if (identity) touchTrustDomain(trustDomain); else addTrustDomain(trustDomain);
      // The deny list's home copy changed: every policy.json of the domain embeds it.
      if (!identity && c.metadata.namespace === cfg.namespace) enqueueIdentitiesOf(trustDomain);
    },
  });
  const enqueueIdentitiesIn = (namespace: string, serviceAccount?: string) => {
    for (const i of identities.list(namespace)) if (!serviceAccount || i.spec.serviceAccountName === serviceAccount) addIdentity(identityKey(i));
  };
  // Namespaces decide where bundles are published, and their labels whether a TrustDomain admits their identities.
  const namespaces = kube.namespaceInformer({
    resyncMs: cfg.resyncMs, onRestart: restartLogger('namespaces'),
    onChange: (n) => { for (const t of trustDomains.list()) addTrustDomain(t.metadata.name!); enqueuePolicyHolders(); enqueueIdentitiesIn(n.metadata.name!); },
  });
  // An identity waits for its ServiceAccount (ServiceAccountNotFound) until it appears.
  const serviceAccounts = kube.serviceAccountInformer({
    resyncMs: cfg.resyncMs, onRestart: restartLogger('serviceaccounts'),
    onChange: (sa) => enqueueIdentitiesIn(sa.metadata.namespace!, sa.metadata.name),
    // Identities resync themselves.
    onResync: () => undefined,
  });
  const secrets = kube.managedSecretInformer({
    resyncMs: cfg.resyncMs, onRestart: restartLogger('secrets'),
    onChange: (s: Secret) => {
      const identity = s.metadata.labels?.[LABEL_IDENTITY];
      const trustDomain = s.metadata.labels?.[LABEL_TRUST_DOMAIN];
      // CA Secrets at once; identity Secrets whose bundle copy or root moved (rotation progress) coalesced.
      if (identity) addIdentity(`${s.metadata.namespace}/${identity}`);
      if (trustDomain) (identity ? touchTrustDomain : addTrustDomain)(trustDomain);
    },
  });

  // The signer's requests, which are also the ledger of pod certificates: a
  // ledger entry appearing or leaving moves its TrustDomain's rotation.
  const requestKey = (o: PodCertificateRequest) => `${o.metadata.namespace}/${o.metadata.name}`;
  const onRequest = (o: PodCertificateRequest) => {
    addRequest(requestKey(o));
    const trustDomain = o.metadata.labels?.[LABEL_TRUST_DOMAIN];
    if (trustDomain) touchTrustDomain(trustDomain);
  };
  // Without PodCertificateRequests (Kubernetes before 1.37, or RBAC without them) the signer is off
  // and everything else runs: an informer that can never sync would hold back every controller.
  const signing = await kube.servesPodCertificateRequests().then(
    (served) => { if (!served) log.warn('the API server does not serve PodCertificateRequests (Kubernetes 1.37+): the signer is off, and identities with delivery PodCertificate report PodCertificatesUnavailable'); return served; },
    (err) => { log.warn({ err: toKubeError(err).message }, 'cannot list PodCertificateRequests: the signer is off, and identities with delivery PodCertificate report PodCertificatesUnavailable; grant the chart\'s RBAC for podcertificaterequests'); return false; },
  );
  const requests = signing ? kube.podCertificateRequestInformer({
    resyncMs: cfg.resyncMs, onRestart: restartLogger('podcertificaterequests'),
    onChange: onRequest,
    onDelete: (o) => { const trustDomain = o.metadata.labels?.[LABEL_TRUST_DOMAIN]; if (trustDomain) touchTrustDomain(trustDomain); },
  }) : undefined;
  const podCertificates = requests ?? { list: () => [] };
  // Requests waiting on a TrustDomain that was still loading.
  const enqueuePendingRequests = () => { for (const r of podCertificates.list()) if (!answered(r)) addRequest(requestKey(r)); };

  identityQueue = new WorkQueue(identityReconciler({
    api: kube, identities, trustDomains, secrets, configMaps, namespaces, serviceAccounts, podCertificates, signing, operatorNamespace: cfg.namespace, store, events, metrics,
    log: log.child({ controller: 'agentidentity' }),
    minDurationMs: cfg.minDurationMs, now,
  }), queueOptions('agentidentity'));
  const clusterTrustBundles = await kube.servesClusterTrustBundles().catch((err) => {
    log.warn({ err: toKubeError(err).message }, 'cannot tell whether ClusterTrustBundles are served; not publishing them');
    return false;
  });
  trustQueue = new WorkQueue(trustReconciler({
    clusterTrustBundles,
    api: kube, trustDomains, secrets, secretList: secrets, podCertificates, identities, configMaps, namespaces, store, events, metrics,
    log: log.child({ controller: 'trustdomain' }), operatorNamespace: cfg.namespace,
    caDurationMs: cfg.caDurationMs, intermediateDurationMs: cfg.intermediateDurationMs, externalCAPollMs: cfg.externalCAPollMs,
    rotation: {
      rotateAtFraction: 2 / 3, intermediateRenewFraction: 2 / 3, propagationDelayMs: cfg.propagationDelayMs,
      reissueWindowMs: cfg.reissueWindowMs, graceMs: cfg.rotationGraceMs, pollMs: cfg.rotationPollMs,
    },
    now,
  }), queueOptions('trustdomain'));
  if (requests) {
    signerQueue = new WorkQueue(signerReconciler({
      api: kube, requests, identities, trustDomains, namespaces, store, events, metrics, log: log.child({ controller: 'podcertificaterequest' }), now,
    }), queueOptions('podcertificaterequest'));
  }
  store.onChange(enqueueIdentitiesOf);
  store.onChange(enqueuePendingRequests);

  const informers = [secrets, configMaps, namespaces, serviceAccounts, trustDomains, identities, ...(requests ? [requests] : [])];
  await Promise.all(informers.map((i) => i.start()));
  synced = true;
  for (const t of trustDomains.list()) addTrustDomain(t.metadata.name!);
  for (const i of identities.list()) addIdentity(identityKey(i));
  for (const r of podCertificates.list()) addRequest(requestKey(r));
  log.info('caches synced; reconciling');

  return {
    metrics, store,
    ready: () => informers.every((i) => i.hasSynced()),
    idle: async () => {
      // Coalesced work (COALESCE_MS) is part of what a change causes: wait for it too.
      for (let soon = 1; soon > 0;) {
        await trustQueue.drain(); await identityQueue.drain(); await signerQueue?.drain();
        soon = Math.max(trustQueue.dueWithin(COALESCE_MS), identityQueue.dueWithin(COALESCE_MS), signerQueue?.dueWithin(COALESCE_MS) ?? 0);
        if (soon > 0) await new Promise((r) => setTimeout(r, soon + 10));
      }
      await events.flush();
    },
    stop: async () => {
      await Promise.all(informers.map((i) => i.stop()));
      await Promise.all([identityQueue.shutdown(), trustQueue.shutdown(), signerQueue?.shutdown()]);
      await events.flush();
    },
  };
}
