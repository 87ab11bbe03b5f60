import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { admitsEveryNamespace, dnsNameMatches, tenancyViolation } from '../../../src/policy/tenancy.ts';
import type { AgentIdentity, TrustDomain, TrustDomainSpec } from '../../../src/api/types.ts';

const td = (spec: Partial<TrustDomainSpec> = {}): TrustDomain => ({
  apiVersion: 'agentidentity.dev/v1alpha1', kind: 'TrustDomain', metadata: { name: 'team-a' },
  spec: { trustDomain: 'a.example', ca: { selfSigned: {} }, ...spec },
});
const identity = (namespace: string, dnsNames?: string[]): AgentIdentity => ({
  apiVersion: 'agentidentity.dev/v1alpha1', kind: 'AgentIdentity', metadata: { name: 'planner', namespace },
  spec: { serviceAccountName: 'planner', ...(dnsNames ? { dnsNames } : {}) },
});
const labels = (ns: string, more: Record<string, string> = {}) => ({ 'kubernetes.io/metadata.name': ns, ...more });

describe('tenancyViolation', () => {
  const cases: [string, TrustDomain, AgentIdentity, Record<string, string>, string | undefined][] = [
    ['no selector: every namespace', td(), identity('agents'), labels('agents'), undefined],
    ['{} selects every namespace', td({ namespaceSelector: {} }), identity('agents'), labels('agents'), undefined],
    ['selected by label', td({ namespaceSelector: { matchLabels: { team: 'a' } } }), identity('agents'), labels('agents', { team: 'a' }), undefined],
    ['not selected', td({ namespaceSelector: { matchLabels: { team: 'a' } } }), identity('agents'), labels('agents', { team: 'b' }), 'NamespaceNotAllowed'],
    ['selected by name', td({ namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['agents'] }] } }), identity('agents'), labels('agents'), undefined],
    ['an invalid selector admits no namespace', td({ namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'In', values: [] }] } }), identity('agents'), labels('agents', { team: 'a' }), 'NamespaceNotAllowed'],
    ['the namespace is decided before the DNS names', td({ namespaceSelector: { matchLabels: { team: 'a' } } }), identity('agents', ['kubernetes.default.svc']), labels('agents'), 'NamespaceNotAllowed'],
    ['default: <x>.<ns>.svc', td(), identity('agents', ['planner.agents.svc']), labels('agents'), undefined],
    ['default: <x>.<ns>.svc.cluster.local', td(), identity('agents', ['planner.agents.svc.cluster.local']), labels('agents'), undefined],
    ['default: another namespace\'s Service', td(), identity('agents', ['kubernetes.default.svc']), labels('agents'), 'DNSNameNotAllowed'],
    ['default: a name outside the cluster', td(), identity('agents', ['planner.example.com']), labels('agents'), 'DNSNameNotAllowed'],
    ['default: two labels before .svc', td(), identity('agents', ['a.planner.agents.svc']), labels('agents'), 'DNSNameNotAllowed'],
    ['default: the bare namespace', td(), identity('agents', ['agents.svc']), labels('agents'), 'DNSNameNotAllowed'],
    ['default: a wildcard across namespaces', td(), identity('agents', ['*.svc.cluster.local']), labels('agents'), 'DNSNameNotAllowed'],
    ['default: a wildcard in its own namespace', td(), identity('agents', ['*.agents.svc']), labels('agents'), 'DNSNameNotAllowed'],
    ['one bad name among good ones', td(), identity('agents', ['planner.agents.svc', 'x.ops.svc']), labels('agents'), 'DNSNameNotAllowed'],
    ['clusterDomain replaces the default', td({ clusterDomain: 'prod.internal' }), identity('agents', ['planner.agents.svc.prod.internal']), labels('agents'), undefined],
    ['clusterDomain: cluster.local no longer matches', td({ clusterDomain: 'prod.internal' }), identity('agents', ['planner.agents.svc.cluster.local']), labels('agents'), 'DNSNameNotAllowed'],
    ['allowed: explicit patterns', td({ dnsNames: { allowed: ['*.{namespace}.example.com', 'api.example.com'] } }), identity('agents', ['planner.agents.example.com', 'api.example.com']), labels('agents'), undefined],
    ['allowed: replaces the default', td({ dnsNames: { allowed: ['api.example.com'] } }), identity('agents', ['planner.agents.svc']), labels('agents'), 'DNSNameNotAllowed'],
    ['allowed: [] allows none', td({ dnsNames: { allowed: [] } }), identity('agents', ['planner.agents.svc']), labels('agents'), 'DNSNameNotAllowed'],
    ['allowed: [] with no dnsNames', td({ dnsNames: { allowed: [] } }), identity('agents'), labels('agents'), undefined],
    ['allowWildcards: a wildcard the patterns cover', td({ dnsNames: { allowWildcards: true } }), identity('agents', ['*.agents.svc']), labels('agents'), undefined],
    ['allowWildcards: a wildcard broader than the patterns', td({ dnsNames: { allowWildcards: true } }), identity('agents', ['*.svc.cluster.local']), labels('agents'), 'DNSNameNotAllowed'],
    ['allowWildcards: a wildcard in another namespace', td({ dnsNames: { allowWildcards: true } }), identity('agents', ['*.ops.svc']), labels('agents'), 'DNSNameNotAllowed'],
    ['allowWildcards: a pattern naming a fixed label does not cover a wildcard there', td({ dnsNames: { allowed: ['api.{namespace}.svc'], allowWildcards: true } }), identity('agents', ['*.agents.svc']), labels('agents'), 'DNSNameNotAllowed'],
  ];
  for (const [name, t, i, l, expected] of cases) {
    it(name, () => assert.equal(tenancyViolation(t, i, l)?.reason, expected));
  }

  it('says which selector, which namespace and what to do', () => {
    const v = tenancyViolation(td({ namespaceSelector: { matchLabels: { team: 'a' } } }), identity('intruders'), labels('intruders'));
    assert.equal(v?.message, 'TrustDomain "team-a" issues identities only in namespaces matching "team=a" (its spec.namespaceSelector), and namespace "intruders" does not match; use another trust domain in spec.trustDomain, or ask a cluster admin to admit this namespace');
  });

  it('names the refused name and the patterns of the namespace, filled in', () => {
    const v = tenancyViolation(td(), identity('agents', ['kubernetes.default.svc']), labels('agents'));
    assert.equal(v?.message, 'dnsNames entry "kubernetes.default.svc" is not allowed: in namespace "agents", TrustDomain "team-a" allows only names matching "*.agents.svc", "*.agents.svc.cluster.local" (spec.dnsNames.allowed, where * is one label)');
  });

  it('says a wildcard needs allowWildcards', () => {
    const v = tenancyViolation(td(), identity('agents', ['*.agents.svc']), labels('agents'));
    assert.match(v!.message, /^dnsNames entry "\*\.agents\.svc" is a wildcard, and TrustDomain "team-a" does not allow wildcard DNS names \(spec\.dnsNames\.allowWildcards\)/);
  });
});

describe('dnsNameMatches', () => {
  const cases: [string, string, boolean][] = [
    ['a.b.svc', 'a.b.svc', true],
    ['a.b.svc', '*.b.svc', true],
    ['a.b.svc', '*.*.svc', true],
    ['a.b.svc', '*.svc', false],
    ['b.svc', '*.b.svc', false],
    ['*.b.svc', '*.b.svc', true],
    ['*.b.svc', 'a.b.svc', false],
    ['a.b.svc', 'a.c.svc', false],
  ];
  for (const [name, pattern, expected] of cases) {
    it(`${name} ~ ${pattern}: ${expected}`, () => assert.equal(dnsNameMatches(name, pattern), expected));
  }
});

describe('admitsEveryNamespace', () => {
  it('absent and {} admit every namespace; a real selector does not', () => {
    assert.equal(admitsEveryNamespace(td()), true);
    assert.equal(admitsEveryNamespace(td({ namespaceSelector: {} })), true);
    assert.equal(admitsEveryNamespace(td({ namespaceSelector: { matchLabels: { team: 'a' } } })), false);
  });
});
