// The one API client: thin, typed wrappers over client-node for the operator's
// reconcilers, leader election, events, the webhook and the CLI. Every client
// of one kubeconfig shares one connection pool and one rate limit
// (transport.ts); a request is bounded by its client's timeout if it has one,
// and every rejection is normalised to a KubeError (errors.ts).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  AdmissionregistrationV1Api, ApiextensionsV1Api, CoordinationV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, VersionApi,
  findHomeDir, setHeaderOptions,
  type ConfigurationOptions, type CoreV1Event, type KubernetesListObject, type KubernetesObject, type V1ConfigMap, type V1Lease, type V1Secret,
} from '@kubernetes/client-node';
import { GROUP, VERSION, AGENT_IDENTITY, TRUST_DOMAIN, MANAGED_SELECTOR, FIELD_MANAGER, SIGNER_NAME } from '../api/group.ts';
import type {
  AgentIdentity, AgentIdentityStatus, ClusterTrustBundle, ConfigMap, Namespace, ObjectMeta, PodCertificateRequest, Secret, ServiceAccount, TrustDomain, TrustDomainStatus,
} from '../api/types.ts';
import { call, ifExists, isNotFound } from './errors.ts';
import { Informer } from './informer.ts';
import { requestOptions } from './transport.ts';

export type { KubeConfig };

const AI = { group: GROUP, version: VERSION, plural: AGENT_IDENTITY.plural };
const TD = { group: GROUP, version: VERSION, plural: TRUST_DOMAIN.plural };
const CTB = { group: 'certificates.k8s.io', version: 'v1', plural: 'clustertrustbundles' };
const PCR = { group: 'certificates.k8s.io', version: 'v1', plural: 'podcertificaterequests' };
/** Only the operator's signer's requests are listed, watched or cached. */
const OUR_SIGNER = `spec.signerName=${SIGNER_NAME}`;

/** Neither a kubeconfig nor a pod's service account: there is no cluster to talk to. */
export class NoClusterError extends Error {
  constructor() {
    super('no kubeconfig found: set KUBECONFIG or --kubeconfig, or run in a cluster');
    this.name = 'NoClusterError';
  }
}

/**
 * The cluster to talk to: the given kubeconfig file, else $KUBECONFIG or
 * ~/.kube/config, else in-cluster. client-node alone would fall back to
 * http://localhost:8080 (or https://undefined:undefined) and fail later with
 * an error that names neither.
 */
export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  const home = findHomeDir();
  if (path) kc.loadFromFile(path);
  else if (process.env.KUBECONFIG || (home && existsSync(join(home, '.kube', 'config')))) kc.loadFromDefault();
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else throw new NoClusterError();
  return kc;
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
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly admission: AdmissionregistrationV1Api;
  private readonly coordination: CoordinationV1Api;
  private readonly extensions: ApiextensionsV1Api;
  private readonly version: VersionApi;
  /** Every call passes these: the shared connection pool, the rate limit and the timeout. */
  private readonly opts: ConfigurationOptions;
  private readonly mergePatch: ConfigurationOptions;

  constructor(kc: KubeConfig, options: KubeClientOptions = {}) {
    this.kc = kc;
    this.core = kc.makeApiClient(CoreV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.admission = kc.makeApiClient(AdmissionregistrationV1Api);
    this.coordination = kc.makeApiClient(CoordinationV1Api);
    this.extensions = kc.makeApiClient(ApiextensionsV1Api);
    this.version = kc.makeApiClient(VersionApi);
    this.opts = requestOptions(kc, options);
    this.mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch, this.opts);
  }

  /** The API server's URL, as the kubeconfig names it. */
  get server(): string | undefined {
    return this.kc.getCurrentCluster()?.server;
  }

  getVersion(): Promise<{ gitVersion: string }> {
    return call(() => this.version.getCode(undefined, this.opts));
  }

  // --- Secrets
  getSecret(namespace: string, name: string): Promise<Secret> {
    return call(() => this.core.readNamespacedSecret({ namespace, name }, this.opts) as Promise<Secret>);
  }

  createSecret(secret: Secret): Promise<Secret> {
    const namespace = secret.metadata.namespace!;
    return call(() => this.core.createNamespacedSecret({ namespace, body: secret as V1Secret, fieldManager: FIELD_MANAGER }, this.opts) as Promise<Secret>);
  }

  /** Optimistic-concurrency replace: metadata.resourceVersion must be set, so a stale write fails with 409. */
  replaceSecret(secret: Secret): Promise<Secret> {
    const { namespace, name } = secret.metadata as { namespace: string; name: string };
    return call(() => this.core.replaceNamespacedSecret({ namespace, name, body: secret as V1Secret, fieldManager: FIELD_MANAGER }, this.opts) as Promise<Secret>);
  }

  deleteSecret(namespace: string, name: string, uid?: string): Promise<unknown> {
    // The uid precondition makes sure we delete exactly the Secret we decided about.
    return call(() => this.core.deleteNamespacedSecret({ namespace, name, body: uid ? { preconditions: { uid } } : undefined }, this.opts));
  }

  // --- ConfigMaps
  getConfigMap(namespace: string, name: string): Promise<ConfigMap> {
    return call(() => this.core.readNamespacedConfigMap({ namespace, name }, this.opts) as Promise<ConfigMap>);
  }

  createConfigMap(cm: ConfigMap): Promise<ConfigMap> {
    return call(() => this.core.createNamespacedConfigMap({ namespace: cm.metadata.namespace!, body: cm as V1ConfigMap, fieldManager: FIELD_MANAGER }, this.opts) as Promise<ConfigMap>);
  }

  replaceConfigMap(cm: ConfigMap): Promise<ConfigMap> {
    return call(() => this.core.replaceNamespacedConfigMap({ namespace: cm.metadata.namespace!, name: cm.metadata.name!, body: cm as V1ConfigMap, fieldManager: FIELD_MANAGER }, this.opts) as Promise<ConfigMap>);
  }

  deleteConfigMap(namespace: string, name: string): Promise<unknown> {
    return call(() => this.core.deleteNamespacedConfigMap({ namespace, name }, this.opts));
  }

  /**
   * A Secret's or ConfigMap's metadata only (PartialObjectMetadata): admission
   * asks who owns it, so it never needs, and so never receives, its data.
   */
  getMetadata(kind: 'Secret' | 'ConfigMap', namespace: string, name: string): Promise<ObjectMeta> {
    const opts = setHeaderOptions('Accept', 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1', this.opts);
    const read = kind === 'Secret' ? () => this.core.readNamespacedSecret({ namespace, name }, opts) : () => this.core.readNamespacedConfigMap({ namespace, name }, opts);
    return call(async () => ((await read()) as { metadata: ObjectMeta }).metadata);
  }

  // --- Namespaces
  getNamespace(name: string): Promise<Namespace> {
    return call(() => this.core.readNamespace({ name }, this.opts) as Promise<Namespace>);
  }

  // --- Events
  createEvent(event: CoreV1Event): Promise<unknown> {
    return call(() => this.core.createNamespacedEvent({ namespace: event.metadata.namespace!, body: event }, this.opts));
  }

  // --- Leases
  getLease(namespace: string, name: string): Promise<V1Lease> {
    return call(() => this.coordination.readNamespacedLease({ namespace, name }, this.opts));
  }

  createLease(lease: V1Lease): Promise<V1Lease> {
    return call(() => this.coordination.createNamespacedLease({ namespace: lease.metadata!.namespace!, body: lease }, this.opts));
  }

  /** metadata.resourceVersion from the read makes this a compare-and-swap. */
  replaceLease(lease: V1Lease): Promise<V1Lease> {
    return call(() => this.coordination.replaceNamespacedLease({ namespace: lease.metadata!.namespace!, name: lease.metadata!.name!, body: lease }, this.opts));
  }

  // --- CustomResourceDefinitions
  /** Whether a CRD is installed and Established (served). */
  async crdEstablished(name: string): Promise<boolean> {
    const crd = await call(() => this.extensions.readCustomResourceDefinition({ name }, this.opts));
    return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false;
  }

  // --- ClusterTrustBundle (certificates.k8s.io/v1; client-node has no typed v1 client yet)
  /** Whether the API server serves ClusterTrustBundles; they are optional. */
  servesClusterTrustBundles(): Promise<boolean> {
    return this.serves(() => this.custom.listClusterCustomObject({ ...CTB, limit: 1 }, this.opts));
  }

  /** Whether the API server serves PodCertificateRequests (Kubernetes 1.37+); a refusal (403) is thrown. */
  servesPodCertificateRequests(): Promise<boolean> {
    return this.serves(() => this.custom.listClusterCustomObject({ ...PCR, fieldSelector: OUR_SIGNER, limit: 1 }, this.opts));
  }

  private async serves(list: () => Promise<unknown>): Promise<boolean> {
    try {
      await call(list);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  getClusterTrustBundle(name: string): Promise<ClusterTrustBundle> {
    return call(() => this.custom.getClusterCustomObject({ ...CTB, name }, this.opts) as Promise<ClusterTrustBundle>);
  }

  createClusterTrustBundle(body: ClusterTrustBundle): Promise<unknown> {
    return call(() => this.custom.createClusterCustomObject({ ...CTB, body, fieldManager: FIELD_MANAGER }, this.opts));
  }

  replaceClusterTrustBundle(body: ClusterTrustBundle): Promise<unknown> {
    return call(() => this.custom.replaceClusterCustomObject({ ...CTB, name: body.metadata.name!, body, fieldManager: FIELD_MANAGER }, this.opts));
  }

  // --- AgentIdentity
  getIdentity(namespace: string, name: string): Promise<AgentIdentity> {
    return call(() => this.custom.getNamespacedCustomObject({ ...AI, namespace, name }, this.opts) as Promise<AgentIdentity>);
  }

  /** In one namespace, or in all when namespace is undefined. */
  async listIdentities(namespace?: string, labelSelector?: string): Promise<AgentIdentity[]> {
    const list = namespace
      ? await call(() => this.custom.listNamespacedCustomObject({ ...AI, namespace, labelSelector }, this.opts))
      : await call(() => this.custom.listClusterCustomObject({ ...AI, labelSelector }, this.opts));
    return (list as { items: AgentIdentity[] }).items;
  }

  /** Merge-patches metadata (finalizers); resourceVersion makes it optimistic. */
  patchIdentityMetadata(namespace: string, name: string, metadata: { finalizers: string[]; resourceVersion?: string }): Promise<AgentIdentity> {
    return call(() => this.custom.patchNamespacedCustomObject({ ...AI, namespace, name, body: { metadata }, fieldManager: FIELD_MANAGER }, this.mergePatch) as Promise<AgentIdentity>);
  }

  /** A person's request (the CLI's): no operator field manager, so the API server names the writer from the User-Agent. */
  annotateIdentity(namespace: string, name: string, annotations: Record<string, string>): Promise<unknown> {
    return call(() => this.custom.patchNamespacedCustomObject({ ...AI, namespace, name, body: { metadata: { annotations } } }, this.mergePatch));
  }

  patchIdentityStatus(namespace: string, name: string, status: AgentIdentityStatus): Promise<AgentIdentity> {
    return call(() => this.custom.patchNamespacedCustomObjectStatus({ ...AI, namespace, name, body: { status }, fieldManager: FIELD_MANAGER }, this.mergePatch) as Promise<AgentIdentity>);
  }

  // --- TrustDomain
  getTrustDomain(name: string): Promise<TrustDomain> {
    return call(() => this.custom.getClusterCustomObject({ ...TD, name }, this.opts) as Promise<TrustDomain>);
  }

  async listTrustDomains(): Promise<TrustDomain[]> {
    return ((await call(() => this.custom.listClusterCustomObject(TD, this.opts))) as { items: TrustDomain[] }).items;
  }

  /** As annotateIdentity. */
  annotateTrustDomain(name: string, annotations: Record<string, string>): Promise<unknown> {
    return call(() => this.custom.patchClusterCustomObject({ ...TD, name, body: { metadata: { annotations } } }, this.mergePatch));
  }

  patchTrustDomainStatus(name: string, status: TrustDomainStatus): Promise<TrustDomain> {
    return call(() => this.custom.patchClusterCustomObjectStatus({ ...TD, name, body: { status }, fieldManager: FIELD_MANAGER }, this.mergePatch) as Promise<TrustDomain>);
  }

  // --- PodCertificateRequest (certificates.k8s.io/v1; client-node has no typed v1 client yet)
  /**
   * Replaces the request's metadata (the signer's finalizer, labels and
   * annotations); the spec is immutable. The resourceVersion makes it a
   * compare-and-swap, and PUT keeps the RBAC to `update`.
   */
  replacePodCertificateRequest(pcr: PodCertificateRequest): Promise<PodCertificateRequest> {
    const { namespace, name } = pcr.metadata as { namespace: string; name: string };
    return call(() => this.custom.replaceNamespacedCustomObject({ ...PCR, namespace, name, body: pcr, fieldManager: FIELD_MANAGER }, this.opts) as Promise<PodCertificateRequest>);
  }

  /** Answers the request through /status: a 409 means someone (another replica) answered first, or the cache was stale. */
  replacePodCertificateRequestStatus(pcr: PodCertificateRequest): Promise<PodCertificateRequest> {
    const { namespace, name } = pcr.metadata as { namespace: string; name: string };
    return call(() => this.custom.replaceNamespacedCustomObjectStatus({ ...PCR, namespace, name, body: pcr, fieldManager: FIELD_MANAGER }, this.opts) as Promise<PodCertificateRequest>);
  }

  // --- Webhook configurations: the chart creates them; only their caBundle is written

  /** Undefined when the configuration is not installed (404). */
  getWebhookConfiguration(kind: WebhookConfigurationKind, name: string): Promise<WebhookConfiguration | undefined> {
    return ifExists(() => (kind === 'MutatingWebhookConfiguration'
      ? this.admission.readMutatingWebhookConfiguration({ name }, this.opts)
      : this.admission.readValidatingWebhookConfiguration({ name }, this.opts)) as Promise<WebhookConfiguration>);
  }

  patchWebhookConfiguration(kind: WebhookConfigurationKind, name: string, ops: PatchOp[]): Promise<unknown> {
    const opts = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch, this.opts);
    const body = ops as object[];
    return call(() => (kind === 'MutatingWebhookConfiguration'
      ? this.admission.patchMutatingWebhookConfiguration({ name, body, fieldManager: FIELD_MANAGER }, opts)
      : this.admission.patchValidatingWebhookConfiguration({ name, body, fieldManager: FIELD_MANAGER }, opts)));
  }

  // --- Informers
  identityInformer(h: InformerHandlers<AgentIdentity>): Informer<AgentIdentity & KubernetesObject> {
    return this.informer('agentidentities', `/apis/${GROUP}/${VERSION}/${AGENT_IDENTITY.plural}`, () => this.custom.listClusterCustomObject(AI, this.opts), h);
  }

  trustDomainInformer(h: InformerHandlers<TrustDomain>): Informer<TrustDomain & KubernetesObject> {
    return this.informer('trustdomains', `/apis/${GROUP}/${VERSION}/${TRUST_DOMAIN.plural}`, () => this.custom.listClusterCustomObject(TD, this.opts), h);
  }

  managedConfigMapInformer(h: InformerHandlers<ConfigMap>): Informer<ConfigMap & KubernetesObject> {
    return this.informer('configmaps', '/api/v1/configmaps', () => this.core.listConfigMapForAllNamespaces({ labelSelector: MANAGED_SELECTOR }, this.opts), h, MANAGED_SELECTOR);
  }

  namespaceInformer(h: InformerHandlers<Namespace>): Informer<Namespace & KubernetesObject> {
    return this.informer('namespaces', '/api/v1/namespaces', () => this.core.listNamespace(undefined, this.opts), h);
  }

  /** The identity reconciler asks only whether one exists; a ServiceAccount is little more than its metadata, so the whole object costs about what a metadata-only watch would. */
  serviceAccountInformer(h: InformerHandlers<ServiceAccount>): Informer<ServiceAccount & KubernetesObject> {
    return this.informer('serviceaccounts', '/api/v1/serviceaccounts', () => this.core.listServiceAccountForAllNamespaces(undefined, this.opts), h);
  }

  /** Only Secrets carrying the operator's label are ever listed, watched or cached. */
  managedSecretInformer(h: InformerHandlers<Secret>): Informer<Secret & KubernetesObject> {
    return this.informer('secrets', '/api/v1/secrets', () => this.core.listSecretForAllNamespaces({ labelSelector: MANAGED_SELECTOR }, this.opts), h, MANAGED_SELECTOR);
  }

  /** Only requests naming the operator's signer (a field selector the API server supports) are listed, watched or cached. */
  podCertificateRequestInformer(h: InformerHandlers<PodCertificateRequest>): Informer<PodCertificateRequest & KubernetesObject> {
    return this.informer('podcertificaterequests', `/apis/${PCR.group}/${PCR.version}/${PCR.plural}`,
      () => this.custom.listClusterCustomObject({ ...PCR, fieldSelector: OUR_SIGNER }, this.opts), h, undefined, OUR_SIGNER);
  }

  private informer<T>(name: string, path: string, list: () => Promise<unknown>, h: InformerHandlers<T>, labelSelector?: string, fieldSelector?: string): Informer<T & KubernetesObject> {
    return new Informer(this.kc, {
      name, path, labelSelector, fieldSelector,
      list: () => call(list) as Promise<KubernetesListObject<T & KubernetesObject>>,
      ...h,
    });
  }
}
