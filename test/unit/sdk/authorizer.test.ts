import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PolicyDocument } from '../../../src/api/documents.ts';
import { SpiffeID } from '../../../src/pki/spiffeid.ts';
import { type Authorization, authorizeAny, authorizeEgress, authorizeID, authorizeMemberOf, authorizeOneOf, authorizePolicy } from '../../../src/sdk/authorizer.ts';

const planner = 'spiffe://cluster.local/ns/agents/agent/planner';
const orchestrator = 'spiffe://cluster.local/ns/agents/agent/orchestrator';
const intruder = 'spiffe://cluster.local/ns/agents/agent/intruder';
const partner = 'spiffe://partner.example/ns/x/agent/y';
const check = (a: (id: SpiffeID, chain: []) => Authorization, id: string) => a(SpiffeID.parse(id), []);

function doc(overrides: Partial<PolicyDocument> = {}): PolicyDocument {
  return { version: 1, spiffeID: planner, mode: 'AllowList', trustDomain: 'cluster.local', allow: [], denyList: [], ...overrides };
}

describe('authorizers', () => {
  it('authorizeAny allows every ID', () => {
    assert.deepEqual(check(authorizeAny(), partner), { allowed: true, rule: 'any SPIFFE ID' });
  });

  it('authorizeID allows exactly one ID and says which it expected', () => {
    assert.deepEqual(check(authorizeID(orchestrator), orchestrator), { allowed: true, rule: `id ${orchestrator}` });
    assert.deepEqual(check(authorizeID(SpiffeID.parse(orchestrator)), intruder), { allowed: false, reason: `peer ${intruder} is not allowed: expected ${orchestrator}` });
  });

  it('authorizeOneOf allows any listed ID', () => {
    const a = authorizeOneOf(orchestrator, partner);
    assert.equal(check(a, partner).allowed, true);
    assert.deepEqual(check(a, intruder), { allowed: false, reason: `peer ${intruder} is not allowed: expected one of ${orchestrator}, ${partner}` });
  });

  it('authorizeMemberOf allows the trust domain only', () => {
    const a = authorizeMemberOf('cluster.local');
    assert.deepEqual(check(a, intruder), { allowed: true, rule: 'member of trust domain cluster.local' });
    assert.deepEqual(check(a, partner), { allowed: false, reason: `peer ${partner} is not allowed: expected a member of trust domain cluster.local` });
  });

  it('refuse to be built from invalid IDs or trust domains', () => {
    assert.throws(() => authorizeID('https://cluster.local/x'), /scheme/);
    assert.throws(() => authorizeOneOf(orchestrator, 'spiffe://Bad/x'), /trust domain characters/);
    assert.throws(() => authorizeMemberOf('Cluster.Local'), /trust domain characters/);
  });
});

describe('authorizePolicy', () => {
  it('AllowList: allows listed peers with their rule, even from other trust domains', () => {
    const a = authorizePolicy(doc({ allow: [{ spiffeID: orchestrator, rule: 'allow[0]: agent agents/orchestrator' }, { spiffeID: partner, rule: `allow[1]: spiffeID ${partner}` }] }));
    assert.deepEqual(check(a, orchestrator), { allowed: true, rule: 'allow[0]: agent agents/orchestrator' });
    assert.deepEqual(check(a, partner), { allowed: true, rule: `allow[1]: spiffeID ${partner}` });
  });

  it('AllowList: refuses anyone else, naming the policy and its rules', () => {
    const a = authorizePolicy(doc({ allow: [{ spiffeID: orchestrator, rule: 'allow[0]: agent agents/orchestrator' }] }));
    assert.deepEqual(check(a, intruder), {
      allowed: false,
      reason: `peer ${intruder} is not allowed by the policy of ${planner} (allow list: allow[0]: agent agents/orchestrator)`,
    });
  });

  it('AllowList: an empty list refuses everyone, the own trust domain included', () => {
    assert.deepEqual(check(authorizePolicy(doc()), orchestrator), { allowed: false, reason: `peer ${orchestrator} is not allowed by the policy of ${planner} (allow list is empty)` });
  });

  it('AllowList: a long list is summarised once per rule, then counted', () => {
    const allow = Array.from({ length: 8 }, (_, i) => ({ spiffeID: `spiffe://cluster.local/a/${i}`, rule: `allow[${i}]: agent agents/a${i}` }));
    allow.push({ spiffeID: 'spiffe://cluster.local/b', rule: 'allow[0]: agent agents/a0' });
    const verdict = check(authorizePolicy(doc({ allow })), intruder);
    assert.equal(verdict.allowed, false);
    assert.match((verdict as { reason: string }).reason, /\(allow list: allow\[0\]: agent agents\/a0; allow\[1\].*allow\[4\]: agent agents\/a4; and 3 more\)$/);
  });

  it('TrustDomain: any member is allowed, others are refused with the reason', () => {
    const a = authorizePolicy(doc({ mode: 'TrustDomain' }));
    assert.deepEqual(check(a, intruder), { allowed: true, rule: 'member of trust domain cluster.local (no allow list)' });
    assert.deepEqual(check(a, partner), {
      allowed: false,
      reason: `peer ${partner} is not allowed by the policy of ${planner} (no allow list: only members of trust domain cluster.local)`,
    });
  });
});

describe('authorizeEgress', () => {
  it('no egress section: refuses every call and says why', () => {
    const v = check(authorizeEgress(doc()), orchestrator);
    assert.equal(v.allowed, false);
    assert.match((v as { reason: string }).reason, /policy of .*planner has no egress section/);
  });

  it('AllowList: allows listed peers with their rule, refuses others naming the egress rules', () => {
    const a = authorizeEgress(doc({ egress: { mode: 'AllowList', allow: [{ spiffeID: orchestrator, rule: 'egress.allow[0]: agent agents/orchestrator' }], destinations: [] } }));
    assert.deepEqual(check(a, orchestrator), { allowed: true, rule: 'egress.allow[0]: agent agents/orchestrator' });
    assert.deepEqual(check(a, intruder), {
      allowed: false,
      reason: `calls to ${intruder} are not allowed by the egress policy of ${planner} (egress.allow list: egress.allow[0]: agent agents/orchestrator)`,
    });
  });

  it('TrustDomain: any member of the trust domain, nobody outside it; the inbound allow list plays no part', () => {
    const a = authorizeEgress(doc({ allow: [], egress: { mode: 'TrustDomain', allow: [], destinations: [] } }));
    assert.equal(check(a, intruder).allowed, true);
    assert.match((check(a, partner) as { reason: string }).reason, /no egress\.allow list: only members of trust domain cluster\.local/);
  });
});

describe('authorizePolicy: peers held to narrowing rules', () => {
  const narrowed = doc({ version: 2, allow: [{ spiffeID: orchestrator, rule: 'allow[0]: agent agents/orchestrator', rules: [0] }], narrowings: [{ index: 0, rule: 'allow[0]: agent agents/orchestrator', mcp: { tools: ['search'] } }] });
  it('a server that inspects requests admits them (it enforces the narrowing per request)', () => {
    assert.deepEqual(check(authorizePolicy(narrowed, { inspectsRequests: true }), orchestrator), { allowed: true, rule: 'allow[0]: agent agents/orchestrator' });
  });

  it('a server that sees no requests refuses them, rather than let them do everything', () => {
    const v = check(authorizePolicy(narrowed), orchestrator);
    assert.equal(v.allowed, false);
    assert.match((v as { reason: string }).reason, /allow\[0\]: agent agents\/orchestrator narrows what it may call \(http, mcp or a2a\), and this server does not inspect requests/);
  });
});
