// The controllers the leader runs, each one declaration (controller/controller.ts):
//   an AgentIdentity, its Secret, policy ConfigMap or proxy NetworkPolicy, its TrustDomain, the deny
//   list, its Namespace or its ServiceAccount changes  → reconcile the identity;
//   a TrustDomain, its CA Secret or bundle copies, a Namespace changes
//                                                      → reconcile the trust domain;
//   an identity, its Secret or a pod certificate moves → the same, coalesced;
//   a pod with the identity proxy, or its identity's spec changes
//                                                      → probe its app port on the pod IP;
//   a probe's finding changes                          → reconcile the identity, coalesced;
//   a PodCertificateRequest for our signer, or a TrustDomain's signing state
//                                                      → answer the request;
//   and, given the webhook's names, its certificates and caBundle.
import type { Logger } from 'pino';
import { LABEL_IDENTITY, LABEL_TRUST_DOMAIN } from './api/group.ts';
import type { AgentIdentity, ClusterFederatedTrustDomain, ConfigMap, Namespace, NetworkPolicy, Pod, PodCertificateRequest, Secret, ServiceAccount, TrustDomain } from './api/types.ts';
import { KubeClient, type KubeConfig } from './kube/client.ts';
import { EventRecorder } from './kube/events.ts';
import { limitRequests, observeRetries } from './kube/transport.ts';
import { toKubeError } from './kube/errors.ts';
import { byLabel, changesOf, controller, labelsChanged, specOrMetadataChanged } from './controller/controller.ts';
import { ControllerManager } from './controller/manager.ts';
import { Metrics } from './controller/metrics.ts';
import { identityReconciler } from './identity/reconciler.ts';
import { AppPortResults, appPortProber, podsOfIdentity, PROBE_CONCURRENCY } from './identity/app-port-probe.ts';
import { bundleOrDenyListChanged, identitiesInNamespace, identitiesOfDenyList, identitiesOfServiceAccount, identitiesOfTrustDomain, identityIndexes } from './identity/watches.ts';
import { PolicyHolders } from './identity/policy-holders.ts';
import { trustReconciler } from './trust/reconciler.ts';
import { everyTrustDomain, federatingTrustDomains } from './trust/watches.ts';
import { IdentityNamespaces } from './trust/identity-namespaces.ts';
import { TrustStore } from './trust/store.ts';
import { signerReconciler } from './signer/reconciler.ts';
import { pendingRequests } from './signer/watches.ts';
import { ledgerOf } from './signer/ledger.ts';
import { webhookCertificatesController, type WebhookCertificates, type WebhookCertificatesOptions } from './webhook-certificates/controller.ts';
import type { Config } from './config.ts';
import { bundlePublisher, PUBLISHER_CONTROLLER } from './federation/publisher.ts';
import { bundleFetcher, FETCHER_CONTROLLER } from './federation/fetcher.ts';
import { LABEL_BUNDLE_ENDPOINT } from './federation/names.ts';
import { LABEL_FEDERATED_TRUST_DOMAIN } from './api/group.ts';

export interface Operator {
  metrics: Metrics;
  store: TrustStore;
  /** The webhook's certificates, when the operator was given its names. */
  webhookCertificates?: WebhookCertificates;
  ready(): boolean;
  /** Resolves when every queue is idle, coalesced work included (tests). */
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
  /** Keep the admission webhook's CA, serving certificate and caBundle current (leader only: main.ts). */
  webhookCertificates?: Omit<WebhookCertificatesOptions, 'kubeConfig' | 'logger'>;
}

/**
 * How long work caused by another object's change waits to be coalesced: a
 * burst of N identities makes one TrustDomain pass per second, not N passes.
 */
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
  const manager = new ControllerManager({ log, metrics, resyncMs: cfg.resyncMs, concurrency: cfg.concurrency, backoff: { baseMs: 1000, maxMs: 5 * 60_000 } });

  // One list-watch per kind, shared by every controller below.
  const identities = manager.watch<AgentIdentity>('agentidentities', (h) => kube.identityInformer(h));
  const trustDomains = manager.watch<TrustDomain>('trustdomains', (h) => kube.trustDomainInformer(h));
  const secrets = manager.watch<Secret>('secrets', (h) => kube.managedSecretInformer(h));
  const configMaps = manager.watch<ConfigMap>('configmaps', (h) => kube.managedConfigMapInformer(h));
  const namespaces = manager.watch<Namespace>('namespaces', (h) => kube.namespaceInformer(h));
  const serviceAccounts = manager.watch<ServiceAccount>('serviceaccounts', (h) => kube.serviceAccountInformer(h));
  // Without PodCertificateRequests (Kubernetes before 1.37, or RBAC without them) the signer is off
  // and everything else runs: an informer that can never sync would hold back every controller.
  const signing = await kube.servesPodCertificateRequests().then(
    (served) => { if (!served) log.warn('the API server does not serve PodCertificateRequests (Kubernetes 1.37+): the signer is off, and identities with delivery PodCertificate report PodCertificatesUnavailable'); return served; },
    (err) => { log.warn({ err: toKubeError(err).message }, 'cannot list PodCertificateRequests: the signer is off, and identities with delivery PodCertificate report PodCertificatesUnavailable; grant the chart\'s RBAC for podcertificaterequests'); return false; },
  );
  // The signer's requests are also the ledger of pod certificates (signer/ledger.ts).
  const requests = signing ? manager.watch<PodCertificateRequest>('podcertificaterequests', (h) => kube.podCertificateRequestInformer(h)) : undefined;
  const podCertificates = ledgerOf(requests ?? { list: () => [] });
  const clusterTrustBundles = await kube.servesClusterTrustBundles().catch((err) => {
    log.warn({ err: toKubeError(err).message }, 'cannot tell whether ClusterTrustBundles are served; not publishing them');
    return false;
  });
  // Likewise for the proxy's NetworkPolicies: RBAC from before spec.proxy must not stop the rest.
  const netpol = await kube.servesNetworkPolicies().catch((err) => {
    log.warn({ err: toKubeError(err).message }, 'cannot list NetworkPolicies: identities with spec.proxy report NetworkPolicyUnavailable; grant the chart\'s RBAC for networkpolicies');
    return false;
  });
  const networkPolicies = netpol ? manager.watch<NetworkPolicy>('networkpolicies', (h) => kube.managedNetworkPolicyInformer(h)) : undefined;
  // And for the pods with the identity proxy (the app-port check): without them, identities with spec.proxy report AppPortUnchecked.
  const proxiedPods = await kube.servesProxiedPods().catch((err) => {
    log.warn({ err: toKubeError(err).message }, 'cannot list pods: identities with spec.proxy report AppPortUnchecked; grant the chart\'s RBAC for pods');
    return false;
  });
  const pods = proxiedPods ? manager.watch<Pod>('pods', (h) => kube.proxiedPodInformer(h)) : undefined;
  const appPorts = pods ? new AppPortResults() : undefined;
  const signingState = changesOf(store);
  const indexes = identityIndexes(identities);
  const holders = new PolicyHolders(identities, namespaces);
  const identityNamespaces = new IdentityNamespaces(identities);

  const identity = identityReconciler({
    api: kube, identities, claims: indexes.bySecret, trustDomains, secrets, configMaps, namespaces, serviceAccounts, podCertificates, signing, operatorNamespace: cfg.namespace, store, events, metrics,
    ...(networkPolicies ? { networkPolicies } : {}),
    ...(appPorts ? { appPorts } : {}),
    log: log.child({ controller: 'agentidentity' }), minDurationMs: cfg.minDurationMs, now,
  });
  manager.add(controller('agentidentity')
    .for(identities, { predicate: specOrMetadataChanged })
    .owns(secrets, byLabel(LABEL_IDENTITY))
    .owns(configMaps, byLabel(LABEL_IDENTITY))
    .owns(networkPolicies, byLabel(LABEL_IDENTITY))
    .watches(trustDomains, identitiesOfTrustDomain(indexes), { predicate: specOrMetadataChanged })
    .watches(signingState, identitiesOfTrustDomain(indexes))
    .watches(configMaps, identitiesOfDenyList(indexes, cfg.namespace), { predicate: bundleOrDenyListChanged })
    // Tenancy reads a namespace's labels alone; the identities' own resync is the safety net.
    .watches(namespaces, identitiesInNamespace(identities), { predicate: labelsChanged, resync: false })
    .watches(serviceAccounts, identitiesOfServiceAccount(indexes), { resync: false })
    // Only the policy holders whose policy.json an identity or namespace change can alter (policy-holders.ts).
    .watches(holders, (key) => [key], { coalesced: true })
    .watches(appPorts && changesOf(appPorts), (key) => [key], { coalesced: true })
    .coalesce(COALESCE_MS)
    .run(identity.reconcile, identity.errorPolicy));

  if (pods && appPorts) {
    // Its own queue: a probe waits out its timeout without holding up an identity's reconcile.
    manager.add(controller('appport')
      .for(pods)
      .watches(identities, podsOfIdentity(appPorts), { predicate: specOrMetadataChanged })
      .queue({ concurrency: PROBE_CONCURRENCY })
      .run(appPortProber({ pods, identities, results: appPorts, events, metrics })));
  }

  manager.add(controller('trustdomain')
    .for(trustDomains, { predicate: specOrMetadataChanged })
    .owns(secrets, byLabel(LABEL_TRUST_DOMAIN, { cluster: true, without: LABEL_IDENTITY }))
    .owns(configMaps, byLabel(LABEL_TRUST_DOMAIN, { cluster: true, without: LABEL_IDENTITY }))
    .watches(namespaces, everyTrustDomain(trustDomains))
    // Bundle copies follow the namespaces that hold identities; rotation progress their Secrets and pod certificates: coalesced.
    .watches(identityNamespaces, (name) => [name], { coalesced: true })
    .watches(secrets, byLabel(LABEL_TRUST_DOMAIN, { cluster: true, with: LABEL_IDENTITY }), { coalesced: true })
    .watches(configMaps, byLabel(LABEL_TRUST_DOMAIN, { cluster: true, with: LABEL_IDENTITY }), { coalesced: true })
    .watches(requests, byLabel(LABEL_TRUST_DOMAIN, { cluster: true }), { coalesced: true })
    // Partners' bundles (federation) go into the same copies, as federated-bundles.json.
    .watches(configMaps, federatingTrustDomains(trustDomains), { coalesced: true })
    .coalesce(COALESCE_MS)
    .run(trustReconciler({
      clusterTrustBundles,
      api: kube, trustDomains, secrets, secretList: secrets, podCertificates, identityNamespaces, configMaps, namespaces, store, events, metrics,
      log: log.child({ controller: 'trustdomain' }), operatorNamespace: cfg.namespace,
      caDurationMs: cfg.caDurationMs, intermediateDurationMs: cfg.intermediateDurationMs, externalCAPollMs: cfg.externalCAPollMs,
      rotation: {
        rotateAtFraction: 2 / 3, intermediateRenewFraction: 2 / 3, propagationDelayMs: cfg.propagationDelayMs,
        reissueWindowMs: cfg.reissueWindowMs, graceMs: cfg.rotationGraceMs, pollMs: cfg.rotationPollMs,
      },
      now,
    })));

  if (requests) {
    const signer = signerReconciler({ api: kube, requests, identities, trustDomains, namespaces, store, events, metrics, log: log.child({ controller: 'podcertificaterequest' }), now });
    manager.add(controller('podcertificaterequest')
      .for(requests)
      .watches(signingState, pendingRequests(requests))
      .run(signer.reconcile, signer.errorPolicy));
  }

  // Federation (docs/federation.md): the leader records what every replica's bundle endpoint serves, and keeps partners' bundles.
  const publisher = bundlePublisher({ api: kube, trustDomains, secrets, configMaps, store, events, metrics, now, operatorNamespace: cfg.namespace, log: log.child({ controller: PUBLISHER_CONTROLLER }) });
  manager.add(controller(PUBLISHER_CONTROLLER)
    .for(trustDomains, { predicate: specOrMetadataChanged })
    .owns(configMaps, byLabel(LABEL_BUNDLE_ENDPOINT, { cluster: true }))
    .owns(secrets, byLabel(LABEL_BUNDLE_ENDPOINT, { cluster: true }))
    .watches(signingState, (name) => [name])
    .run(publisher.reconcile, publisher.errorPolicy));
  const federating = await kube.servesFederatedTrustDomains().catch((err) => {
    log.warn({ err: toKubeError(err).message }, 'cannot list ClusterFederatedTrustDomains: partners\' bundles are not fetched; grant the chart\'s RBAC for clusterfederatedtrustdomains');
    return false;
  });
  if (!federating) log.warn('the ClusterFederatedTrustDomain CRD is not installed: partners\' bundles are not fetched until it is applied and the operator restarted');
  else {
    const federatedTrustDomains = manager.watch<ClusterFederatedTrustDomain>('clusterfederatedtrustdomains', (h) => kube.federatedTrustDomainInformer(h));
    const fetcher = bundleFetcher({
      api: kube, federatedTrustDomains, trustDomains, configMaps, events, metrics, now, operatorNamespace: cfg.namespace,
      bounds: { minMs: cfg.federationRefreshMinMs, maxMs: cfg.federationRefreshMaxMs }, log: log.child({ controller: FETCHER_CONTROLLER }),
    });
    manager.add(controller(FETCHER_CONTROLLER)
      .for(federatedTrustDomains, { predicate: specOrMetadataChanged })
      .owns(configMaps, byLabel(LABEL_FEDERATED_TRUST_DOMAIN, { cluster: true }))
      // A local TrustDomain of the same name blocks a partner's bundle (and its removal unblocks it).
      .watches(trustDomains, () => federatedTrustDomains.list().map((o) => o.metadata.name!), { predicate: specOrMetadataChanged })
      .run(fetcher.reconcile, fetcher.errorPolicy));
  }

  const webhookCertificates = opts.webhookCertificates
    && webhookCertificatesController({ ...opts.webhookCertificates, kubeConfig: kc, logger: log, now });
  if (webhookCertificates) manager.add(webhookCertificates.declaration);

  await manager.start();
  return {
    metrics, store,
    ...(webhookCertificates ? { webhookCertificates: webhookCertificates.handle } : {}),
    ready: () => manager.ready(),
    idle: async () => {
      await manager.idle();
      await events.flush();
    },
    stop: async () => {
      await manager.stop();
      webhookCertificates?.handle.stop();
      await events.flush();
    },
  };
}
