// The identity's policy.json: its inbound policy resolved against the
// identities and namespaces that exist now, plus the deny list. Kept in the
// identity Secret next to the certificate (Secret delivery: one write for
// both), or in a ConfigMap where there is no Secret (pod certificates). Pure.
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

/** The identity's policy.json, and how many peers its allow rules resolve to (undefined without allow rules). */
export interface DesiredPolicy { json: string; peers?: number }

export function desiredPolicy(identity: AgentIdentity, i: PolicyInputs): DesiredPolicy {
  const doc = compilePolicy({
    identity: { namespace: identity.metadata.namespace!, name: identity.metadata.name!, spiffeID: i.spiffeID, trustDomain: i.trustDomain, policy: identity.spec.policy, proxied: identity.spec.proxy !== undefined },
    peers: i.peers.map((p) => ({
      namespace: p.identity.metadata.namespace!, name: p.identity.metadata.name!, labels: p.identity.metadata.labels ?? {}, spiffeID: p.spiffeID,
      dnsNames: p.identity.spec.dnsNames, clusterDomain: p.clusterDomain,
    })),
    namespaces: i.namespaces.map((n) => ({ name: n.metadata.name!, labels: n.metadata.labels ?? {} })),
    denyList: parseDenyList(i.trustDomain, i.denyListHome?.data?.[BUNDLE_DENYLIST]).entries,
  });
  return { json: encodePolicyDocument(doc), peers: identity.spec.policy?.allow ? peersResolved(doc) : undefined };
}

/** The ConfigMap that carries policy.json where no identity Secret does (pod-certificate delivery). */
export function desiredPolicyConfigMap(identity: AgentIdentity, policyJson: string, existing?: ConfigMap): ConfigMap {
  return {
    apiVersion: 'v1', kind: 'ConfigMap',
    metadata: {
      name: policyConfigMapName(identity.metadata.name!), namespace: identity.metadata.namespace,
      resourceVersion: existing?.metadata.resourceVersion,
      labels: { ...existing?.metadata.labels, [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, [LABEL_IDENTITY]: identity.metadata.name!, [LABEL_TRUST_DOMAIN]: trustDomainOf(identity) },
      ownerReferences: [{ apiVersion: API_VERSION, kind: AGENT_IDENTITY.kind, name: identity.metadata.name!, uid: identity.metadata.uid!, controller: true, blockOwnerDeletion: true }],
    },
    data: { [FILES.policy]: policyJson },
  };
}
