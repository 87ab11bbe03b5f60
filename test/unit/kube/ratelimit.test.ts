import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from '../../../src/kube/ratelimit.ts';

/** A bucket on a clock the test moves. */
function bucket(qps: number, burst: number) {
  let now = 1_000;
  const b = new TokenBucket({ qps, burst }, () => now);
  return { take: () => b.take(), advance: (ms: number) => { now += ms; } };
}

test('a full bucket lets burst requests go at once, then one per 1/qps seconds', () => {
  const b = bucket(10, 3);
  assert.deepEqual([b.take(), b.take(), b.take()], [0, 0, 0]);
  // Waiters queue: each takes the next token to come, 100 ms apart.
  assert.deepEqual([b.take(), b.take(), b.take()], [100, 200, 300]);
});

test('tokens come back at qps, never above burst', () => {
  const b = bucket(10, 3);
  for (let i = 0; i < 3; i++) b.take();
  b.advance(200);
  assert.deepEqual([b.take(), b.take(), b.take()], [0, 0, 100]);
  b.advance(60_000);
  assert.deepEqual([b.take(), b.take(), b.take(), b.take()], [0, 0, 0, 100], 'a long quiet spell refills to burst, no more');
});

test('promised tokens are paid back before new requests go', () => {
  const b = bucket(2, 1);
  assert.equal(b.take(), 0);
  assert.equal(b.take(), 500);
  assert.equal(b.take(), 1000);
  // After 1 s, the two promised tokens are due, the bucket is empty again.
  b.advance(1000);
  assert.equal(b.take(), 500);
});

test('the long-run rate is qps, whatever the burst', () => {
  const b = bucket(20, 30);
  let last = 0;
  for (let i = 0; i < 230; i++) last = b.take();
  // 30 from the bucket, 200 more at 20 per second.
  assert.equal(last, 10_000);
});

test('a rate that cannot pace is refused', () => {
  assert.throws(() => new TokenBucket({ qps: 0, burst: 1 }), RangeError);
  assert.throws(() => new TokenBucket({ qps: 5, burst: 0 }), RangeError);
  assert.throws(() => new TokenBucket({ qps: Infinity, burst: 1 }), RangeError);
});
