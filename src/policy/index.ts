// The public face of src/policy: AgentIdentity policies compiled into the
// PolicyDocument (policy.json) the SDK enforces.
export {
  compilePolicy,
  encodePolicyDocument,
  peersResolved,
  type PolicyInput,
  type PolicyNamespace,
  type PolicyPeerIdentity,
  policyProblems,
} from './compile.ts';
export { describeSelector, matchesSelector, selectorProblem } from './selector.ts';
export type { AgentRule, InboundPolicy, LabelSelector, LabelSelectorRequirement, NamespaceRule, PolicyRule, SelectorRule, SpiffeIDRule } from './types.ts';
