// The only code that talks to the API server. Thin, typed wrappers over
// client-node; every rejection is normalised to a KubeError (errors.ts).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, findHomeDir, setHeaderOptions,
  type KubernetesListObject, type KubernetesObject, type V1Secret, type V1ConfigMap,
} from '@kubernetes/client-node';
import { GROUP, VERSION, AGENT_IDENTITY, TRUST_DOMAIN, MANAGED_SELECTOR, FIELD_MANAGER } from '../api/group.ts';
import type { AgentIdentity, AgentIdentityStatus, ClusterTrustBundle, ConfigMap, Namespace, Secret, ServiceAccount, TrustDomain, TrustDomainStatus } from '../api/types.ts';
import { call, isNotFound } from './errors.ts';
import { Informer } from './informer.ts';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const CTB = { group: 'certificates.k8s.io', version: 'v1', plural: 'clustertrustbundles' };

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

export class KubeClient {
  readonly kc: KubeConfig;
  readonly core: CoreV1Api;
  readonly custom: CustomObjectsApi;

  constructor(kc: KubeConfig) {
    this.kc = kc;
    this.core = kc.makeApiClient(CoreV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
  }

  // --- Secrets
  getSecret(namespace: string, name: string): Promise<Secret> {
    return call(() => this.core.readNamespacedSecret({ namespace, name }) as Promise<Secret>);
  }

  createSecret(secret: Secret): Promise<Secret> {
    const namespace = secret.metadata.namespace!;
    return call(() => this.core.createNamespacedSecret({ namespace, body: secret as V1Secret, fieldManager: FIELD_MANAGER }) as Promise<Secret>);
  }

  /** Optimistic-concurrency replace: metadata.resourceVersion must be set, so a stale write fails with 409. */
  replaceSecret(secret: Secret): Promise<Secret> {
    const { namespace, name } = secret.metadata as { namespace: string; name: string };
    return call(() => this.core.replaceNamespacedSecret({ namespace, name, body: secret as V1Secret, fieldManager: FIELD_MANAGER }) as Promise<Secret>);
  }

  deleteSecret(namespace: string, name: string, uid?: string): Promise<unknown> {
    // The uid precondition makes sure we delete exactly the Secret we decided about.
    return call(() => this.core.deleteNamespacedSecret({ namespace, name, body: uid ? { preconditions: { uid } } : undefined }));
  }

  // --- ConfigMaps
  getConfigMap(namespace: string, name: string): Promise<ConfigMap> {
    return call(() => this.core.readNamespacedConfigMap({ namespace, name }) as Promise<ConfigMap>);
  }

  createConfigMap(cm: ConfigMap): Promise<ConfigMap> {
    return call(() => this.core.createNamespacedConfigMap({ namespace: cm.metadata.namespace!, body: cm as V1ConfigMap, fieldManager: FIELD_MANAGER }) as Promise<ConfigMap>);
  }

  replaceConfigMap(cm: ConfigMap): Promise<ConfigMap> {
    return call(() => this.core.replaceNamespacedConfigMap({ namespace: cm.metadata.namespace!, name: cm.metadata.name!, body: cm as V1ConfigMap, fieldManager: FIELD_MANAGER }) as Promise<ConfigMap>);
  }

  deleteConfigMap(namespace: string, name: string): Promise<unknown> {
    return call(() => this.core.deleteNamespacedConfigMap({ namespace, name }));
  }

  // --- ClusterTrustBundle (certificates.k8s.io/v1; client-node has no typed v1 client yet)
  /** Whether the API server serves ClusterTrustBundles; they are optional. */
  async servesClusterTrustBundles(): Promise<boolean> {
    try {
      await call(() => this.custom.listClusterCustomObject({ ...CTB, limit: 1 }));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  getClusterTrustBundle(name: string): Promise<ClusterTrustBundle> {
    return call(() => this.custom.getClusterCustomObject({ ...CTB, name }) as Promise<ClusterTrustBundle>);
  }

  createClusterTrustBundle(body: ClusterTrustBundle): Promise<unknown> {
    return call(() => this.custom.createClusterCustomObject({ ...CTB, body, fieldManager: FIELD_MANAGER }));
  }

  replaceClusterTrustBundle(body: ClusterTrustBundle): Promise<unknown> {
    return call(() => this.custom.replaceClusterCustomObject({ ...CTB, name: body.metadata.name!, body, fieldManager: FIELD_MANAGER }));
  }

  // --- AgentIdentity
  /** Merge-patches metadata (finalizers); resourceVersion makes it optimistic. */
  patchIdentityMetadata(namespace: string, name: string, metadata: { finalizers: string[]; resourceVersion?: string }): Promise<AgentIdentity> {
    return call(() => this.custom.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, plural: AGENT_IDENTITY.plural, namespace, name, body: { metadata }, fieldManager: FIELD_MANAGER },
      mergePatch,
    ) as Promise<AgentIdentity>);
  }

  patchIdentityStatus(namespace: string, name: string, status: AgentIdentityStatus): Promise<AgentIdentity> {
    return call(() => this.custom.patchNamespacedCustomObjectStatus(
      { group: GROUP, version: VERSION, plural: AGENT_IDENTITY.plural, namespace, name, body: { status }, fieldManager: FIELD_MANAGER },
      mergePatch,
    ) as Promise<AgentIdentity>);
  }

  // --- TrustDomain
  patchTrustDomainStatus(name: string, status: TrustDomainStatus): Promise<TrustDomain> {
    return call(() => this.custom.patchClusterCustomObjectStatus(
      { group: GROUP, version: VERSION, plural: TRUST_DOMAIN.plural, name, body: { status }, fieldManager: FIELD_MANAGER },
      mergePatch,
    ) as Promise<TrustDomain>);
  }

  // --- Informers
  identityInformer(h: InformerHandlers<AgentIdentity>): Informer<AgentIdentity & KubernetesObject> {
    return new Informer(this.kc, {
      name: 'agentidentities', path: `/apis/${GROUP}/${VERSION}/${AGENT_IDENTITY.plural}`,
      list: () => call(() => this.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: AGENT_IDENTITY.plural })) as Promise<KubernetesListObject<AgentIdentity & KubernetesObject>>,
      ...h,
    });
  }

  trustDomainInformer(h: InformerHandlers<TrustDomain>): Informer<TrustDomain & KubernetesObject> {
    return new Informer(this.kc, {
      name: 'trustdomains', path: `/apis/${GROUP}/${VERSION}/${TRUST_DOMAIN.plural}`,
      list: () => call(() => this.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: TRUST_DOMAIN.plural })) as Promise<KubernetesListObject<TrustDomain & KubernetesObject>>,
      ...h,
    });
  }

  managedConfigMapInformer(h: InformerHandlers<ConfigMap>): Informer<ConfigMap & KubernetesObject> {
    return new Informer(this.kc, {
      name: 'configmaps', path: '/api/v1/configmaps', labelSelector: MANAGED_SELECTOR,
      list: () => call(() => this.core.listConfigMapForAllNamespaces({ labelSelector: MANAGED_SELECTOR })) as Promise<KubernetesListObject<ConfigMap & KubernetesObject>>,
      ...h,
    });
  }

  namespaceInformer(h: InformerHandlers<Namespace>): Informer<Namespace & KubernetesObject> {
    return new Informer(this.kc, {
      name: 'namespaces', path: '/api/v1/namespaces',
      list: () => call(() => this.core.listNamespace()) as Promise<KubernetesListObject<Namespace & KubernetesObject>>,
      ...h,
    });
  }

  /** The identity reconciler asks only whether one exists; a ServiceAccount is little more than its metadata, so the whole object costs about what a metadata-only watch would. */
  serviceAccountInformer(h: InformerHandlers<ServiceAccount>): Informer<ServiceAccount & KubernetesObject> {
    return new Informer(this.kc, {
      name: 'serviceaccounts', path: '/api/v1/serviceaccounts',
      list: () => call(() => this.core.listServiceAccountForAllNamespaces()) as Promise<KubernetesListObject<ServiceAccount & KubernetesObject>>,
      ...h,
    });
  }

  /** Only Secrets carrying the operator's label are ever listed, watched or cached. */
  managedSecretInformer(h: InformerHandlers<Secret>): Informer<Secret & KubernetesObject> {
    return new Informer(this.kc, {
      name: 'secrets', path: '/api/v1/secrets', labelSelector: MANAGED_SELECTOR,
      list: () => call(() => this.core.listSecretForAllNamespaces({ labelSelector: MANAGED_SELECTOR })) as Promise<KubernetesListObject<Secret & KubernetesObject>>,
      ...h,
    });
  }
}
