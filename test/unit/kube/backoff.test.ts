import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay } from '../../../src/kube/backoff.ts';

const backoff = { baseMs: 100, maxMs: 1000 };
const noJitter = () => 0.5;

test('doubles from baseMs with each failure, then stays at maxMs', () => {
  const delays = [1, 2, 3, 4, 5, 6].map((failures) => backoffDelay(failures, backoff, noJitter));
  assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000]);
});

test('jitter moves the delay by at most 10% either way', () => {
  assert.equal(backoffDelay(3, backoff, () => 0), 360);
  assert.equal(backoffDelay(3, backoff, () => 0.999999), 440);
});

test('jitter never pushes the delay above maxMs', () => {
  // 800 * 1.1 = 880 would exceed the cap.
  assert.equal(backoffDelay(4, { baseMs: 100, maxMs: 850 }, () => 0.999999), 850);
});

test('a key that has failed for a very long time still gets a finite, capped delay', () => {
  assert.equal(backoffDelay(100_000, backoff, noJitter), 1000);
});

test('a backoff can set its own jitter', () => {
  assert.equal(backoffDelay(3, { ...backoff, jitter: 0.2 }, () => 0), 320);
  assert.equal(backoffDelay(3, { ...backoff, jitter: 0 }, () => 0), 400);
});

test('retries that all reached the cap still spread out below it', () => {
  assert.equal(backoffDelay(50, backoff, () => 0), 900);
});
