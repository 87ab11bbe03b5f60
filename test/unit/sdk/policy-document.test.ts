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
    ['another version', { ...valid, version: 2 }, /unsupported version 2/],
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
