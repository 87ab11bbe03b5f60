// AgentIdentity spec.policy → the PolicyDocument mounted as policy.json.
// Pure and deterministic: the same inputs always give the same bytes, so the
// operator can compare documents and skip writes that would change nothing.
import type { DenyListEntry, Destination, EgressDocument, Narrowing, PolicyDocument, PolicyPeer, TrustDomainPeer } from '../api/documents.ts';
import type { PolicyRule } from '../api/types.ts';
import { SpiffeID } from '../pki/index.ts';
import { compileNarrowing } from './narrowing.ts';
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

/** A namespace's labels as a namespaceSelector sees them. */
export function selectableNamespaceLabels(name: string, labels: Record<string, string> | undefined): Record<string, string> {
  return { ...labels, [NAMESPACE_NAME_LABEL]: name };
}

function namespaceLabels(input: PolicyInput, name: string): Record<string, string> {
  return selectableNamespaceLabels(name, input.namespaces.find((n) => n.name === name)?.labels);
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
    case 'trustDomain':
      // Not resolved to IDs: a partner's identities are not known here. Kept whole (allowTrustDomains).
      return [];
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

interface Resolved {
  allow: PolicyPeer[];
  /** trustDomain rules, each trust domain once with the first rule that named it, sorted. */
  trustDomains: TrustDomainPeer[];
  /** The narrowings some peer refers to; empty when no rule narrows. */
  narrowings: Narrowing[];
}

/**
 * Every peer the rules resolve to, each once with the first rule that named
 * it, sorted by SPIFFE ID. A peer named by any rule that does not narrow may
 * do anything; one named only by narrowing rules gets their indices (the
 * union of what they allow).
 */
function resolveRules(rules: readonly PolicyRule[], field: string, input: PolicyInput): Resolved {
  const allow = new Map<string, PolicyPeer & { unrestricted: boolean; indices: number[] }>();
  const narrowings: Narrowing[] = [];
  const trustDomains = new Map<string, TrustDomainPeer>();
  rules.forEach((rule, i) => {
    const c = classifyRule(rule);
    if ('problem' in c || ruleProblem(rule) !== undefined) return;
    const text = `${field}[${i}]: ${ruleText(c, input.identity.namespace)}`;
    if (c.kind === 'trustDomain' && !trustDomains.has(c.rule.trustDomain)) trustDomains.set(c.rule.trustDomain, { trustDomain: c.rule.trustDomain, rule: text });
    const narrowing = compileNarrowing(rule, i, text);
    if (narrowing) narrowings.push(narrowing);
    for (const spiffeID of resolve(c, input).sort(byString)) {
      const peer = allow.get(spiffeID) ?? { spiffeID, rule: text, unrestricted: false, indices: [] };
      allow.set(spiffeID, peer);
      if (narrowing) peer.indices.push(i);
      else peer.unrestricted = true;
    }
  });
  // A trustDomain rule does not narrow: a peer of its trust domain may do anything, whatever else names it.
  for (const p of allow.values()) if (trustDomains.has(trustDomainOfID(p.spiffeID) ?? '')) p.unrestricted = true;
  const peers = [...allow.values()].sort((a, b) => byString(a.spiffeID, b.spiffeID));
  const used = new Set(peers.flatMap((p) => (p.unrestricted ? [] : p.indices)));
  return {
    allow: peers.map((p) => ({ spiffeID: p.spiffeID, rule: p.rule, ...(p.unrestricted ? {} : { rules: p.indices }) })),
    narrowings: narrowings.filter((n) => used.has(n.index)),
    trustDomains: [...trustDomains.values()].sort((a, b) => byString(a.trustDomain, b.trustDomain)),
  };
}

const trustDomainOfID = (id: string) => {
  try {
    return SpiffeID.parse(id).trustDomain;
  } catch {
    return undefined;
  }
};

/**
 * The hosts that name identities: this trust domain's AgentIdentities, and
 * the partners' agents that egress.allow names with hosts (hostRules). A name
 * in some identity's spec.dnsNames (or a rule's hosts) is claimed by
 * those identities alone; `<name>.<namespace>.svc[.<clusterDomain>]` names an
 * identity only where no dnsNames claim it.
 */
function destinations(input: PolicyInput): Destination[] {
  const explicit: Destination[] = hostRules(input);
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
 * The hosts that egress.allow's spiffeID rules name for their identity (a partner's agent, which no
 * AgentIdentity here claims): explicit claims, as dnsNames are.
 */
function hostRules(input: PolicyInput): Destination[] {
  return (input.identity.policy?.egress?.allow ?? []).flatMap((rule) => {
    const c = classifyRule(rule);
    if ('problem' in c || c.kind !== 'spiffeID' || ruleProblem(rule) !== undefined) return [];
    return (c.rule.hosts ?? []).map((host) => ({ host, spiffeID: SpiffeID.parse(c.rule.spiffeID).toString() }));
  });
}

const NONE: Resolved = { allow: [], narrowings: [], trustDomains: [] };

// Optional fields only when used, so documents without them keep their bytes (and older SDKs, which ignore
// allowTrustDomains, only ever admit fewer peers).
const withNarrowings = (r: Resolved) => ({
  allow: r.allow, ...(r.trustDomains.length ? { allowTrustDomains: r.trustDomains } : {}), ...(r.narrowings.length ? { narrowings: r.narrowings } : {}),
});

/**
 * Whether policy.json carries the host map (egress.destinations): for a proxy
 * (spec.proxy) or an egress policy (spec.policy.egress, which only a proxy
 * enforces). The map lists every identity of the trust domain, so each one
 * appearing rewrites every map; an inbound-only policy names its peers alone.
 * (In every identity's document it was 235 KB each at 1,000 identities, 235 MB
 * cached, and past about 4,000 a document outgrew a ConfigMap's 1 MiB.)
 */
export function needsHostMap(identity: { policy?: InboundPolicy; proxied?: boolean }): boolean {
  return identity.proxied === true || identity.policy?.egress !== undefined;
}

function compileEgress(input: PolicyInput): EgressDocument {
  const rules = input.identity.policy?.egress?.allow;
  return {
    mode: rules ? 'AllowList' : 'TrustDomain', ...withNarrowings(rules ? resolveRules(rules, 'egress.allow', input) : NONE),
    destinations: needsHostMap(input.identity) ? destinations(input) : [],
  };
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
  const inbound = allow ? resolveRules(allow, 'allow', input) : NONE;
  const egress = identity.policy || identity.proxied ? compileEgress(input) : undefined;
  // Version 2 only when something narrows: readers that predate narrowings refuse it instead of ignoring them.
  const narrowed = inbound.narrowings.length > 0 || (egress?.narrowings?.length ?? 0) > 0;
  return {
    version: narrowed ? 2 : 1,
    spiffeID: identity.spiffeID,
    mode: allow ? 'AllowList' : 'TrustDomain',
    trustDomain: identity.trustDomain,
    ...withNarrowings(inbound),
    denyList: canonicalDenyList(input.denyList),
    ...(egress ? { egress } : {}),
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
