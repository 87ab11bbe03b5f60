import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DenyListEntry } from '../../../src/api/documents.ts';
import { compilePolicy, encodePolicyDocument, peersResolved, type PolicyInput, policyProblems } from '../../../src/policy/compile.ts';
import type { InboundPolicy, PolicyRule } from '../../../src/policy/types.ts';

const id = (ns: string, name: string) => `spiffe://cluster.local/ns/${ns}/agent/${name}`;

function input(policy?: InboundPolicy, extra: Partial<PolicyInput> = {}): PolicyInput {
  return {
    identity: { namespace: 'agents', name: 'planner', spiffeID: id('agents', 'planner'), trustDomain: 'cluster.local', ...(policy ? { policy } : {}) },
    peers: [
      { namespace: 'agents', name: 'orchestrator', labels: { role: 'orchestrator' }, spiffeID: id('agents', 'orchestrator') },
      { namespace: 'agents', name: 'auditor', labels: { role: 'auditor' }, spiffeID: id('agents', 'auditor') },
      { namespace: 'agents', name: 'fresh', labels: { role: 'auditor' } }, // not issued yet
      { namespace: 'ops', name: 'auditor', labels: { role: 'auditor' }, spiffeID: id('ops', 'auditor') },
      { namespace: 'ops', name: 'backup', labels: { role: 'backup' }, spiffeID: id('ops', 'backup') },
      { namespace: 'lab', name: 'auditor', labels: { role: 'auditor' }, spiffeID: id('lab', 'auditor') },
    ],
    namespaces: [
      { name: 'agents', labels: { team: 'core' } },
      { name: 'ops', labels: { team: 'x' } },
      { name: 'lab', labels: {} },
    ],
    denyList: [],
    ...extra,
  };
}

const allowOf = (rules: PolicyRule[]) => compilePolicy(input({ allow: rules })).allow;

describe('compilePolicy', () => {
  it('without a policy: TrustDomain mode, nobody allowed by name', () => {
    assert.deepEqual(compilePolicy(input()), {
      version: 1,
      spiffeID: id('agents', 'planner'),
      mode: 'TrustDomain',
      trustDomain: 'cluster.local',
      allow: [],
      denyList: [],
    });
  });

  it('an empty allow list is AllowList mode that allows nobody', () => {
    const doc = compilePolicy(input({ allow: [] }));
    assert.equal(doc.mode, 'AllowList');
    assert.deepEqual(doc.allow, []);
    assert.equal(peersResolved(doc), 0);
  });

  it('agent rules default to the identity namespace and may name another', () => {
    assert.deepEqual(allowOf([{ agent: { name: 'orchestrator' } }, { agent: { name: 'auditor', namespace: 'ops' } }]), [
      { spiffeID: id('agents', 'orchestrator'), rule: 'allow[0]: agent agents/orchestrator' },
      { spiffeID: id('ops', 'auditor'), rule: 'allow[1]: agent ops/auditor' },
    ]);
  });

  it('an agent that has no certificate yet, or does not exist, resolves to nobody', () => {
    assert.deepEqual(allowOf([{ agent: { name: 'fresh' } }, { agent: { name: 'ghost' } }]), []);
  });

  it('a selector without namespaceSelector stays in the identity namespace', () => {
    assert.deepEqual(allowOf([{ selector: { matchLabels: { role: 'auditor' } } }]), [
      { spiffeID: id('agents', 'auditor'), rule: 'allow[0]: selector role=auditor in namespace agents' },
    ]);
  });

  it('a selector with a namespaceSelector picks agents in matching namespaces only', () => {
    assert.deepEqual(allowOf([{ selector: { matchLabels: { role: 'auditor' } }, namespaceSelector: { matchLabels: { team: 'x' } } }]), [
      { spiffeID: id('ops', 'auditor'), rule: 'allow[0]: selector role=auditor in namespaces team=x' },
    ]);
  });

  it('an empty namespaceSelector means all namespaces', () => {
    assert.deepEqual(
      allowOf([{ selector: { matchLabels: { role: 'auditor' } }, namespaceSelector: {} }]).map((p) => p.spiffeID),
      [id('agents', 'auditor'), id('lab', 'auditor'), id('ops', 'auditor')],
    );
    assert.equal(allowOf([{ selector: {}, namespaceSelector: {} }])[0]!.rule, 'allow[0]: selector {} in all namespaces');
  });

  it('a namespaceSelector alone allows every issued agent in matching namespaces', () => {
    assert.deepEqual(allowOf([{ namespaceSelector: { matchLabels: { team: 'x' } } }]), [
      { spiffeID: id('ops', 'auditor'), rule: 'allow[0]: namespaceSelector team=x' },
      { spiffeID: id('ops', 'backup'), rule: 'allow[0]: namespaceSelector team=x' },
    ]);
    assert.equal(allowOf([{ namespaceSelector: {} }]).length, 5, 'every issued peer, the unissued one excepted');
  });

  it('namespaces can be selected by name through kubernetes.io/metadata.name, even when not listed', () => {
    const doc = compilePolicy(input({ allow: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'lab' } } }] }, { namespaces: [] }));
    assert.deepEqual(doc.allow.map((p) => p.spiffeID), [id('lab', 'auditor')]);
  });

  it('spiffeID rules allow any ID, including other trust domains', () => {
    assert.deepEqual(allowOf([{ spiffeID: 'spiffe://partner.example/ns/x/agent/y' }]), [
      { spiffeID: 'spiffe://partner.example/ns/x/agent/y', rule: 'allow[0]: spiffeID spiffe://partner.example/ns/x/agent/y' },
    ]);
  });

  it('deduplicates by SPIFFE ID keeping the first rule, and sorts by SPIFFE ID', () => {
    const allow = allowOf([
      { spiffeID: id('ops', 'auditor') },
      { selector: { matchLabels: { role: 'auditor' } }, namespaceSelector: {} },
      { agent: { name: 'auditor' } },
    ]);
    assert.deepEqual(allow, [
      { spiffeID: id('agents', 'auditor'), rule: 'allow[1]: selector role=auditor in all namespaces' },
      { spiffeID: id('lab', 'auditor'), rule: 'allow[1]: selector role=auditor in all namespaces' },
      { spiffeID: id('ops', 'auditor'), rule: `allow[0]: spiffeID ${id('ops', 'auditor')}` },
    ]);
  });

  it('malformed rules resolve to nobody and do not shift the indexes of the others', () => {
    const allow = allowOf([
      { agent: { name: 'orchestrator' }, spiffeID: id('x', 'y') } as unknown as PolicyRule,
      { spiffeID: 'https://not-spiffe' },
      { selector: { matchExpressions: [{ key: 'role', operator: 'In' }] } },
      { agent: { name: 'orchestrator' } },
    ]);
    assert.deepEqual(allow, [{ spiffeID: id('agents', 'orchestrator'), rule: 'allow[3]: agent agents/orchestrator' }]);
  });

  it('is deterministic: peer and namespace order do not change the bytes', () => {
    const policy: InboundPolicy = { allow: [{ namespaceSelector: {} }, { spiffeID: 'spiffe://partner.example/a' }] };
    const denyList: DenyListEntry[] = [
      { serialNumber: 'BB01', spiffeID: id('ops', 'backup'), notAfter: '2030-01-01T00:00:00Z', reason: 'Deleted' },
      { serialNumber: 'aa02', spiffeID: id('ops', 'auditor'), notAfter: '2030-01-01T00:00:00Z', reason: 'Suspended' },
    ];
    const a = input(policy, { denyList });
    const b = input(policy, { denyList: [...denyList].reverse() });
    b.peers.reverse();
    b.namespaces.reverse();
    assert.equal(encodePolicyDocument(compilePolicy(a)), encodePolicyDocument(compilePolicy(b)));
  });

  it('carries the deny list sorted, lowercased and deduplicated by serial', () => {
    const e = (serialNumber: string, reason: string): DenyListEntry => ({ serialNumber, spiffeID: id('ops', 'backup'), notAfter: '2030-01-01T00:00:00Z', reason });
    const doc = compilePolicy(input(undefined, { denyList: [e('CC', 'Suspended'), e('aa', 'Deleted'), e('cc', 'Deleted')] }));
    assert.deepEqual(doc.denyList.map((d) => [d.serialNumber, d.reason]), [['aa', 'Deleted'], ['cc', 'Suspended']]);
  });
});

describe('policyProblems', () => {
  it('is empty for a well-formed policy', () => {
    assert.deepEqual(policyProblems({ allow: [{ agent: { name: 'a' } }, { selector: {}, namespaceSelector: {} }, { namespaceSelector: {} }, { spiffeID: 'spiffe://td/x' }] }), []);
  });
  it('names each malformed rule by index', () => {
    const problems = policyProblems({
      allow: [
        {} as PolicyRule,
        { agent: { name: '' } },
        { spiffeID: 'spiffe://TD/x' },
        { namespaceSelector: { matchExpressions: [{ key: 'k', operator: 'Exists', values: ['v'] }] } },
        { selector: {}, namespaceSelector: { matchExpressions: [{ key: 'k', operator: 'In' }] } },
      ],
    });
    assert.equal(problems.length, 5);
    assert.match(problems[0]!, /^allow\[0\]: a rule must have exactly one of .* found none$/);
    assert.match(problems[1]!, /^allow\[1\]: agent\.name is required$/);
    assert.match(problems[2]!, /^allow\[2\]: invalid SPIFFE ID .*trust domain characters/);
    assert.match(problems[3]!, /^allow\[3\]: namespaceSelector: .*Exists takes no values/);
    assert.match(problems[4]!, /^allow\[4\]: namespaceSelector: .*In needs at least one value/);
  });
});

describe('compilePolicy: egress', () => {
  // Proxied: only the proxy's outbound side reads the host map, so only a proxied identity gets one.
  const withHosts = (policy: InboundPolicy) => {
    const base = input(policy);
    return input(policy, {
      identity: { ...base.identity, proxied: true },
      peers: [
        ...base.peers,
        { namespace: 'agents', name: 'search', labels: {}, spiffeID: id('agents', 'search'), dnsNames: ['Search.agents.svc', 'api.agents.svc'], clusterDomain: 'corp.local' },
        // Claims the conventional name of agents/auditor: the explicit claim wins.
        { namespace: 'agents', name: 'impostor', labels: {}, spiffeID: id('agents', 'impostor'), dnsNames: ['auditor.agents.svc'] },
        { namespace: 'far', name: 'other', labels: {}, spiffeID: 'spiffe://other.td/ns/far/agent/other', dnsNames: ['other.far.svc'] },
      ],
    });
  };

  it('an identity without a policy gets no egress section (its peers are not listed)', () => {
    assert.equal(compilePolicy(input()).egress, undefined);
  });

  it('an identity whose pods run the proxy (spec.proxy) gets the egress host map without any policy', () => {
    const base = withHosts({});
    const doc = compilePolicy({ ...base, identity: { ...base.identity, policy: undefined, proxied: true } });
    assert.equal(doc.mode, 'TrustDomain');
    assert.equal(doc.egress?.mode, 'TrustDomain');
    assert.ok(doc.egress?.destinations.some((d) => d.host === 'api.agents.svc' && d.spiffeID === id('agents', 'search')), JSON.stringify(doc.egress));
  });

  it('egress alone keeps inbound in TrustDomain mode; egress without allow is TrustDomain mode', () => {
    const doc = compilePolicy(withHosts({ egress: {} }));
    assert.equal(doc.mode, 'TrustDomain');
    assert.equal(doc.egress?.mode, 'TrustDomain');
    assert.deepEqual(doc.egress?.allow, []);
  });

  it('egress.allow resolves with the same rules, named egress.allow[i]', () => {
    const doc = compilePolicy(withHosts({ allow: [], egress: { allow: [{ agent: { name: 'search' } }, { selector: { matchLabels: { role: 'auditor' } } }] } }));
    assert.equal(doc.mode, 'AllowList');
    assert.deepEqual(doc.egress?.allow, [
      { spiffeID: id('agents', 'auditor'), rule: 'egress.allow[1]: selector role=auditor in namespace agents' },
      { spiffeID: id('agents', 'search'), rule: 'egress.allow[0]: agent agents/search' },
    ]);
  });

  it('destinations: dnsNames (lowercased) and <name>.<namespace>.svc[.<clusterDomain>] of issued identities of the trust domain; an explicit claim wins', () => {
    const hosts = compilePolicy(withHosts({ egress: {} })).egress!.destinations;
    const of = (host: string) => hosts.filter((d) => d.host === host).map((d) => d.spiffeID);
    assert.deepEqual(of('search.agents.svc'), [id('agents', 'search')]);
    assert.deepEqual(of('api.agents.svc'), [id('agents', 'search')]);
    assert.deepEqual(of('search.agents.svc.corp.local'), [id('agents', 'search')]);
    assert.deepEqual(of('orchestrator.agents.svc.cluster.local'), [id('agents', 'orchestrator')]);
    assert.deepEqual(of('auditor.agents.svc'), [id('agents', 'impostor')]);
    assert.deepEqual(of('auditor.agents.svc.cluster.local'), [id('agents', 'auditor')]);
    assert.deepEqual(of('fresh.agents.svc'), [], 'no certificate yet: no SPIFFE ID to expect');
    assert.deepEqual(of('other.far.svc'), [], 'another trust domain: the bundle could not verify it');
    assert.deepEqual(hosts, [...hosts].sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : a.spiffeID < b.spiffeID ? -1 : 1)));
  });

  it('an inbound-only policy of an identity whose pods do not run the proxy gets no host map: its document does not grow with the trust domain', () => {
    const base = withHosts({ allow: [{ agent: { name: 'search' } }] });
    const doc = compilePolicy({ ...base, identity: { ...base.identity, proxied: false } });
    assert.deepEqual(doc.allow.map((p) => p.spiffeID), [id('agents', 'search')]);
    assert.equal(doc.egress?.mode, 'TrustDomain');
    assert.deepEqual(doc.egress?.destinations, []);
  });

  it('an egress policy gets the host map even without spec.proxy: only a proxy enforces egress, run by hand or injected', () => {
    const base = withHosts({ egress: { allow: [{ agent: { name: 'search' } }] } });
    const doc = compilePolicy({ ...base, identity: { ...base.identity, proxied: false } });
    assert.equal(doc.egress?.mode, 'AllowList');
    assert.ok(doc.egress?.destinations.some((d) => d.host === 'api.agents.svc' && d.spiffeID === id('agents', 'search')));
  });

  it('two identities claiming one host are both listed (the proxy refuses it as ambiguous)', () => {
    const base = input({ egress: {} });
    const doc = compilePolicy({ ...base, identity: { ...base.identity, proxied: true }, peers: [
      { namespace: 'agents', name: 'a', labels: {}, spiffeID: id('agents', 'a'), dnsNames: ['x.agents.svc'] },
      { namespace: 'agents', name: 'b', labels: {}, spiffeID: id('agents', 'b'), dnsNames: ['x.agents.svc'] },
    ] });
    assert.deepEqual(doc.egress!.destinations.filter((d) => d.host === 'x.agents.svc').map((d) => d.spiffeID), [id('agents', 'a'), id('agents', 'b')]);
  });

  it('policyProblems names malformed egress rules as egress.allow[i]', () => {
    assert.deepEqual(policyProblems({ egress: { allow: [{ agent: { name: '' } }] } }), ['egress.allow[0]: agent.name is required']);
  });
});

describe('compilePolicy: rules that narrow (http, mcp, a2a)', () => {
  const orchestrator = id('agents', 'orchestrator');
  it('a peer named only by narrowing rules refers to them; the document becomes version 2', () => {
    const doc = compilePolicy(input({ allow: [
      { agent: { name: 'orchestrator' }, http: { paths: ['/mcp'] }, mcp: { tools: ['search'] } },
      { agent: { name: 'orchestrator' }, http: { methods: ['POST'], paths: ['/a2a'] }, a2a: { methods: ['message/send'] } },
      { agent: { name: 'auditor' } },
    ] }));
    assert.equal(doc.version, 2);
    assert.deepEqual(doc.allow, [
      { spiffeID: id('agents', 'auditor'), rule: 'allow[2]: agent agents/auditor' },
      { spiffeID: orchestrator, rule: 'allow[0]: agent agents/orchestrator', rules: [0, 1] },
    ]);
    assert.deepEqual(doc.narrowings, [
      { index: 0, rule: 'allow[0]: agent agents/orchestrator', http: { paths: ['/mcp'] }, mcp: { tools: ['search'] } },
      { index: 1, rule: 'allow[1]: agent agents/orchestrator', http: { methods: ['POST'], paths: ['/a2a'] }, a2a: { methods: ['message/send'] } },
    ]);
  });

  it('a peer any rule allows without narrowing may do anything: no rules, and narrowings nobody uses are left out', () => {
    const doc = compilePolicy(input({ allow: [{ agent: { name: 'orchestrator' }, mcp: { tools: ['search'] } }, { selector: { matchLabels: { role: 'orchestrator' } } }] }));
    assert.equal(doc.version, 1);
    assert.deepEqual(doc.allow, [{ spiffeID: orchestrator, rule: 'allow[0]: agent agents/orchestrator' }]);
    assert.equal(doc.narrowings, undefined);
  });

  it('egress rules narrow the same way', () => {
    const doc = compilePolicy(input({ egress: { allow: [{ agent: { name: 'orchestrator' }, mcp: { tools: ['search'], prompts: ['*'] } }] } }));
    assert.equal(doc.version, 2);
    assert.deepEqual(doc.egress?.allow, [{ spiffeID: orchestrator, rule: 'egress.allow[0]: agent agents/orchestrator', rules: [0] }]);
    assert.deepEqual(doc.egress?.narrowings, [{ index: 0, rule: 'egress.allow[0]: agent agents/orchestrator', mcp: { tools: ['search'], prompts: ['*'] } }]);
  });

  it('malformed narrowings resolve to nobody, and policyProblems says why', () => {
    const rules: PolicyRule[] = [
      { agent: { name: 'orchestrator' }, mcp: { tools: ['a'] }, a2a: { methods: ['b'] } },
      { agent: { name: 'orchestrator' }, http: {} },
      { agent: { name: 'orchestrator' }, http: { methods: ['get'] } },
      { agent: { name: 'orchestrator' }, http: { paths: ['mcp'] } },
      { agent: { name: 'orchestrator' }, mcp: {} },
      { agent: { name: 'orchestrator' }, mcp: { tools: ['cafe\u0301'] } },
      { agent: { name: 'orchestrator' }, a2a: {} as never },
    ];
    assert.deepEqual(compilePolicy(input({ allow: rules })).allow, []);
    assert.deepEqual(policyProblems({ allow: rules }), [
      'allow[0]: a rule may narrow mcp or a2a, not both: a route speaks one protocol (write two rules with http.paths)',
      'allow[1]: http must set methods, paths or both',
      'allow[2]: http.methods[0] "get": an HTTP method is uppercase letters, e.g. GET',
      'allow[3]: http.paths[0] "mcp": a path must start with /',
      'allow[4]: mcp must set tools, prompts or resources (["*"] for all)',
      'allow[5]: mcp.tools[0] "cafe\u0301": is not in Unicode NFC form',
      'allow[6]: a2a must set methods (["*"] for all)',
    ]);
  });
});
