// One PolicyRule at a time: which kind it is, whether it is well formed, and
// the text that names it in policy.json and in every refusal message.
import { isValidDNSName, isValidTrustDomainName, SpiffeID } from '../pki/index.ts';
import { narrowingProblem } from './narrowing.ts';
import { describeSelector, isEmptySelector, selectorProblem } from './selector.ts';
import type { AgentRule, LabelSelector, NamespaceRule, PolicyRule, SelectorRule, SpiffeIDRule, TrustDomainRule } from './types.ts';

export type ClassifiedRule =
  | { kind: 'agent'; rule: AgentRule }
  | { kind: 'selector'; rule: SelectorRule }
  | { kind: 'namespace'; rule: NamespaceRule }
  | { kind: 'spiffeID'; rule: SpiffeIDRule }
  | { kind: 'trustDomain'; rule: TrustDomainRule };

const KEYS = ['agent', 'selector', 'namespaceSelector', 'spiffeID', 'trustDomain'] as const;

/** The rule's kind, or why it is none: a rule must be exactly one of the four shapes. */
export function classifyRule(rule: PolicyRule): ClassifiedRule | { problem: string } {
  const present = KEYS.filter((k) => rule !== null && typeof rule === 'object' && Object.hasOwn(rule, k));
  if (rule !== null && typeof rule === 'object' && Object.hasOwn(rule, 'hosts') && !present.includes('spiffeID')) return { problem: 'hosts go with a spiffeID rule (the host names that reach that identity)' };
  const only = (...keys: string[]) => present.length === keys.length && keys.every((k) => present.includes(k as (typeof KEYS)[number]));
  if (only('agent')) return { kind: 'agent', rule: rule as AgentRule };
  if (only('spiffeID')) return { kind: 'spiffeID', rule: rule as SpiffeIDRule };
  if (only('trustDomain')) return { kind: 'trustDomain', rule: rule as TrustDomainRule };
  if (only('selector') || only('selector', 'namespaceSelector')) return { kind: 'selector', rule: rule as SelectorRule };
  if (only('namespaceSelector')) return { kind: 'namespace', rule: rule as NamespaceRule };
  return { problem: `a rule must have exactly one of agent, selector (with an optional namespaceSelector), namespaceSelector, spiffeID or trustDomain; found ${present.length ? present.join(', ') : 'none'}` };
}

/** Why the rule is unusable, or undefined. */
export function ruleProblem(rule: PolicyRule): string | undefined {
  return peerProblem(rule) ?? narrowingProblem(rule);
}

function peerProblem(rule: PolicyRule): string | undefined {
  const c = classifyRule(rule);
  if ('problem' in c) return c.problem;
  switch (c.kind) {
    case 'agent':
      return typeof c.rule.agent?.name === 'string' && c.rule.agent.name !== '' ? undefined : 'agent.name is required';
    case 'spiffeID':
      try {
        SpiffeID.parse(c.rule.spiffeID);
      } catch (err) {
        return (err as Error).message;
      }
      return hostsProblem(c.rule.hosts);
    case 'trustDomain':
      if (typeof c.rule.trustDomain !== 'string' || !isValidTrustDomainName(c.rule.trustDomain)) return `trustDomain ${JSON.stringify(String(c.rule.trustDomain).slice(0, 100))} is not a trust domain name`;
      // Narrowings are kept per SPIFFE ID (policy.json's allow list): a whole trust domain has none to hang them on.
      return 'http' in rule || 'mcp' in rule || 'a2a' in rule ? 'a trustDomain rule cannot narrow (http, mcp, a2a): name the peers by spiffeID to narrow what they may call' : undefined;
    case 'selector':
      return prefixed('selector', c.rule.selector) ?? (c.rule.namespaceSelector ? prefixed('namespaceSelector', c.rule.namespaceSelector) : undefined);
    case 'namespace':
      return prefixed('namespaceSelector', c.rule.namespaceSelector);
  }
}

function hostsProblem(hosts: unknown): string | undefined {
  if (hosts === undefined) return undefined;
  if (!Array.isArray(hosts)) return 'hosts must be a list of DNS names';
  const bad = hosts.find((h) => typeof h !== 'string' || h !== h.toLowerCase() || !isValidDNSName(h));
  return bad === undefined ? undefined : `hosts: ${JSON.stringify(String(bad).slice(0, 100))} is not a lowercase DNS name`;
}

function prefixed(field: string, selector: LabelSelector): string | undefined {
  if (selector === null || typeof selector !== 'object') return `${field} must be an object`;
  const why = selectorProblem(selector);
  return why && `${field}: ${why}`;
}

const selectorText = (s: LabelSelector) => (isEmptySelector(s) ? '{}' : describeSelector(s));

/** e.g. "agent ops/auditor", "selector role=auditor in namespaces team=x", "spiffeID spiffe://…". */
export function ruleText(c: ClassifiedRule, ownNamespace: string): string {
  switch (c.kind) {
    case 'agent':
      return `agent ${c.rule.agent.namespace ?? ownNamespace}/${c.rule.agent.name}`;
    case 'spiffeID':
      return `spiffeID ${c.rule.spiffeID}`;
    case 'trustDomain':
      return `trustDomain ${c.rule.trustDomain}`;
    case 'selector': {
      const ns = c.rule.namespaceSelector;
      const where = ns === undefined ? `in namespace ${ownNamespace}` : isEmptySelector(ns) ? 'in all namespaces' : `in namespaces ${describeSelector(ns)}`;
      return `selector ${selectorText(c.rule.selector)} ${where}`;
    }
    case 'namespace':
      return isEmptySelector(c.rule.namespaceSelector) ? 'namespaceSelector {} (all namespaces)' : `namespaceSelector ${describeSelector(c.rule.namespaceSelector)}`;
  }
}
