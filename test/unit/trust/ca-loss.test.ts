import { test } from 'node:test';
import assert from 'node:assert/strict';
import { onCASecretNotFound, recordedRootsOf } from '../../../src/trust/ca-loss.ts';
import { readCAState, writeCAState, type CAState } from '../../../src/ca/state.ts';
import { createRoot } from '../../../src/pki/ca.ts';
import { parseCertificates, fingerprintOf } from '../../../src/pki/parse.ts';

const held: CAState = { root: { certificatePem: 'root', privateKeyPem: 'key' } };

test('a 404 generates a CA only for a TrustDomain that never recorded a root', () => {
  assert.deepEqual(onCASecretNotFound({ recordedRoots: [] }), { kind: 'Generate' });
  assert.deepEqual(onCASecretNotFound({ recordedRoots: [], requested: 'x' }), { kind: 'Generate' });
  assert.deepEqual(onCASecretNotFound({ recordedRoots: ['sha256:a'] }), { kind: 'Hold' });
});

test('a lost CA is restored from memory when held, whatever the annotation says', () => {
  assert.deepEqual(onCASecretNotFound({ recordedRoots: ['sha256:a'], held }), { kind: 'Restore', state: held });
  assert.deepEqual(onCASecretNotFound({ recordedRoots: ['sha256:a'], held, requested: 'now' }), { kind: 'Restore', state: held });
});

test('without a copy, only a new rotate request value replaces the lost CA', () => {
  assert.deepEqual(onCASecretNotFound({ recordedRoots: ['sha256:a'], requested: 'r2', lastRequest: 'r1' }), { kind: 'Replace', request: 'r2' });
  assert.deepEqual(onCASecretNotFound({ recordedRoots: ['sha256:a'], requested: 'r1', lastRequest: 'r1' }), { kind: 'Hold' }, 'an answered request is not a new one');
});

test('only recorded roots are kept from the bundle copies, once each, in recorded order', async () => {
  const now = new Date('2026-01-01T00:00:00Z');
  const [a, b, c] = await Promise.all([0, 1, 2].map(async () => parseCertificates((await createRoot({ trustDomain: 'cluster.local', algorithm: 'ECDSA', validityMs: 3_600_000, now })).certificatePem)[0]!));
  const [fa, fb] = [await fingerprintOf(a!), await fingerprintOf(b!)];
  const kept = await recordedRootsOf([fb, fa, 'sha256:gone'], [a!, c!, a!, b!], fingerprintOf);
  assert.deepEqual(await Promise.all(kept.map(fingerprintOf)), [fb, fa], 'the unrecorded root c was not smuggled in');
});

test('a rootless CA state round-trips only while a new root is being published', () => {
  const base = { namespace: 'ops', trustDomainObject: 'default' };
  const replacing: CAState = {
    incoming: { certificatePem: 'new-root', privateKeyPem: 'new-key' }, retiringPem: 'old-root',
    rotation: { phase: 'PublishingRoot', reason: 'CASecretLost', startedAt: 't', phaseStartedAt: 't' }, lastRotationRequest: 'r',
  };
  const secret = writeCAState(base, replacing);
  assert.equal(secret.data!['root.key'], undefined);
  assert.deepEqual(readCAState(secret), { ...replacing, root: undefined, intermediate: undefined });
  const stuck = writeCAState(base, { ...replacing, rotation: { ...replacing.rotation!, phase: 'ReissuingLeaves' } });
  assert.equal(readCAState(stuck), undefined, 'past PublishingRoot a CA needs its root');
  assert.equal(readCAState(writeCAState(base, { retiringPem: 'old-root' })), undefined, 'no root and nothing incoming is not usable');
});
