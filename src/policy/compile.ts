// AgentIdentity spec.policy → the PolicyDocument mounted as policy.json.
// Pure and deterministic: the same inputs always give the same bytes, so the
// operator can compare documents and skip writes that would change nothing.
import type { DenyListEntry, Destination, EgressDocument, PolicyDocument, PolicyPeer } from '../api/documents.ts';
import type { PolicyRule } from '../api/types.ts';
import { SpiffeID } from '../pki/index.ts';
import { classifyRule, type ClassifiedRule, ruleProblem, ruleText } from './rules.ts';
import { matchesSelector } from './selector.ts';
import { DEFAULT_CLUSTER_DOMAIN } from './tenancy.ts';
import type { InboundPolicy } from './types.ts';

export interface PolicyPeerIdentity {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  /** Undefined until the identity's first certificate is issued. */
  spiffeID?: string;
  /** spec.dnsNames: hosts the identity claims for the proxies' egress. */
  dnsNames?: string[];
  /** Its TrustDomain's spec.clusterDomain, for `<name>.<namespace>.svc.<clusterDomain>`; default cluster.local. */
  clusterDomain?: string;
}

export interface PolicyNamespace {
  name: string;
  labels: Record<string, string>;
}

export interface PolicyInput {
  /** `proxied`: its pods run the identity proxy (spec.proxy), whose outbound side needs the egress host map. */
  identity: { namespace: string; name: string; spiffeID: string; trustDomain: string; policy?: InboundPolicy; proxied?: boolean };
  /** Every AgentIdentity the rules may name, in any namespace. */
  peers: PolicyPeerIdentity[];
  namespaces: PolicyNamespace[];
  denyList: DenyListEntry[];
}

// Kubernetes sets this label on every namespace; adding it here lets a
// namespaceSelector pick namespaces by name even when the caller's list lacks one.
const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function namespaceLabels(input: PolicyInput, name: string): Record<string, string> {
  const ns = input.namespaces.find((n) => n.name === name);
  return { ...ns?.labels, [NAMESPACE_NAME_LABEL]: name };
}

/** The SPIFFE IDs one well-formed rule resolves to right now. */
function resolve(c: ClassifiedRule, input: PolicyInput): string[] {
  const own = input.identity.namespace;
  const issued = input.peers.filter((p): p is PolicyPeerIdentity & { spiffeID: string } => typeof p.spiffeID === 'string');
  switch (c.kind) {
    case 'spiffeID':
      return [c.rule.spiffeID];
    case 'agent': {
      const ns = c.rule.agent.namespace ?? own;
      return issued.filter((p) => p.namespace === ns && p.name === c.rule.agent.name).map((p) => p.spiffeID);
    }
    case 'selector': {
      const nsSelector = c.rule.namespaceSelector;
      const inScope = (ns: string) => (nsSelector === undefined ? ns === own : matchesSelector(nsSelector, namespaceLabels(input, ns)));
      return issued.filter((p) => inScope(p.namespace) && matchesSelector(c.rule.selector, p.labels)).map((p) => p.spiffeID);
    }
    case 'namespace':
      return issued.filter((p) => matchesSelector(c.rule.namespaceSelector, namespaceLabels(input, p.namespace))).map((p) => p.spiffeID);
  }
}

function canonicalDenyList(entries: DenyListEntry[]): DenyListEntry[] {
  const bySerial = new Map<string, DenyListEntry>();
  for (const e of entries) {
    const serialNumber = e.serialNumber.toLowerCase();
    // Fixed key order: the document is compared as bytes.
    if (!bySerial.has(serialNumber)) bySerial.set(serialNumber, { serialNumber, spiffeID: e.spiffeID, notAfter: e.notAfter, reason: e.reason });
  }
  return [...bySerial.values()].sort((a, b) => byString(a.serialNumber, b.serialNumber));
}

/** Every peer the rules resolve to, each once with the first rule that named it, sorted by SPIFFE ID. */
function resolveRules(rules: readonly PolicyRule[], field: string, input: PolicyInput): PolicyPeer[] {
  const allow = new Map<string, PolicyPeer>();
  rules.forEach((rule, i) => {
    const c = classifyRule(rule);
    if ('problem' in c || ruleProblem(rule) !== undefined) return;
    const text = `${field}[${i}]: ${ruleText(c, input.identity.namespace)}`;
    for (const spiffeID of resolve(c, input).sort(byString)) {
      if (!allow.has(spiffeID)) allow.set(spiffeID, { spiffeID, rule: text });
    }
  });
  return [...allow.values()].sort((a, b) => byString(a.spiffeID, b.spiffeID));
}

const trustDomainOfID = (id: string) => {
  try {
    return SpiffeID.parse(id).trustDomain;
  } catch {
    return undefined;
  }
};

/**
 * The hosts that name identities of this trust domain (the proxy's bundle
 * verifies no other). A name in some identity's spec.dnsNames is claimed by
 * those identities alone; `<name>.<namespace>.svc[.<clusterDomain>]` names an
 * identity only where no dnsNames claim it.
 */
function destinations(input: PolicyInput): Destination[] {
  const explicit: Destination[] = [];
  const conventional: Destination[] = [];
  for (const p of input.peers) {
    if (p.spiffeID === undefined || trustDomainOfID(p.spiffeID) !== input.identity.trustDomain) continue;
    for (const host of p.dnsNames ?? []) explicit.push({ host: host.toLowerCase(), spiffeID: p.spiffeID });
    const svc = `${p.name}.${p.namespace}.svc`;
    conventional.push({ host: svc, spiffeID: p.spiffeID }, { host: `${svc}.${p.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN}`, spiffeID: p.spiffeID });
  }
  const claimed = new Set(explicit.map((d) => d.host));
  const unique = new Map<string, Destination>();
  for (const d of [...explicit, ...conventional.filter((c) => !claimed.has(c.host))]) unique.set(`${d.host} ${d.spiffeID}`, d);
  return [...unique.values()].sort((a, b) => byString(a.host, b.host) || byString(a.spiffeID, b.spiffeID));
}

/**
 * The host map is for the proxy's outbound side alone (the SDK checks `mode` and `allow`), and it
 * names every identity of the trust domain: in every identity's document it made each policy.json
 * O(N) and all of them O(N²) (1,000 identities with policies: 235 KB each, 235 MB cached; past
 * about 4,000 a document outgrows a ConfigMap's 1 MiB). Only a proxied identity gets it.
 */
function compileEgress(input: PolicyInput): EgressDocument {
  const rules = input.identity.policy?.egress?.allow;
  return { mode: rules ? 'AllowList' : 'TrustDomain', allow: rules ? resolveRules(rules, 'egress.allow', input) : [], destinations: input.identity.proxied ? destinations(input) : [] };
}

/**
 * No `allow`: mode TrustDomain, any identity of the trust domain may connect.
 * `allow` (even `[]`): mode AllowList with every peer the rules resolve to.
 * Malformed rules resolve to nobody; policyProblems() says why. Only an
 * identity with a policy or a proxy gets `egress`: its peers are listed
 * anyway, and listing every identity for every other would make a burst O(N²).
 */
export function compilePolicy(input: PolicyInput): PolicyDocument {
  const { identity } = input;
  const allow = identity.policy?.allow;
  return {
    version: 1,
    spiffeID: identity.spiffeID,
    mode: allow ? 'AllowList' : 'TrustDomain',
    trustDomain: identity.trustDomain,
    allow: allow ? resolveRules(allow, 'allow', input) : [],
    denyList: canonicalDenyList(input.denyList),
    ...(identity.policy || identity.proxied ? { egress: compileEgress(input) } : {}),
  };
}

/** How many peers the document allows by name (0 in TrustDomain mode). */
export function peersResolved(doc: PolicyDocument): number {
  return doc.allow.length;
}

/** "allow[i]: why" for every malformed rule; empty when the policy is usable as written. */
export function policyProblems(policy: InboundPolicy): string[] {
  const problems = (rules: readonly PolicyRule[] | undefined, field: string) => (rules ?? []).flatMap((rule, i) => {
    const why = ruleProblem(rule);
    return why === undefined ? [] : [`${field}[${i}]: ${why}`];
  });
  return [...problems(policy.allow, 'allow'), ...problems(policy.egress?.allow, 'egress.allow')];
}

/** The bytes of policy.json: two-space JSON and a final newline. */
export function encodePolicyDocument(doc: PolicyDocument): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}
