// Where the trust bundle is published and what each copy holds. Pure.
import { BUNDLE_CONFIGMAP_PREFIX, BUNDLE_DENYLIST, LABEL_MANAGED_BY, MANAGED_BY_VALUE, LABEL_TRUST_DOMAIN, SECRET_BUNDLE } from '../api/group.ts';
import { trustDomainOf } from '../api/defaults.ts';
import type { AgentIdentity, ClusterTrustBundle, ConfigMap, Namespace, TrustDomain } from '../api/types.ts';
import { matchesSelector } from '../policy/selector.ts';

export function bundleConfigMapName(trustDomainObject: string): string {
  return `${BUNDLE_CONFIGMAP_PREFIX}${trustDomainObject}`;
}

/**
 * Every namespace with an agent of this trust domain, every namespace the
 * selector picks, and the operator's own (its copy is the deny list's home).
 */
export function bundleNamespaces(td: TrustDomain, identities: readonly AgentIdentity[], namespaces: readonly Namespace[], operatorNamespace: string): Set<string> {
  const out = new Set<string>([operatorNamespace]);
  for (const i of identities) if (trustDomainOf(i) === td.metadata.name && !i.metadata.deletionTimestamp) out.add(i.metadata.namespace!);
  const selector = td.spec.bundle?.namespaceSelector;
  if (selector) for (const ns of namespaces) if (matchesSelector(selector, ns.metadata.labels ?? {})) out.add(ns.metadata.name!);
  return out;
}

export function desiredBundleConfigMap(trustDomainObject: string, namespace: string, bundlePem: string, denyListJson: string, existing?: ConfigMap): ConfigMap {
  return {
    apiVersion: 'v1', kind: 'ConfigMap',
    metadata: {
      name: bundleConfigMapName(trustDomainObject), namespace,
      resourceVersion: existing?.metadata.resourceVersion,
      labels: { ...existing?.metadata.labels, [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, [LABEL_TRUST_DOMAIN]: trustDomainObject },
      annotations: existing?.metadata.annotations,
    },
    data: { [SECRET_BUNDLE]: bundlePem, [BUNDLE_DENYLIST]: denyListJson },
  };
}

/** Cluster-scoped, so one per TrustDomain; unsigned (no signerName), as a public bundle. */
export function clusterTrustBundleName(trustDomainObject: string): string {
  return `agentidentity-${trustDomainObject}`;
}

export function desiredClusterTrustBundle(trustDomainObject: string, bundlePem: string, existing?: ClusterTrustBundle): ClusterTrustBundle {
  return {
    apiVersion: 'certificates.k8s.io/v1', kind: 'ClusterTrustBundle',
    metadata: {
      name: clusterTrustBundleName(trustDomainObject), resourceVersion: existing?.metadata.resourceVersion,
      labels: { ...existing?.metadata.labels, [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, [LABEL_TRUST_DOMAIN]: trustDomainObject },
    },
    spec: { trustBundle: bundlePem },
  };
}

export function configMapDiffers(have: ConfigMap, want: ConfigMap): boolean {
  const hd = have.data ?? {};
  const wd = want.data ?? {};
  return Object.keys(hd).length !== Object.keys(wd).length
    || Object.entries(wd).some(([k, v]) => hd[k] !== v)
    || Object.entries(want.metadata.labels ?? {}).some(([k, v]) => have.metadata.labels?.[k] !== v);
}
