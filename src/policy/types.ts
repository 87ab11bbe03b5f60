// The inbound policy of an AgentIdentity, `spec.policy`: who may connect to
// the agent. Mirrors the CRD field exactly; src/api/types.ts will carry the same shape.

/** A Kubernetes metav1.LabelSelectorRequirement. */
export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

/** A Kubernetes metav1.LabelSelector: `{}` selects everything. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

/** One AgentIdentity by name; namespace defaults to the protected identity's own. */
export interface AgentRule {
  agent: { name: string; namespace?: string };
}

/**
 * AgentIdentities whose labels match `selector`, in the namespaces matching
 * `namespaceSelector`: absent means the identity's own namespace, `{}` all namespaces.
 */
export interface SelectorRule {
  selector: LabelSelector;
  namespaceSelector?: LabelSelector;
}

/** Every AgentIdentity in the namespaces matching `namespaceSelector`. */
export interface NamespaceRule {
  namespaceSelector: LabelSelector;
}

/** Any SPIFFE ID, including ones from other trust domains. */
export interface SpiffeIDRule {
  spiffeID: string;
}

export type PolicyRule = AgentRule | SelectorRule | NamespaceRule | SpiffeIDRule;

export interface InboundPolicy {
  allow: PolicyRule[];
}
