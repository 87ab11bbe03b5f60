// The inbound policy of an AgentIdentity, `spec.policy`: who may connect to
// the agent. Mirrors the CRD field exactly; src/api/types.ts will carry the same shape.

import type { LabelSelector } from '../api/types.ts';

export type { LabelSelector, LabelSelectorRequirement } from '../api/types.ts';

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
