// The identity's policy.json: its inbound policy resolved against the
// identities and namespaces that exist now, plus the deny list. Kept in a
// ConfigMap mounted next to the certificate. Pure.
import { API_VERSION, AGENT_IDENTITY, LABEL_MANAGED_BY, MANAGED_BY_VALUE, LABEL_IDENTITY, LABEL_TRUST_DOMAIN, BUNDLE_DENYLIST } from '../api/group.ts';
import { policyConfigMapName, trustDomainOf } from '../api/defaults.ts';
import { FILES } from '../api/documents.ts';
import type { AgentIdentity, ConfigMap, Namespace } from '../api/types.ts';
import { compilePolicy, encodePolicyDocument, peersResolved } from '../policy/compile.ts';
import { parseDenyList } from '../trust/denylist.ts';

export interface PolicyInputs {
  spiffeID: string;
  trustDomain: string;
  /** Every identity the rules may name, with the SPIFFE ID it has or will have. */
  peers: Array<{ identity: AgentIdentity; spiffeID?: string; clusterDomain?: string }>;
  namespaces: readonly Namespace[];
  /** The trust domain's bundle ConfigMap in the operator namespace: the deny list's home. */
  denyListHome?: ConfigMap;
}

export function desiredPolicyConfigMap(identity: AgentIdentity, i: PolicyInputs, existing?: ConfigMap): { configMap: ConfigMap; peers?: number } {
  const doc = compilePolicy({
    identity: { namespace: identity.metadata.namespace!, name: identity.metadata.name!, spiffeID: i.spiffeID, trustDomain: i.trustDomain, policy: identity.spec.policy, proxied: identity.spec.proxy !== undefined },
    peers: i.peers.map((p) => ({
      namespace: p.identity.metadata.namespace!, name: p.identity.metadata.name!, labels: p.identity.metadata.labels ?? {}, spiffeID: p.spiffeID,
      dnsNames: p.identity.spec.dnsNames, clusterDomain: p.clusterDomain,
    })),
    namespaces: i.namespaces.map((n) => ({ name: n.metadata.name!, labels: n.metadata.labels ?? {} })),
    denyList: parseDenyList(i.trustDomain, i.denyListHome?.data?.[BUNDLE_DENYLIST]).entries,
  });
  return {
    configMap: {
      apiVersion: 'v1', kind: 'ConfigMap',
      metadata: {
        name: policyConfigMapName(identity.metadata.name!), namespace: identity.metadata.namespace,
        resourceVersion: existing?.metadata.resourceVersion,
        labels: { ...existing?.metadata.labels, [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, [LABEL_IDENTITY]: identity.metadata.name!, [LABEL_TRUST_DOMAIN]: trustDomainOf(identity) },
        ownerReferences: [{ apiVersion: API_VERSION, kind: AGENT_IDENTITY.kind, name: identity.metadata.name!, uid: identity.metadata.uid!, controller: true, blockOwnerDeletion: true }],
      },
      data: { [FILES.policy]: encodePolicyDocument(doc) },
    },
    peers: identity.spec.policy?.allow ? peersResolved(doc) : undefined,
  };
}
