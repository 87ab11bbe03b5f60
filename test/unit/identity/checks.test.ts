import { test } from 'node:test';
import assert from 'node:assert/strict';
import { firstViolation } from '../../../src/controller/checks.ts';
import { CHECKS, type CheckInput, type ObservedSecret } from '../../../src/identity/checks.ts';
import { SpiffeID } from '../../../src/pki/spiffeid.ts';

const needsIssuance = (i: CheckInput) => firstViolation(CHECKS, i);

const now = new Date('2026-01-01T12:00:00Z');
const good: ObservedSecret = {
  exists: true, missingKeys: [],
  leaf: { spiffeID: 'spiffe://td/ns/a/agent/x', dnsNames: ['x.a.svc'], notBefore: new Date('2026-01-01T00:00:00Z'), notAfter: new Date('2026-01-02T00:00:00Z'), serialNumber: 'ab' },
  key: { algorithm: 'ECDSA', size: 256 }, keyMatchesLeaf: true, trust: { ok: true },
};
const input = (secret: Partial<ObservedSecret> = {}, over: Partial<CheckInput> = {}): CheckInput => ({
  secret: { ...good, ...secret },
  desired: { spiffeID: SpiffeID.parse('spiffe://td/ns/a/agent/x'), dnsNames: ['x.a.svc'], key: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' } },
  renewalTime: new Date('2026-01-01T16:00:00Z'), now, ...over,
});

test('a good Secret needs nothing', () => {
  assert.equal(needsIssuance(input()), undefined);
});

const cases: Array<[string, CheckInput, string]> = [
  ['no Secret', input({ exists: false, missingKeys: ['tls.crt', 'tls.key'] }), 'SecretDoesNotExist'],
  ['missing tls.key', input({ missingKeys: ['tls.key'] }), 'SecretIsMissingData'],
  ['unparsable certificate', input({ leaf: undefined, leafError: 'bad' }), 'SecretCertificateUnparsable'],
  ['unparsable key', input({ key: undefined, keyError: 'bad' }), 'SecretKeyUnparsable'],
  ['key does not match', input({ keyMatchesLeaf: false }), 'SecretPublicKeyMismatch'],
  ['other SPIFFE ID', input({ leaf: { ...good.leaf!, spiffeID: 'spiffe://td/ns/a/agent/y' } }), 'SpiffeIDMismatch'],
  ['DNS names differ', input({ leaf: { ...good.leaf!, dnsNames: [] } }), 'DNSNamesMismatch'],
  ['untrusted issuer', input({ trust: { ok: false, reason: 'signed by another CA' } }), 'IssuerNotTrusted'],
  ['other algorithm', input({ key: { algorithm: 'RSA', size: 2048 } }), 'KeyAlgorithmMismatch'],
  ['other key size', input({ key: { algorithm: 'ECDSA', size: 384 } }), 'KeyAlgorithmMismatch'],
  ['expired', input({}, { now: new Date('2026-01-02T00:00:01Z'), renewalTime: new Date('2026-01-01T16:00:00Z') }), 'Expired'],
  ['renewal time reached', input({}, { now: new Date('2026-01-01T16:00:00Z') }), 'Renewing'],
];

for (const [name, i, reason] of cases) {
  test(`${name} → ${reason}`, () => {
    const v = needsIssuance(i);
    assert.equal(v?.reason, reason);
    assert.ok(v!.message.length > 10, 'the message explains');
  });
}

test('order matters: the first violation wins', () => {
  // Missing Secret and a wrong SPIFFE ID: the Secret check comes first.
  const v = needsIssuance(input({ exists: false, missingKeys: ['tls.crt'], leaf: { ...good.leaf!, spiffeID: 'x' } }));
  assert.equal(v?.reason, 'SecretDoesNotExist');
  assert.equal(CHECKS[0]!.name, 'secretDoesNotExist');
});

test('DNS names compare as sets', () => {
  assert.equal(needsIssuance(input({ leaf: { ...good.leaf!, dnsNames: ['b', 'a'] } }, { desired: { ...input().desired, dnsNames: ['a', 'b'] } })), undefined);
});

test('messages never carry key material', () => {
  for (const [, i] of cases) assert.doesNotMatch(needsIssuance(i)!.message, /PRIVATE KEY/);
});
