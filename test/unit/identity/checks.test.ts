import { test } from 'node:test';
import assert from 'node:assert/strict';
import { firstViolation } from '../../../src/controller/checks.ts';
import { CHECKS, type CheckInput, type ObservedSecret } from '../../../src/identity/checks.ts';
import { SpiffeID } from '../../../src/pki/spiffeid.ts';
import { generateKeyPairSync } from 'node:crypto';
import type { Secret } from '../../../src/api/types.ts';
import { observeSecret } from '../../../src/identity/observe.ts';
import { privateKeyToPem } from '../../../src/pki/keys.ts';
import { certificatesToPem } from '../../../src/pki/pem.ts';
import { hierarchy, leafFrom, NOW } from '../pki/fixtures.ts';

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

// Key material reaches the checks only through what observe.ts makes of a Secret: feed it
// Secrets whose keys are where a certificate belongs, cut short, or of a kind we refuse,
// and read every check's message, not only the first.
test('messages never carry key material, whatever the Secret holds', async () => {
  const { intermediate, root } = await hierarchy();
  const { issued, key } = await leafFrom(intermediate);
  const keyPem = await privateKeyToPem(key);
  const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const secrets: Record<string, Record<string, string>> = {
    'a key where the certificate goes': { 'tls.crt': keyPem, 'tls.key': keyPem },
    'a key cut short': { 'tls.crt': issued.certificatePem, 'tls.key': keyPem.slice(0, 120) },
    'a key of a kind we refuse': { 'tls.crt': issued.certificatePem, 'tls.key': rsa1024 },
    'certificate and key swapped': { 'tls.crt': keyPem, 'tls.key': issued.certificatePem },
  };
  const bundle = { roots: [root.certificate], pem: certificatesToPem([root.certificate]) };
  // Any 24 characters of a key's base64 body would be a leak.
  const bodyOf = (pem: string) => pem.replace(/-----[^-]+-----/g, '').replace(/\s/g, '');
  const slices = (pem: string) => Array.from({ length: Math.floor(bodyOf(pem).length / 24) }, (_, i) => bodyOf(pem).slice(i * 24, i * 24 + 24));
  for (const [name, data] of Object.entries(secrets)) {
    const secret: Secret = { metadata: { name: 's', namespace: 'a', uid: name, resourceVersion: '1' }, data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])) };
    const { observed } = await observeSecret(secret, bundle, NOW);
    const messages = CHECKS.map((check) => check(input({}, { secret: observed, now: NOW }))).filter((v) => v !== undefined).map((v) => v.message);
    assert.ok(messages.length > 0, `${name}: something is violated`);
    for (const message of messages) {
      assert.doesNotMatch(message, /PRIVATE KEY|BEGIN/, `${name}: ${message}`);
      for (const slice of [...slices(keyPem), ...slices(rsa1024)]) assert.ok(!message.includes(slice), `${name}: "${message}" quotes the key`);
    }
  }
});
