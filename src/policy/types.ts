// The inbound policy of an AgentIdentity, `spec.policy`: who may connect to
// the agent. The shapes live with the CRD's mirror in src/api/types.ts.

export type {
  AgentRule, InboundPolicy, LabelSelector, LabelSelectorRequirement, NamespaceRule, PolicyRule, SelectorRule, SpiffeIDRule, TrustDomainRule,
} from '../api/types.ts';
