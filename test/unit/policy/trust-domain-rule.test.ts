// The trustDomain rule (federation): any identity of a named trust domain,
// compiled into policy.json's allowTrustDomains and enforced by the SDK's
// authorizer; the default (no allow list) never reaches a foreign trust domain.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compilePolicy, encodePolicyDocument, policyProblems, type PolicyInput } from '../../../src/policy/compile.ts';
import type { InboundPolicy, PolicyRule } from '../../../src/policy/types.ts';
import { SpiffeID } from '../../../src/pki/index.ts';
import { authorizeEgress, authorizePolicy } from '../../../src/sdk/authorizer.ts';
import { grantsOf } from '../../../src/sdk/requests/decide.ts';
import { parsePolicyDocument } from '../../../src/sdk/policy-document.ts';

const self = 'spiffe://cluster-a.test/ns/agents/agent/planner';
const partner = 'spiffe://partner.example/ns/x/agent/y';
const input = (policy?: InboundPolicy): PolicyInput => ({
  identity: { namespace: 'agents', name: 'planner', spiffeID: self, trustDomain: 'cluster-a.test', ...(policy ? { policy } : {}) },
  peers: [], namespaces: [], denyList: [],
});
/** Compiled, written and read back as the SDK reads it. */
const doc = (policy?: InboundPolicy) => parsePolicyDocument(encodePolicyDocument(compilePolicy(input(policy))));
const allowed = (d: ReturnType<typeof doc>, id: string) => authorizePolicy(d, { inspectsRequests: true })(SpiffeID.parse(id), []);

describe('trustDomain rules', () => {
  it('admit every identity of the named trust domain, and only of it', () => {
    const d = doc({ allow: [{ agent: { name: 'orchestrator' } }, { trustDomain: 'partner.example' }] });
    assert.deepEqual(d.allowTrustDomains, [{ trustDomain: 'partner.example', rule: 'allow[1]: trustDomain partner.example' }]);
    assert.deepEqual(allowed(d, partner), { allowed: true, rule: 'allow[1]: trustDomain partner.example' });
    const other = allowed(d, 'spiffe://other.example/ns/x/agent/y');
    assert.equal(other.allowed, false);
    assert.match((other as { reason: string }).reason, /allow list: allow\[1\]: trustDomain partner\.example/);
    assert.equal(allowed(d, 'spiffe://cluster-a.test/ns/agents/agent/someone').allowed, false, 'an allow list admits only what it names');
  });

  it('no allow list admits the own trust domain, never a federated one', () => {
    const d = doc();
    assert.equal(allowed(d, 'spiffe://cluster-a.test/ns/any/agent/one').allowed, true);
    assert.equal(allowed(d, partner).allowed, false);
    assert.equal(d.allowTrustDomains, undefined, 'documents without the rule keep their shape');
  });

  it('a foreign spiffeID rule admits exactly that ID', () => {
    const d = doc({ allow: [{ spiffeID: partner }] });
    assert.equal(allowed(d, partner).allowed, true);
    assert.equal(allowed(d, 'spiffe://partner.example/ns/x/agent/z').allowed, false);
  });

  it('cannot narrow, and a narrowed spiffeID of its trust domain is not narrowed any more', () => {
    const narrowing: PolicyRule = { trustDomain: 'partner.example', http: { methods: ['GET'] } };
    assert.deepEqual(policyProblems({ allow: [narrowing, { trustDomain: 'Not A Domain' }] }), [
      'allow[0]: a trustDomain rule cannot narrow (http, mcp, a2a): name the peers by spiffeID to narrow what they may call',
      'allow[1]: trustDomain "Not A Domain" is not a trust domain name',
    ]);
    const d = doc({ allow: [{ spiffeID: partner, http: { methods: ['GET'] } }, { trustDomain: 'partner.example' }] });
    assert.deepEqual(grantsOf(d, partner), { unrestricted: true, rule: 0 });
  });

  it('work in egress.allow too', () => {
    const d = doc({ egress: { allow: [{ trustDomain: 'partner.example' }] } });
    assert.equal(authorizeEgress(d)(SpiffeID.parse(partner), []).allowed, true);
    assert.equal(authorizeEgress(d)(SpiffeID.parse('spiffe://cluster-a.test/ns/a/agent/b'), []).allowed, false);
  });
});

describe('hosts on an egress spiffeID rule (a partner\'s agent behind the proxy)', () => {
  it('claim the hosts for that identity, so the outbound proxy expects exactly it there', async () => {
    const { decideEgress } = await import('../../../src/proxy/destinations.ts');
    const d = doc({ egress: { allow: [{ spiffeID: partner, hosts: ['y.partner.example'] }] } });
    assert.deepEqual(d.egress!.destinations, [{ host: 'y.partner.example', spiffeID: partner }]);
    assert.deepEqual(decideEgress(d, 'Y.partner.example'), { allowed: true, spiffeID: partner, rule: `egress.allow[0]: spiffeID ${partner}` });
    assert.equal(decideEgress(d, 'z.partner.example').allowed, false);
    // Hosts claim; the rules still decide: claimed by a rule the trust domain's rule then allows.
    const td = doc({ egress: { allow: [{ trustDomain: 'partner.example' }, { spiffeID: partner, hosts: ['y.partner.example'] }] } });
    assert.equal(decideEgress(td, 'y.partner.example').allowed, true);
  });

  it('are refused anywhere but on a spiffeID rule, and must be lowercase DNS names', () => {
    assert.deepEqual(policyProblems({ egress: { allow: [{ trustDomain: 'partner.example', hosts: ['a.example'] } as PolicyRule, { spiffeID: partner, hosts: ['Bad_Host'] }] } }), [
      'egress.allow[0]: hosts go with a spiffeID rule (the host names that reach that identity)',
      'egress.allow[1]: hosts: "Bad_Host" is not a lowercase DNS name',
    ]);
  });
});
