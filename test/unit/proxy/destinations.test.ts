import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PolicyDocument } from '../../../src/api/documents.ts';
import { claimsOf, decideEgress } from '../../../src/proxy/destinations.ts';

const id = (name: string) => `spiffe://cluster.local/ns/agents/agent/${name}`;
const me = id('caller');

function doc(egress: PolicyDocument['egress']): PolicyDocument {
  return { version: 1, spiffeID: me, mode: 'TrustDomain', trustDomain: 'cluster.local', allow: [], denyList: [], ...(egress ? { egress } : {}) };
}

const destinations = [
  { host: 'planner.agents.svc', spiffeID: id('planner') },
  { host: '*.tools.agents.svc', spiffeID: id('tools') },
  { host: 'exact.tools.agents.svc', spiffeID: id('exact') },
  { host: 'shared.agents.svc', spiffeID: id('a') },
  { host: 'shared.agents.svc', spiffeID: id('b') },
  { host: 'partner.agents.svc', spiffeID: 'spiffe://partner.example/x' },
];

describe('claimsOf', () => {
  const d = doc({ mode: 'TrustDomain', allow: [], destinations });
  it('an exact name, case and a trailing dot aside', () => {
    assert.deepEqual(claimsOf(d, 'Planner.Agents.SVC.'), [id('planner')]);
  });
  it('a wildcard covers exactly one first label, and an exact name wins over it', () => {
    assert.deepEqual(claimsOf(d, 'search.tools.agents.svc'), [id('tools')]);
    assert.deepEqual(claimsOf(d, 'a.b.tools.agents.svc'), []);
    assert.deepEqual(claimsOf(d, 'tools.agents.svc'), []);
    assert.deepEqual(claimsOf(d, 'exact.tools.agents.svc'), [id('exact')]);
  });
  it('nothing without an egress section', () => {
    assert.deepEqual(claimsOf(doc(undefined), 'planner.agents.svc'), []);
  });
});

describe('decideEgress', () => {
  it('TrustDomain mode: any claimed identity of the trust domain, with the rule that allowed it', () => {
    assert.deepEqual(decideEgress(doc({ mode: 'TrustDomain', allow: [], destinations }), 'planner.agents.svc'), { allowed: true, spiffeID: id('planner'), rule: 'member of trust domain cluster.local (no egress.allow list)' });
  });
  it('TrustDomain mode: an identity of another trust domain is refused', () => {
    const v = decideEgress(doc({ mode: 'TrustDomain', allow: [], destinations }), 'partner.agents.svc');
    assert.equal(v.allowed, false);
    assert.equal((v as { status: number }).status, 403);
  });
  it('AllowList: only the listed; the refusal names the host, the identity and the rules', () => {
    const d = doc({ mode: 'AllowList', allow: [{ spiffeID: id('planner'), rule: 'egress.allow[0]: agent agents/planner' }], destinations });
    assert.equal(decideEgress(d, 'planner.agents.svc').allowed, true);
    assert.deepEqual(decideEgress(d, 'search.tools.agents.svc'), {
      allowed: false, status: 403,
      message: `egress to search.tools.agents.svc (${id('tools')}) refused: calls to ${id('tools')} are not allowed by the egress policy of ${me} (egress.allow list: egress.allow[0]: agent agents/planner)`,
      spiffeID: id('tools'),
    });
  });
  it('an unclaimed host is external: 403, and says external hosts are not supported', () => {
    const v = decideEgress(doc({ mode: 'TrustDomain', allow: [], destinations }), 'api.openai.com');
    assert.deepEqual(v, { allowed: false, status: 403, message: 'egress to api.openai.com refused: no AgentIdentity claims it (spec.dnsNames, or <name>.<namespace>.svc), nor an egress.allow spiffeID rule\'s hosts (a federated partner\'s agent); egress to external hosts is not supported' });
  });
  it('without an egress section every host is refused, saying why', () => {
    const v = decideEgress(doc(undefined), 'planner.agents.svc');
    assert.equal(v.allowed, false);
    assert.match((v as { message: string }).message, /has no egress section/);
  });
  it('a host two identities claim: 502 naming both', () => {
    const v = decideEgress(doc({ mode: 'TrustDomain', allow: [], destinations }), 'shared.agents.svc');
    assert.deepEqual(v, { allowed: false, status: 502, message: `egress to shared.agents.svc refused: the host is claimed by more than one identity (${id('a')}, ${id('b')}); give each a distinct spec.dnsNames` });
  });
});
