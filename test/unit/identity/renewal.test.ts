import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renewalTime } from '../../../src/identity/renewal.ts';

const H = 3_600_000;
const v = (serial = '01') => ({ notBefore: new Date(0), notAfter: new Date(24 * H), serialNumber: serial });

test('default: 2/3 through the lifetime, minus at most 5% jitter', () => {
  const t = renewalTime({}, v()).getTime();
  assert.ok(t <= 16 * H && t >= 16 * H - 0.05 * 24 * H, `${t / H} h`);
});

test('renewBeforePercentage counts back from notAfter', () => {
  const t = renewalTime({ renewBeforePercentage: 25 }, v()).getTime();
  assert.ok(t <= 18 * H && t >= 18 * H - 0.05 * 24 * H);
});

test('renewBefore counts back from notAfter', () => {
  const t = renewalTime({ renewBefore: '2h' }, v()).getTime();
  assert.ok(t <= 22 * H && t >= 22 * H - 0.05 * 24 * H);
});

test('a renewBefore longer than the lifetime falls back to the default instead of looping', () => {
  const t = renewalTime({ renewBefore: '48h' }, v()).getTime();
  assert.ok(t > 0 && t <= 16 * H);
});

test('jitter is stable for a serial and spreads different serials', () => {
  assert.equal(renewalTime({}, v('aa')).getTime(), renewalTime({}, v('aa')).getTime());
  const times = new Set(Array.from({ length: 200 }, (_, i) => renewalTime({}, v(i.toString(16))).getTime()));
  assert.ok(times.size > 190, `${times.size} distinct renewal times for 200 serials`);
});

test('jitter is capped at 1 h for long lifetimes', () => {
  const long = { notBefore: new Date(0), notAfter: new Date(365 * 24 * H), serialNumber: 'ff' };
  const base = (365 * 24 * H * 2) / 3;
  const t = renewalTime({ duration: '8760h' }, long).getTime();
  assert.ok(t <= base && t >= base - H);
});

test('the back-dated notBefore does not pull renewal forward: the lifetime counts from issuance', () => {
  // Issued at 30 s with a 30 s back-date: notBefore 0, notAfter 30 s + 6 s.
  const v = { notBefore: new Date(0), notAfter: new Date(36_000), serialNumber: 'ab' };
  const t = renewalTime({ duration: '6s' }, v).getTime();
  assert.ok(t > 30_000 && t <= 34_000, `renews 2/3 through the 6 s asked for, at ${t} ms`);
});
