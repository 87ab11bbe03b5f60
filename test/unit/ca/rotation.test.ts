import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nextStep, phaseStep, rotationReissueTime, type RotationConfig, type RotationInput } from '../../../src/ca/rotation.ts';
import { onExternalSigner } from '../../../src/trust/external.ts';
import { pruned, withEntries, emptyDenyList, nextExpiry } from '../../../src/trust/denylist.ts';

const H = 3_600_000;
const cfg: RotationConfig = { rotateAtFraction: 2 / 3, intermediateRenewFraction: 2 / 3, propagationDelayMs: 60_000, reissueWindowMs: H, graceMs: H, pollMs: 10_000 };
const at = (h: number) => new Date(h * H);
const base: RotationInput = {
  now: at(10),
  root: { notBefore: at(0), notAfter: at(300) },
  intermediate: { notBefore: at(0), notAfter: at(90), issuedByRoot: true },
  bundleCopies: { total: 4, updated: 4 },
  leavesOnRetiring: 0,
};

test('steady: waits until the earlier of root rotation and intermediate renewal', () => {
  const s = nextStep(base, cfg);
  assert.equal(s.kind, 'Wait');
  assert.equal((s as { afterMs: number }).afterMs, 60 * H - 10 * H);
});

test('the intermediate renews 2/3 through, or when missing or not under the active root', () => {
  assert.equal(nextStep({ ...base, now: at(60) }, cfg).kind, 'RenewIntermediate');
  assert.equal(nextStep({ ...base, intermediate: undefined }, cfg).kind, 'RenewIntermediate');
  assert.equal(nextStep({ ...base, intermediate: { ...base.intermediate!, issuedByRoot: false } }, cfg).kind, 'RenewIntermediate');
});

test('the root rotates 2/3 through its life, or when a new request value appears', () => {
  assert.deepEqual(nextStep({ ...base, now: at(200) }, cfg), { kind: 'StartRotation', reason: 'Scheduled' });
  assert.deepEqual(nextStep({ ...base, requested: 'x', lastRequest: 'w' }, cfg), { kind: 'StartRotation', reason: 'Requested' });
  assert.equal(nextStep({ ...base, requested: 'x', lastRequest: 'x' }, cfg).kind, 'Wait', 'an answered request is not repeated');
});

test('PublishingRoot switches only when every copy carries the new root and the propagation delay passed', () => {
  const pub = { ...base, rotation: { phase: 'PublishingRoot' as const, phaseStartedAt: at(10) } };
  assert.match((nextStep({ ...pub, bundleCopies: { total: 4, updated: 3 } }, cfg) as { why: string }).why, /3 of 4 bundle copies/);
  assert.equal(nextStep({ ...pub, now: new Date(at(10).getTime() + 30_000) }, cfg).kind, 'Wait');
  assert.equal(nextStep({ ...pub, now: new Date(at(10).getTime() + 60_000) }, cfg).kind, 'SwitchSigner');
});

test('PublishingRoot of a TrustDomain with a bundle endpoint also waits its refresh hint, for partners', () => {
  const pub = { ...base, rotation: { phase: 'PublishingRoot' as const, phaseStartedAt: at(10) }, partnerRefreshMs: 300_000 };
  const after = (ms: number) => nextStep({ ...pub, now: new Date(at(10).getTime() + ms) }, cfg);
  const waiting = after(60_000) as { kind: string; afterMs: number; why: string };
  assert.equal(waiting.kind, 'Wait', 'the propagation delay alone is not enough');
  assert.equal(waiting.afterMs, 300_000);
  assert.match(waiting.why, /federation partners/);
  assert.equal(after(359_999).kind, 'Wait');
  assert.equal(after(360_000).kind, 'SwitchSigner');
  assert.equal(phaseStep(pub.rotation, { now: new Date(at(10).getTime() + 60_000), bundleCopies: base.bundleCopies, leavesOnRetiring: 0, partnerRefreshMs: 300_000 }, cfg).kind, 'Wait', 'a brought-in CA waits the same');
});

test('ReissuingLeaves waits for every leaf; RetiringRoot waits out the grace period', () => {
  const re = { ...base, rotation: { phase: 'ReissuingLeaves' as const, phaseStartedAt: at(10) } };
  assert.equal(nextStep({ ...re, leavesOnRetiring: 2 }, cfg).kind, 'Wait');
  assert.equal(nextStep(re, cfg).kind, 'RetireRoot');
  const ret = { ...base, rotation: { phase: 'RetiringRoot' as const, phaseStartedAt: at(10) } };
  assert.equal(nextStep({ ...ret, now: at(10.5) }, cfg).kind, 'Wait');
  assert.equal(nextStep({ ...ret, now: at(11) }, cfg).kind, 'FinishRotation');
});

test('re-issue times spread over the window', () => {
  assert.equal(rotationReissueTime(at(1), H, 0).getTime(), at(1).getTime());
  assert.equal(rotationReissueTime(at(1), H, 0.5).getTime(), at(1.5).getTime());
});

test('an external signer: adopted first time, silently when its roots are known, overlapped otherwise', () => {
  const first = onExternalSigner(undefined, 'sig-a', { pem: 'A', fingerprints: ['ra'] }, new Set(), 't0');
  assert.deepEqual(first, { signer: 'sig-a', rootsPem: 'A' });
  assert.equal(onExternalSigner(first, 'sig-a', { pem: 'A', fingerprints: ['ra'] }, new Set(['ra']), 't1'), undefined, 'nothing changed');
  assert.deepEqual(onExternalSigner(first, 'sig-a2', { pem: 'A', fingerprints: ['ra'] }, new Set(['ra']), 't1'), { signer: 'sig-a2', rootsPem: 'A' }, 'new intermediate, same root');
  const changed = onExternalSigner(first, 'sig-b', { pem: 'B', fingerprints: ['rb'] }, new Set(['ra']), 't2')!;
  assert.equal(changed.signer, 'sig-a', 'the old signer stays until the new roots are everywhere');
  assert.equal(changed.incomingSigner, 'sig-b');
  assert.equal(changed.rotation?.phase, 'PublishingRoot');
  assert.equal(onExternalSigner(changed, 'sig-c', { pem: 'C', fingerprints: ['rc'] }, new Set(['ra']), 't3'), undefined, 'one rotation at a time');
});

test('deny list: deduplicated, sorted, pruned after expiry', () => {
  const e = (serialNumber: string, notAfter: string) => ({ serialNumber, spiffeID: 'spiffe://td/x', notAfter, reason: 'Suspended' });
  let l = withEntries(emptyDenyList('td'), [e('bb', '2030-01-01T00:00:00Z'), e('aa', '2020-01-01T00:00:00Z')]);
  l = withEntries(l, [e('bb', '2031-01-01T00:00:00Z')]);
  assert.deepEqual(l.entries.map((x) => x.serialNumber), ['aa', 'bb']);
  assert.equal(l.entries[1]!.notAfter, '2030-01-01T00:00:00Z', 'the first entry for a serial wins');
  assert.deepEqual(pruned(l, new Date('2025-01-01T00:00:00Z')).entries.map((x) => x.serialNumber), ['bb']);
  assert.equal(nextExpiry(l)?.toISOString(), '2020-01-01T00:00:00.000Z');
});
