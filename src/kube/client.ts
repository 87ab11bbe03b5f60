// The one API client: thin, typed REST calls for the operator's reconcilers,
// leader election, events, the webhook and the CLI. Every client of one
// kubeconfig shares one connection pool and one rate limit (transport.ts); a
// request is bounded by its client's timeout if it has one, and every
// rejection is normalised to a KubeError (errors.ts). Answers are the API
// server's JSON as is: no client-node, no ObjectSerializer (issue 12).
import type { CoreV1Event, KubernetesListObject, KubernetesObject, V1CustomResourceDefinition, V1Lease } from '@kubernetes/client-node';
import { GROUP, VERSION, AGENT_IDENTITY, TRUST_DOMAIN, CLUSTER_FEDERATED_TRUST_DOMAIN, MANAGED_SELECTOR, FIELD_MANAGER, SIGNER_NAME, LABEL_PROXY } from '../api/group.ts';
import type {
  AgentIdentity, AgentIdentityStatus, ClusterFederatedTrustDomain, ClusterFederatedTrustDomainStatus, ClusterTrustBundle, ConfigMap, Namespace, NetworkPolicy, ObjectMeta, Pod, PodCertificateRequest, Secret, ServiceAccount, TrustDomain, TrustDomainStatus,
} from '../api/types.ts';
import type { KubeConfig } from './config.ts';
import { call, ifExists, isNotFound } from './errors.ts';
import { Informer } from './informer.ts';
import { shareBundles } from './intern.ts';
import { existenceOnly } from './trim.ts';
import { send, sendText, type Query, type Request, type RequestOptions } from './transport.ts';

export { loadKubeConfig, NoClusterError, type KubeConfig } from './config.ts';

const AI_PATH = `/apis/${GROUP}/${VERSION}`;
const CERTS_PATH = '/apis/certificates.k8s.io/v1';
const NETWORKING_PATH = '/apis/networking.k8s.io/v1';
/** Only the operator's signer's requests are listed, watched or cached. */
const OUR_SIGNER = `spec.signerName=${SIGNER_NAME}`;
const MERGE_PATCH = 'application/merge-patch+json';
const JSON_PATCH = 'application/json-patch+json';
const METADATA_ONLY = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';
const WRITE = { fieldManager: FIELD_MANAGER };

/** A path under `base`, its segments escaped: /base[/namespaces/ns]/resource[/name][/sub]. */
function at(base: string, resource: string, namespace?: string, name?: string, sub?: string): string {
  const e = encodeURIComponent;
  return `${base}${namespace ? `/namespaces/${e(namespace)}` : ''}/${resource}${name ? `/${e(name)}` : ''}${sub ? `/${sub}` : ''}`;
}

export interface InformerHandlers<T> {
  onChange: (obj: T) => void;
  onDelete?: (obj: T) => void;
  onResync?: (obj: T) => void;
  onRestart?: (err: unknown, delayMs: number) => void;
  resyncMs: number;
}

export type WebhookConfigurationKind = 'MutatingWebhookConfiguration' | 'ValidatingWebhookConfiguration';

/** The part of a webhook configuration that is read: its webhooks' caBundle. */
export interface WebhookConfiguration {
  metadata: { name?: string; resourceVersion?: string };
  webhooks?: { name: string; clientConfig: { caBundle?: string; url?: string; service?: unknown } }[];
}

/** A JSON Patch `test`: guards an index-based write against a reordered list. */
export interface TestOp { op: 'test'; path: string; value: unknown }

/** An RFC 6902 operation; the API server checks the rest. */
export interface PatchOp { op: string; path: string; value?: unknown }

export interface KubeClientOptions {
  /** Bound on each request: the webhook answers the API server in bounded time. Default: none. */
  timeoutMs?: number;
  /**
   * false for admission lookups: made on the API server's behalf, at the rate
   * the cluster admits objects, bounded by the webhook's own in-flight gate and
   * timeout. Queued behind the operator's writes they would time out and fail
   * admission closed. Also false for the event writer, which paces itself
   * (events.ts). Default: true (paced by the process's --qps/--burst).
   */
  paced?: boolean;
}

export class KubeClient {
  private readonly kc: KubeConfig;
  /** Every call passes these: the client's timeout and whether the process's rate limit paces it. */
  private readonly opts: RequestOptions;

  constructor(kc: KubeConfig, options: KubeClientOptions = {}) {
    this.kc = kc;
    this.opts = options;
  }

  /** The API server's URL, as the kubeconfig names it. */
  get server(): string | undefined {
    return this.kc.getCurrentCluster()?.server;
  }

  private req<T>(r: Request): Promise<T> {
    return call(() => send<T>(this.kc, this.opts, r));
  }

  private get<T>(path: string, query?: Query): Promise<T> {
    return this.req({ method: 'GET', path, query });
  }

  private create<T>(path: string, body: unknown, query?: Query): Promise<T> {
    return this.req({ method: 'POST', path, body, query });
  }

  private replace<T>(path: string, body: unknown, query?: Query): Promise<T> {
    return this.req({ method: 'PUT', path, body, query });
  }

  private mergePatch<T>(path: string, body: unknown, query?: Query): Promise<T> {
    return this.req({ method: 'PATCH', path, body, query, contentType: MERGE_PATCH });
  }

  getVersion(): Promise<{ gitVersion: string }> {
    return this.get('/version');
  }

  // --- Secrets
  getSecret(namespace: string, name: string): Promise<Secret> {
    return this.get(at('/api/v1', 'secrets', namespace, name));
  }

  createSecret(secret: Secret): Promise<Secret> {
    return this.create(at('/api/v1', 'secrets', secret.metadata.namespace!), secret, WRITE);
  }

  /** Optimistic-concurrency replace: metadata.resourceVersion must be set, so a stale write fails with 409. */
  replaceSecret(secret: Secret): Promise<Secret> {
    return this.replace(at('/api/v1', 'secrets', secret.metadata.namespace!, secret.metadata.name!), secret, WRITE);
  }

  deleteSecret(namespace: string, name: string, uid?: string): Promise<unknown> {
    // The uid precondition makes sure we delete exactly the Secret we decided about.
    return this.req({ method: 'DELETE', path: at('/api/v1', 'secrets', namespace, name), body: uid ? { preconditions: { uid } } : undefined });
  }

  // --- ConfigMaps
  getConfigMap(namespace: string, name: string): Promise<ConfigMap> {
    return this.get(at('/api/v1', 'configmaps', namespace, name));
  }

  createConfigMap(cm: ConfigMap): Promise<ConfigMap> {
    return this.create(at('/api/v1', 'configmaps', cm.metadata.namespace!), cm, WRITE);
  }

  replaceConfigMap(cm: ConfigMap): Promise<ConfigMap> {
    return this.replace(at('/api/v1', 'configmaps', cm.metadata.namespace!, cm.metadata.name!), cm, WRITE);
  }

  async listConfigMaps(namespace: string, labelSelector: string): Promise<ConfigMap[]> {
    return (await this.get<{ items: ConfigMap[] }>(at('/api/v1', 'configmaps', namespace), { labelSelector })).items;
  }

  deleteConfigMap(namespace: string, name: string): Promise<unknown> {
    return this.req({ method: 'DELETE', path: at('/api/v1', 'configmaps', namespace, name) });
  }

  /**
   * A Secret's or ConfigMap's metadata only (PartialObjectMetadata): admission
   * asks who owns it, so it never needs, and so never receives, its data.
   */
  async getMetadata(kind: 'Secret' | 'ConfigMap', namespace: string, name: string): Promise<ObjectMeta> {
    const path = at('/api/v1', kind === 'Secret' ? 'secrets' : 'configmaps', namespace, name);
    return (await this.req<{ metadata: ObjectMeta }>({ method: 'GET', path, accept: METADATA_ONLY })).metadata;
  }

  // --- NetworkPolicies (the identity proxy's)
  getNetworkPolicy(namespace: string, name: string): Promise<NetworkPolicy> {
    return this.get(at(NETWORKING_PATH, 'networkpolicies', namespace, name));
  }

  createNetworkPolicy(np: NetworkPolicy): Promise<NetworkPolicy> {
    return this.create(at(NETWORKING_PATH, 'networkpolicies', np.metadata.namespace!), np, WRITE);
  }

  replaceNetworkPolicy(np: NetworkPolicy): Promise<NetworkPolicy> {
    return this.replace(at(NETWORKING_PATH, 'networkpolicies', np.metadata.namespace!, np.metadata.name!), np, WRITE);
  }

  deleteNetworkPolicy(namespace: string, name: string, uid?: string): Promise<unknown> {
    return this.req({ method: 'DELETE', path: at(NETWORKING_PATH, 'networkpolicies', namespace, name), body: uid ? { preconditions: { uid } } : undefined });
  }

  /** Whether the operator may list its NetworkPolicies; a refusal (403: RBAC from before spec.proxy) is thrown. */
  servesNetworkPolicies(): Promise<boolean> {
    return this.serves(at(NETWORKING_PATH, 'networkpolicies'), { labelSelector: MANAGED_SELECTOR, limit: 1 });
  }

  // --- Pods with the identity proxy (read only: the app-port check)
  /** Whether the operator may list the pods the webhook gave the identity proxy; a refusal (403: RBAC from before the app-port check) is thrown. */
  servesProxiedPods(): Promise<boolean> {
    return this.serves('/api/v1/pods', { labelSelector: LABEL_PROXY, limit: 1 });
  }

  // --- Namespaces
  getNamespace(name: string): Promise<Namespace> {
    return this.get(at('/api/v1', 'namespaces', undefined, name));
  }

  // --- Pods (the CLI's `audit`: which proxies, and their logs)
  /** In one namespace, or in all when namespace is undefined. */
  async listPods(namespace: string | undefined, labelSelector: string): Promise<Pod[]> {
    return (await this.get<{ items: Pod[] }>(at('/api/v1', 'pods', namespace), { labelSelector })).items;
  }

  /** A container's log as text (pods/log): the API server asks the pod's kubelet for it. */
  podLog(namespace: string, name: string, container: string, opts: { sinceSeconds?: number; tailLines?: number } = {}): Promise<string> {
    return call(() => sendText(this.kc, this.opts, { method: 'GET', path: at('/api/v1', 'pods', namespace, name, 'log'), query: { container, ...opts }, accept: '*/*' }));
  }

  // --- Events
  createEvent(event: CoreV1Event): Promise<unknown> {
    return this.create(at('/api/v1', 'events', event.metadata.namespace!), event);
  }

  // --- Leases
  getLease(namespace: string, name: string): Promise<V1Lease> {
    return this.get(at('/apis/coordination.k8s.io/v1', 'leases', namespace, name));
  }

  createLease(lease: V1Lease): Promise<V1Lease> {
    return this.create(at('/apis/coordination.k8s.io/v1', 'leases', lease.metadata!.namespace!), lease);
  }

  /** metadata.resourceVersion from the read makes this a compare-and-swap. */
  replaceLease(lease: V1Lease): Promise<V1Lease> {
    return this.replace(at('/apis/coordination.k8s.io/v1', 'leases', lease.metadata!.namespace!, lease.metadata!.name!), lease);
  }

  // --- CustomResourceDefinitions
  /** Whether a CRD is installed and Established (served). */
  async crdEstablished(name: string): Promise<boolean> {
    const crd = await this.get<V1CustomResourceDefinition>(at('/apis/apiextensions.k8s.io/v1', 'customresourcedefinitions', undefined, name));
    return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false;
  }

  // --- ClusterTrustBundle (certificates.k8s.io/v1)
  /** Whether the API server serves ClusterTrustBundles; they are optional. */
  servesClusterTrustBundles(): Promise<boolean> {
    return this.serves(at(CERTS_PATH, 'clustertrustbundles'), { limit: 1 });
  }

  /** Whether the API server serves PodCertificateRequests (Kubernetes 1.37+); a refusal (403) is thrown. */
  servesPodCertificateRequests(): Promise<boolean> {
    return this.serves(at(CERTS_PATH, 'podcertificaterequests'), { fieldSelector: OUR_SIGNER, limit: 1 });
  }

  /** Whether the ClusterFederatedTrustDomain CRD is installed (an upgrade may apply the new CRD after the operator); a refusal (403) is thrown. */
  servesFederatedTrustDomains(): Promise<boolean> {
    return this.serves(at(AI_PATH, CLUSTER_FEDERATED_TRUST_DOMAIN.plural), { limit: 1 });
  }

  private async serves(path: string, query: Query): Promise<boolean> {
    try {
      await this.get(path, query);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  getClusterTrustBundle(name: string): Promise<ClusterTrustBundle> {
    return this.get(at(CERTS_PATH, 'clustertrustbundles', undefined, name));
  }

  createClusterTrustBundle(body: ClusterTrustBundle): Promise<unknown> {
    return this.create(at(CERTS_PATH, 'clustertrustbundles'), body, WRITE);
  }

  replaceClusterTrustBundle(body: ClusterTrustBundle): Promise<unknown> {
    return this.replace(at(CERTS_PATH, 'clustertrustbundles', undefined, body.metadata.name!), body, WRITE);
  }

  // --- AgentIdentity
  getIdentity(namespace: string, name: string): Promise<AgentIdentity> {
    return this.get(at(AI_PATH, AGENT_IDENTITY.plural, namespace, name));
  }

  /** In one namespace, or in all when namespace is undefined. */
  async listIdentities(namespace?: string, labelSelector?: string, fieldSelector?: string): Promise<AgentIdentity[]> {
    return (await this.get<{ items: AgentIdentity[] }>(at(AI_PATH, AGENT_IDENTITY.plural, namespace), { labelSelector, fieldSelector })).items;
  }

  /** Merge-patches metadata (finalizers); resourceVersion makes it optimistic. */
  patchIdentityMetadata(namespace: string, name: string, metadata: { finalizers: string[]; resourceVersion?: string }): Promise<AgentIdentity> {
    return this.mergePatch(at(AI_PATH, AGENT_IDENTITY.plural, namespace, name), { metadata }, WRITE);
  }

  /** A person's request (the CLI's): no operator field manager, so the API server names the writer from the User-Agent. */
  annotateIdentity(namespace: string, name: string, annotations: Record<string, string>): Promise<unknown> {
    return this.mergePatch(at(AI_PATH, AGENT_IDENTITY.plural, namespace, name), { metadata: { annotations } });
  }

  patchIdentityStatus(namespace: string, name: string, status: AgentIdentityStatus): Promise<AgentIdentity> {
    return this.mergePatch(at(AI_PATH, AGENT_IDENTITY.plural, namespace, name, 'status'), { status }, WRITE);
  }

  // --- TrustDomain
  getTrustDomain(name: string): Promise<TrustDomain> {
    return this.get(at(AI_PATH, TRUST_DOMAIN.plural, undefined, name));
  }

  async listTrustDomains(): Promise<TrustDomain[]> {
    return (await this.get<{ items: TrustDomain[] }>(at(AI_PATH, TRUST_DOMAIN.plural))).items;
  }

  /** As annotateIdentity. */
  annotateTrustDomain(name: string, annotations: Record<string, string>): Promise<unknown> {
    return this.mergePatch(at(AI_PATH, TRUST_DOMAIN.plural, undefined, name), { metadata: { annotations } });
  }

  patchTrustDomainStatus(name: string, status: TrustDomainStatus): Promise<TrustDomain> {
    return this.mergePatch(at(AI_PATH, TRUST_DOMAIN.plural, undefined, name, 'status'), { status }, WRITE);
  }

  // --- ClusterFederatedTrustDomain
  patchFederatedTrustDomainStatus(name: string, status: ClusterFederatedTrustDomainStatus): Promise<ClusterFederatedTrustDomain> {
    return this.mergePatch(at(AI_PATH, CLUSTER_FEDERATED_TRUST_DOMAIN.plural, undefined, name, 'status'), { status }, WRITE);
  }

  // --- PodCertificateRequest (certificates.k8s.io/v1)
  /**
   * Replaces the request's metadata (the signer's finalizer, labels and
   * annotations); the spec is immutable. The resourceVersion makes it a
   * compare-and-swap, and PUT keeps the RBAC to `update`.
   */
  replacePodCertificateRequest(pcr: PodCertificateRequest): Promise<PodCertificateRequest> {
    return this.replace(at(CERTS_PATH, 'podcertificaterequests', pcr.metadata.namespace!, pcr.metadata.name!), pcr, WRITE);
  }

  /** Answers the request through /status: a 409 means someone (another replica) answered first, or the cache was stale. */
  replacePodCertificateRequestStatus(pcr: PodCertificateRequest): Promise<PodCertificateRequest> {
    return this.replace(at(CERTS_PATH, 'podcertificaterequests', pcr.metadata.namespace!, pcr.metadata.name!, 'status'), pcr, WRITE);
  }

  // --- Webhook configurations: the chart creates them; only their caBundle is written

  /** Undefined when the configuration is not installed (404). */
  getWebhookConfiguration(kind: WebhookConfigurationKind, name: string): Promise<WebhookConfiguration | undefined> {
    return ifExists(() => this.get<WebhookConfiguration>(webhookPath(kind, name)));
  }

  patchWebhookConfiguration(kind: WebhookConfigurationKind, name: string, ops: PatchOp[]): Promise<unknown> {
    return this.req({ method: 'PATCH', path: webhookPath(kind, name), body: ops, query: WRITE, contentType: JSON_PATCH });
  }

  // --- Informers
  identityInformer(h: InformerHandlers<AgentIdentity>): Informer<AgentIdentity & KubernetesObject> {
    return this.informer('agentidentities', at(AI_PATH, AGENT_IDENTITY.plural), h);
  }

  trustDomainInformer(h: InformerHandlers<TrustDomain>): Informer<TrustDomain & KubernetesObject> {
    return this.informer('trustdomains', at(AI_PATH, TRUST_DOMAIN.plural), h);
  }

  federatedTrustDomainInformer(h: InformerHandlers<ClusterFederatedTrustDomain>): Informer<ClusterFederatedTrustDomain & KubernetesObject> {
    return this.informer('clusterfederatedtrustdomains', at(AI_PATH, CLUSTER_FEDERATED_TRUST_DOMAIN.plural), h);
  }

  managedConfigMapInformer(h: InformerHandlers<ConfigMap>): Informer<ConfigMap & KubernetesObject> {
    return this.informer('configmaps', '/api/v1/configmaps', h, MANAGED_SELECTOR);
  }

  namespaceInformer(h: InformerHandlers<Namespace>): Informer<Namespace & KubernetesObject> {
    return this.informer('namespaces', '/api/v1/namespaces', h);
  }

  /** Every ServiceAccount of the cluster, kept only as far as saying it exists (trim.ts): the identity reconciler asks nothing else. */
  serviceAccountInformer(h: InformerHandlers<ServiceAccount>): Informer<ServiceAccount & KubernetesObject> {
    return this.informer('serviceaccounts', '/api/v1/serviceaccounts', { ...h, transform: existenceOnly });
  }

  /**
   * Only Secrets carrying the operator's label are ever listed, watched or cached, and
   * their trust bundle (ca.crt, the same in every identity Secret) is held once, not once per Secret.
   */
  managedSecretInformer(h: InformerHandlers<Secret>): Informer<Secret & KubernetesObject> {
    return this.informer('secrets', '/api/v1/secrets', { ...h, transform: shareBundles() }, MANAGED_SELECTOR);
  }

  /** Only NetworkPolicies carrying the operator's label are listed, watched or cached. */
  managedNetworkPolicyInformer(h: InformerHandlers<NetworkPolicy>): Informer<NetworkPolicy & KubernetesObject> {
    return this.informer('networkpolicies', at(NETWORKING_PATH, 'networkpolicies'), h, MANAGED_SELECTOR);
  }

  /** Only pods carrying the label the webhook sets on those it gives the identity proxy are listed, watched or cached. */
  proxiedPodInformer(h: InformerHandlers<Pod>): Informer<Pod & KubernetesObject> {
    return this.informer('pods', '/api/v1/pods', h, LABEL_PROXY);
  }

  /** Only requests naming the operator's signer (a field selector the API server supports) are listed, watched or cached. */
  podCertificateRequestInformer(h: InformerHandlers<PodCertificateRequest>): Informer<PodCertificateRequest & KubernetesObject> {
    return this.informer('podcertificaterequests', at(CERTS_PATH, 'podcertificaterequests'), h, undefined, OUR_SIGNER);
  }

  /** The list is a request (paced); the watch that follows is not (watch.ts). */
  private informer<T>(name: string, path: string, h: InformerHandlers<T> & { transform?: (obj: T) => void }, labelSelector?: string, fieldSelector?: string): Informer<T & KubernetesObject> {
    return new Informer(this.kc, {
      name, path, labelSelector, fieldSelector,
      list: () => this.get<KubernetesListObject<T & KubernetesObject>>(path, { labelSelector, fieldSelector }),
      ...h,
    });
  }
}

function webhookPath(kind: WebhookConfigurationKind, name: string): string {
  const resource = kind === 'MutatingWebhookConfiguration' ? 'mutatingwebhookconfigurations' : 'validatingwebhookconfigurations';
  return at('/apis/admissionregistration.k8s.io/v1', resource, undefined, name);
}
