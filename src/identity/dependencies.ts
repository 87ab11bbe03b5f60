// Which other identities an identity's policy.json depends on, by rule shape.
// Pure. Both the index that says which holders an identity event concerns
// (policy-holders.ts) and the reconciler that gathers a holder's peers read
// it, so the two cannot disagree on what a rule can name.
import { needsPeers } from '../api/defaults.ts';
import type { AgentIdentity, LabelSelector, Namespace, PolicyRule } from '../api/types.ts';
import { objectKey, splitKey } from '../controller/controller.ts';
import { needsHostMap, selectableNamespaceLabels } from '../policy/compile.ts';
import { matchesSelector } from '../policy/selector.ts';
import { classifyRule, ruleProblem } from '../policy/rules.ts';

export interface PolicyDependencies {
  /** `namespace/name` of every agent rule: looked up by key. */
  agents: string[];
  /** Selector rules without a namespaceSelector: identities of the holder's own namespace. */
  ownNamespace: LabelSelector[];
  /** namespaceSelector rules, with or without a selector: identities of any namespace whose labels match. */
  anyNamespace: Array<{ namespaceSelector: LabelSelector; selector?: LabelSelector }>;
  /** The host map (spec.proxy or spec.policy.egress) lists every identity. */
  hostMap: boolean;
}

/** undefined: the identity depends on no other (it has neither spec.policy nor spec.proxy). */
export function policyDependencies(identity: AgentIdentity): PolicyDependencies | undefined {
  if (!needsPeers(identity)) return undefined;
  const own = identity.metadata.namespace!;
  const policy = identity.spec.policy;
  const deps: PolicyDependencies = { agents: [], ownNamespace: [], anyNamespace: [], hostMap: needsHostMap({ policy, proxied: identity.spec.proxy !== undefined }) };
  for (const rule of [...policy?.allow ?? [], ...policy?.egress?.allow ?? []] as PolicyRule[]) {
    const c = classifyRule(rule);
    // A malformed rule resolves to nobody (compilePolicy), so it names nobody here either.
    if ('problem' in c || ruleProblem(rule) !== undefined) continue;
    switch (c.kind) {
      case 'agent':
        deps.agents.push(`${c.rule.agent.namespace ?? own}/${c.rule.agent.name}`);
        break;
      case 'selector':
        if (c.rule.namespaceSelector === undefined) deps.ownNamespace.push(c.rule.selector);
        else deps.anyNamespace.push({ namespaceSelector: c.rule.namespaceSelector, selector: c.rule.selector });
        break;
      case 'namespace':
        deps.anyNamespace.push({ namespaceSelector: c.rule.namespaceSelector });
        break;
      case 'spiffeID':
        break;
    }
  }
  return deps;
}

export interface PeerCaches {
  identities: { get(name: string, namespace?: string): AgentIdentity | undefined; list(namespace?: string): readonly AgentIdentity[] };
  namespaces: { list(): readonly Namespace[] };
}

/**
 * The identities a holder's rules can name, read by rule shape: agent rules
 * by key, selectors from the namespaces they reach. Only the host map reads
 * every identity (it lists them all).
 */
export function candidatePeers(deps: PolicyDependencies, namespace: string, c: PeerCaches): readonly AgentIdentity[] {
  if (deps.hostMap) return c.identities.list();
  const out = new Map<string, AgentIdentity>();
  const put = (i: AgentIdentity) => out.set(objectKey(i), i);
  for (const at of deps.agents) {
    const [ns, name] = splitKey(at);
    const peer = c.identities.get(name, ns);
    if (peer) put(peer);
  }
  if (deps.ownNamespace.length) c.identities.list(namespace).forEach(put);
  if (deps.anyNamespace.length) {
    for (const ns of c.namespaces.list()) {
      const labels = selectableNamespaceLabels(ns.metadata.name!, ns.metadata.labels);
      if (deps.anyNamespace.some((r) => matchesSelector(r.namespaceSelector, labels))) c.identities.list(ns.metadata.name).forEach(put);
    }
  }
  return [...out.values()];
}
