// Where the trust bundle is published and what each copy holds. Pure.
import { API_VERSION, BUNDLE_DENYLIST, LABEL_FEDERATED_TRUST_DOMAIN, LABEL_MANAGED_BY, MANAGED_BY_VALUE, LABEL_TRUST_DOMAIN, SECRET_BUNDLE, TRUST_DOMAIN } from '../api/group.ts';
import { FILES, type FederatedBundlesDocument } from '../api/documents.ts';
import { FEDERATED_ROOTS_KEY, FEDERATED_TRUST_DOMAIN_KEY } from '../api/names.ts';
import { Bundle } from '../pki/index.ts';
import { bundleConfigMapName } from '../api/defaults.ts';
import { controllerOf, isControlledBy } from '../api/owner.ts';
import type { ClusterTrustBundle, ConfigMap, Namespace, OwnerReference, TrustDomain } from '../api/types.ts';
import { matchesSelector } from '../policy/selector.ts';

/**
 * Every namespace with an agent of this trust domain (identity-namespaces.ts),
 * every namespace the selector picks, and the operator's own (its copy is the
 * deny list's home).
 */
export function bundleNamespaces(trustDomain: TrustDomain, withIdentities: Iterable<string>, namespaces: readonly Namespace[], operatorNamespace: string): Set<string> {
  const out = new Set<string>([operatorNamespace, ...withIdentities]);
  const selector = trustDomain.spec.bundle?.namespaceSelector;
  if (selector) for (const ns of namespaces) if (matchesSelector(selector, ns.metadata.labels ?? {})) out.add(ns.metadata.name!);
  return out;
}

/**
 * A copy of the bundle. Copies in tenant namespaces name their TrustDomain as
 * controller (a cluster-scoped owner of a namespaced object is allowed), so a
 * squatted one can be told apart. The home copy in the operator namespace has
 * no owner: it holds the deny list, which must outlive a deleted TrustDomain.
 */
export function desiredBundleConfigMap(
  trustDomainObject: string, namespace: string, bundlePem: string, denyListJson: string, existing?: ConfigMap, owner?: TrustDomain, federatedBundlesJson?: string,
): ConfigMap {
  return {
    apiVersion: 'v1', kind: 'ConfigMap',
    metadata: {
      name: bundleConfigMapName(trustDomainObject), namespace,
      resourceVersion: existing?.metadata.resourceVersion,
      labels: { ...existing?.metadata.labels, [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, [LABEL_TRUST_DOMAIN]: trustDomainObject },
      annotations: existing?.metadata.annotations,
      ...(owner ? { ownerReferences: [trustDomainOwner(owner)] } : {}),
    },
    data: { [SECRET_BUNDLE]: bundlePem, [BUNDLE_DENYLIST]: denyListJson, ...(federatedBundlesJson === undefined ? {} : { [FILES.federatedBundles]: federatedBundlesJson }) },
  };
}

/**
 * federated-bundles.json for a TrustDomain (FederatedBundlesDocument): the
 * Roots of each trust domain in spec.federatesWith that a
 * ClusterFederatedTrustDomain fetched, read from the fetcher's ConfigMaps
 * federated-bundle-* in the operator's namespace. Undefined when the
 * TrustDomain federates with nobody, so its copies stay as they were. A
 * partner listed but not fetched yet is left out until its first accepted
 * fetch; its own trust domain never appears (the SDK would refuse the file).
 * One copy per namespace carries it, so a partner's rotation costs one write
 * per namespace, as a local one does, and no Leaf is reissued.
 */
export function federatedBundlesDocument(trustDomain: TrustDomain, configMaps: readonly ConfigMap[], operatorNamespace: string): string | undefined {
  const wanted = new Set(trustDomain.spec.federatesWith ?? []);
  if (wanted.size === 0) return undefined;
  wanted.delete(trustDomain.spec.trustDomain);
  const pems = new Map<string, string[]>();
  for (const cm of configMaps) {
    if (cm.metadata.namespace !== operatorNamespace || !cm.metadata.labels?.[LABEL_FEDERATED_TRUST_DOMAIN]) continue;
    const td = cm.data?.[FEDERATED_TRUST_DOMAIN_KEY];
    const pem = cm.data?.[FEDERATED_ROOTS_KEY];
    if (td && pem && wanted.has(td)) pems.set(td, [...(pems.get(td) ?? []), pem]);
  }
  const bundles: Record<string, string> = {};
  for (const td of [...pems.keys()].sort()) {
    try {
      // Canonical (sorted, deduplicated): two ClusterFederatedTrustDomains for one partner give one Bundle.
      bundles[td] = Bundle.fromPem(td, pems.get(td)!.join('\n')).toPem();
    } catch {
      // The fetcher writes only Roots it parsed: a copy damaged by hand is left out, not delivered.
    }
  }
  const doc: FederatedBundlesDocument = { version: 1, bundles };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

function trustDomainOwner(trustDomain: TrustDomain): OwnerReference {
  // No blockOwnerDeletion: that would need finalizer rights on TrustDomains, and nothing waits on a copy.
  return { apiVersion: API_VERSION, kind: TRUST_DOMAIN.kind, name: trustDomain.metadata.name!, uid: trustDomain.metadata.uid!, controller: true };
}

/**
 * Whether a bundle copy in a tenant namespace is the operator's to write:
 * controlled by this TrustDomain, or a copy from before copies had owners
 * that already holds exactly this bundle (adopting it changes nothing it says).
 */
export function isOwnBundleCopy(cm: ConfigMap, trustDomain: TrustDomain, bundlePem: string): boolean {
  return isControlledBy(cm, trustDomain.metadata.uid) || (!controllerOf(cm) && cm.data?.[SECRET_BUNDLE] === bundlePem);
}

export function bundleConflictMessage(configMap: string, namespaces: readonly string[]): string {
  const shown = namespaces.slice(0, 10).join(', ') + (namespaces.length > 10 ? ` and ${namespaces.length - 10} more` : '');
  return `ConfigMap ${configMap} in ${shown} is not this TrustDomain's (it has no controller owner reference to it), so the bundle is not published there and its agents would read that one as their bundle: delete it`;
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
    || Object.entries(want.metadata.labels ?? {}).some(([k, v]) => have.metadata.labels?.[k] !== v)
    || controllerOf(have)?.uid !== controllerOf(want)?.uid;
}
