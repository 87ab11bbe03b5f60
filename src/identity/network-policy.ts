// spec.proxy's "no way around the proxy", as a NetworkPolicy: the identity's
// pods (the ones the webhook injected: they carry agentidentity.dev/agent=<name>,
// and only pods of its ServiceAccount may) admit ingress on the proxy's port
// and on nothing else, so the agent's plaintext port is out of other pods'
// reach even if the agent binds it on the pod IP. Egress is not restricted:
// the proxy decides whom the agent may call. The proxy's metrics port
// (--proxy-metrics-port) is not admitted either: the operator does not know
// where the cluster's Prometheus runs, so the admin's own policy admits it. Pure.
import { API_VERSION, AGENT_IDENTITY, LABEL_AGENT, LABEL_IDENTITY, LABEL_MANAGED_BY, MANAGED_BY_VALUE } from '../api/group.ts';
import { proxyNetworkPolicyName } from '../api/defaults.ts';
import { controllerOf } from '../api/owner.ts';
import type { AgentIdentity, NetworkPolicy } from '../api/types.ts';
import { jsonEqual } from '../controller/equal.ts';

/** The NetworkPolicy of an identity with spec.proxy; `existing` lends its resourceVersion and extra labels. */
export function desiredNetworkPolicy(identity: AgentIdentity, existing?: NetworkPolicy): NetworkPolicy {
  const name = identity.metadata.name!;
  return {
    apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy',
    metadata: {
      name: proxyNetworkPolicyName(name), namespace: identity.metadata.namespace,
      resourceVersion: existing?.metadata.resourceVersion,
      labels: { ...existing?.metadata.labels, [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, [LABEL_IDENTITY]: name },
      ownerReferences: [{ apiVersion: API_VERSION, kind: AGENT_IDENTITY.kind, name, uid: identity.metadata.uid!, controller: true, blockOwnerDeletion: true }],
    },
    // Every field written out (protocol, policyTypes), so the object read back compares equal.
    spec: {
      podSelector: { matchLabels: { [LABEL_AGENT]: name } },
      policyTypes: ['Ingress'],
      ingress: [{ ports: [{ protocol: 'TCP', port: identity.spec.proxy!.port }] }],
    },
  };
}

/** Anything the operator owns moved: the spec, its labels, its controller. */
export function networkPolicyDiffers(have: NetworkPolicy, want: NetworkPolicy): boolean {
  return !jsonEqual(have.spec, want.spec)
    || Object.entries(want.metadata.labels ?? {}).some(([k, v]) => have.metadata.labels?.[k] !== v)
    || controllerOf(have)?.uid !== controllerOf(want)?.uid;
}
