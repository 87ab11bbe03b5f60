import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { X509Certificate } from '@peculiar/x509';
import { issuedAt, validityWindow, DEFAULT_BACKDATE_MS } from '../../../src/pki/validity.ts';

const now = new Date('2030-01-01T00:00:00Z');
const issuerUntil = (ms: number) => [{ notAfter: new Date(now.getTime() + ms) } as X509Certificate];

test('a long window is back-dated by the full skew allowance', () => {
  const w = validityWindow(now, 24 * 3600_000, DEFAULT_BACKDATE_MS, issuerUntil(365 * 24 * 3600_000));
  assert.equal(now.getTime() - w.notBefore.getTime(), 30_000);
});

test('a window clamped by the issuer spends at most a tenth of itself in the past', () => {
  // The issuer expires in 6 s: the leaf gets 6 s, so at most 0.6 s of back-dating,
  // and a renewal scheduled 2/3 through its window still lands before expiry.
  const w = validityWindow(now, 3600_000, DEFAULT_BACKDATE_MS, issuerUntil(6000));
  assert.equal(w.notAfter.getTime(), now.getTime() + 6000);
  const back = now.getTime() - w.notBefore.getTime();
  assert.ok(back <= 1000, `back-dated ${back} ms`);
  const renewAt = w.notBefore.getTime() + ((w.notAfter.getTime() - w.notBefore.getTime()) * 2) / 3;
  assert.ok(renewAt < w.notAfter.getTime() && renewAt > now.getTime());
});

test('issuedAt inverts the window, whether the full back-date or the cap applied', () => {
  for (const [durationMs, issuerMs] of [[24 * 3600_000, 365 * 24 * 3600_000], [3600_000, 6000], [7000, 365 * 24 * 3600_000]]) {
    const w = validityWindow(now, durationMs!, DEFAULT_BACKDATE_MS, issuerUntil(issuerMs!));
    assert.ok(Math.abs(issuedAt(w).getTime() - now.getTime()) < 1000, `duration ${durationMs}, issuer ${issuerMs}: ${issuedAt(w).toISOString()}`);
  }
});
