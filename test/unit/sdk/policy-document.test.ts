import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePolicyDocument } from '../../../src/sdk/policy-document.ts';

const planner = 'spiffe://cluster.local/ns/agents/agent/planner';
const valid = {
  version: 1,
  spiffeID: planner,
  mode: 'AllowList',
  trustDomain: 'cluster.local',
  allow: [{ spiffeID: 'spiffe://cluster.local/ns/agents/agent/orchestrator', rule: 'allow[0]: agent agents/orchestrator' }],
  denyList: [{ serialNumber: '00AB12', spiffeID: 'spiffe://cluster.local/ns/agents/agent/old', notAfter: '2030-01-01T00:00:00Z', reason: 'Deleted' }],
};
const text = (o: unknown) => JSON.stringify(o);

describe('parsePolicyDocument', () => {
  it('reads a valid document and normalises deny-list serials to the pki form', () => {
    const doc = parsePolicyDocument(text(valid));
    assert.equal(doc.mode, 'AllowList');
    assert.deepEqual(doc.allow, valid.allow);
    assert.equal(doc.denyList[0]!.serialNumber, 'ab12');
  });

  const broken: [string, unknown, RegExp][] = [
    ['not JSON', '{"version": 1,', /not valid JSON/],
    ['an array', [], /must be a JSON object/],
    ['another version', { ...valid, version: 3 }, /unsupported version 3; this SDK reads versions 1 and 2/],
    ['narrowings in a version 1 document', { ...valid, narrowings: [] }, /narrowings need document version 2/],
    ['a peer that refers to a missing narrowing', { ...valid, version: 2, allow: [{ ...valid.allow[0], rules: [4] }], narrowings: [] }, /refers to rule 4, which narrowings lacks/],
    ['a peer with rules but no narrowings', { ...valid, version: 2, allow: [{ ...valid.allow[0], rules: [0] }] }, /allow refers to rules but narrowings is missing/],
    ['a narrowing by something this SDK does not enforce', { ...valid, version: 2, allow: [{ ...valid.allow[0], rules: [0] }], narrowings: [{ index: 0, rule: 'allow[0]: x', grpc: { services: ['a'] } }] }, /narrows by grpc, which this SDK does not enforce/],
    ['an mcp narrowing with an unknown list', { ...valid, version: 2, allow: [{ ...valid.allow[0], rules: [0] }], narrowings: [{ index: 0, rule: 'allow[0]: x', mcp: { tools: ['a'], sampling: ['b'] } }] }, /narrowings\[0\]\.mcp has sampling, which this SDK does not enforce/],
    ['an a2a narrowing without methods', { ...valid, version: 2, allow: [{ ...valid.allow[0], rules: [0] }], narrowings: [{ index: 0, rule: 'allow[0]: x', a2a: {} }] }, /a2a\.methods must be a list/],
    ['an unknown mode', { ...valid, mode: 'Open' }, /mode must be AllowList or TrustDomain/],
    ['an invalid spiffeID', { ...valid, spiffeID: 'spiffe://cluster.local/ns/' }, /policy\.spiffeID: invalid SPIFFE ID/],
    ['a trust domain that is not the ID\'s', { ...valid, trustDomain: 'other.td' }, /trustDomain other\.td is not the trust domain of/],
    ['allow missing', { ...valid, allow: undefined }, /allow must be an array/],
    ['an allow entry without rule', { ...valid, allow: [{ spiffeID: planner }] }, /allow\[0\]\.rule must be a non-empty string/],
    ['an allow entry with a bad ID', { ...valid, allow: [{ spiffeID: 'spiffe://x/../y', rule: 'r' }] }, /allow\[0\]\.spiffeID: invalid SPIFFE ID/],
    ['a deny entry with a non-hex serial', { ...valid, denyList: [{ ...valid.denyList[0], serialNumber: 'zz' }] }, /denyList\[0\]\.serialNumber must be hexadecimal/],
    ['a deny entry that is not an object', { ...valid, denyList: ['ab'] }, /denyList\[0\] must be an object/],
  ];
  for (const [name, input, message] of broken) {
    it(`rejects ${name}`, () => assert.throws(() => parsePolicyDocument(typeof input === 'string' ? input : text(input)), message));
  }
});

describe('parsePolicyDocument: version 2 (narrowing rules)', () => {
  it('reads narrowings and the peers that refer to them, in both directions', () => {
    const narrowings = [{ index: 1, rule: 'allow[1]: agent agents/orchestrator', http: { paths: ['/mcp'] }, mcp: { tools: ['search'] } }];
    const egress = { mode: 'AllowList', allow: [{ spiffeID: planner, rule: 'egress.allow[0]: agent agents/planner', rules: [0] }], narrowings: [{ index: 0, rule: 'egress.allow[0]: agent agents/planner', a2a: { methods: ['message/send'] } }], destinations: [] };
    const doc = parsePolicyDocument(text({ ...valid, version: 2, allow: [{ ...valid.allow[0], rules: [1] }], narrowings, egress }));
    assert.equal(doc.version, 2);
    assert.deepEqual(doc.allow[0]!.rules, [1]);
    assert.deepEqual(doc.narrowings, narrowings);
    assert.deepEqual(doc.egress?.narrowings, egress.narrowings);
  });
});

describe('parsePolicyDocument: egress', () => {
  const egress = {
    mode: 'AllowList',
    allow: [{ spiffeID: 'spiffe://cluster.local/ns/agents/agent/search', rule: 'egress.allow[0]: agent agents/search' }],
    destinations: [{ host: 'search.agents.svc', spiffeID: 'spiffe://cluster.local/ns/agents/agent/search' }, { host: '*.tools.svc', spiffeID: planner }],
  };

  it('a document without egress (an older operator) still reads, with no egress', () => {
    assert.equal(parsePolicyDocument(text(valid)).egress, undefined);
  });

  it('reads egress', () => {
    assert.deepEqual(parsePolicyDocument(text({ ...valid, egress })).egress, egress);
  });

  const broken: [string, unknown, RegExp][] = [
    ['not an object', [], /egress must be an object/],
    ['an unknown mode', { ...egress, mode: 'Open' }, /egress\.mode must be AllowList or TrustDomain/],
    ['destinations missing', { ...egress, destinations: undefined }, /egress\.destinations must be an array/],
    ['an uppercase host', { ...egress, destinations: [{ host: 'Search.agents.svc', spiffeID: planner }] }, /egress\.destinations\[0\]\.host must be a lowercase DNS name/],
    ['a host with a port', { ...egress, destinations: [{ host: 'a.svc:80', spiffeID: planner }] }, /egress\.destinations\[0\]\.host must be a lowercase DNS name/],
    ['a bad SPIFFE ID', { ...egress, allow: [{ spiffeID: 'spiffe://x/../y', rule: 'r' }] }, /egress\.allow\[0\]\.spiffeID: invalid SPIFFE ID/],
  ];
  for (const [name, value, message] of broken) {
    it(`rejects egress with ${name}`, () => assert.throws(() => parsePolicyDocument(text({ ...valid, egress: value })), message));
  }
});
