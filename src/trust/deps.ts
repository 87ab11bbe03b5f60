// What the trust reconciler and its parts (CA sources, publishing, status)
// read and write through; injected, so tests run them over in-memory fakes.
import { API_VERSION, TRUST_DOMAIN } from '../api/group.ts';
import type { ClusterTrustBundle, ConfigMap, Namespace, Secret, TrustDomain, TrustDomainStatus } from '../api/types.ts';
import type { ReconcileContext } from '../controller/context.ts';
import type { EventTarget } from '../kube/events.ts';
import type { RotationConfig } from '../ca/rotation.ts';
import type { TrustStore } from './store.ts';

export interface TrustReconcilerDeps extends ReconcileContext {
  api: {
    getSecret(namespace: string, name: string): Promise<Secret>;
    createSecret(secret: Secret): Promise<Secret>;
    replaceSecret(secret: Secret): Promise<Secret>;
    getConfigMap(namespace: string, name: string): Promise<ConfigMap>;
    createConfigMap(cm: ConfigMap): Promise<ConfigMap>;
    replaceConfigMap(cm: ConfigMap): Promise<ConfigMap>;
    deleteConfigMap(namespace: string, name: string): Promise<unknown>;
    patchTrustDomainStatus(name: string, status: TrustDomainStatus): Promise<unknown>;
    getClusterTrustBundle(name: string): Promise<ClusterTrustBundle>;
    createClusterTrustBundle(body: ClusterTrustBundle): Promise<unknown>;
    replaceClusterTrustBundle(body: ClusterTrustBundle): Promise<unknown>;
  };
  /** Where each TrustDomain's signer and bundle are handed to the identity reconciler. */
  store: TrustStore;
  /** Publish a ClusterTrustBundle too (when the API server serves them). */
  clusterTrustBundles: boolean;
  /** The namespaces holding identities of a TrustDomain (identity-namespaces.ts): a pass never scans the identities. */
  identityNamespaces: { of(trustDomain: string): Iterable<string> };
  /** Read by name; listed only in the operator's namespace (the partners' bundles the fetcher keeps there). */
  configMaps: { get(name: string, namespace?: string): ConfigMap | undefined; list(namespace: string): readonly ConfigMap[] };
  namespaces: { list(): readonly Namespace[] };
  secretList: { list(): readonly Secret[] };
  /** The signer's ledger of pod certificates that may still be valid (signer/ledger.ts ledgerOf). */
  podCertificates: { live(now: Date, match: (c: { trustDomain: string; rootFingerprint?: string }) => boolean): ReadonlyArray<{ rootFingerprint?: string }> };
  operatorNamespace: string;
  caDurationMs: number;
  intermediateDurationMs: number;
  rotation: RotationConfig;
  /** How often an external CA Secret (not watched: it carries no operator label) is re-read. */
  externalCAPollMs: number;
}

export const CONTROLLER = 'trustdomain';

export function trustDomainRef(trustDomain: TrustDomain): EventTarget {
  return { apiVersion: API_VERSION, kind: TRUST_DOMAIN.kind, metadata: trustDomain.metadata };
}

/** Every cached ConfigMap of that name, one look-up per namespace: a pass costs namespaces, not every cached ConfigMap (each identity has a policy one). */
export function bundleCopies(d: Pick<TrustReconcilerDeps, 'configMaps' | 'namespaces'>, name: string): ConfigMap[] {
  return d.namespaces.list().flatMap((ns) => d.configMaps.get(name, ns.metadata.name) ?? []);
}
