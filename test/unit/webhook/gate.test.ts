// The admission gate: how many reviews run at once, who waits, who is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Gate, type Release } from '../../../src/webhook/gate.ts';

const MiB = 1 << 20;
const gate = (o: Partial<ConstructorParameters<typeof Gate>[0]> = {}) => new Gate({ maxInFlight: 2, maxBytes: 8 * MiB, maxQueued: 2, maxWaitMs: 60_000, ...o });
const settled = async <T>(p: Promise<T>): Promise<T | 'pending'> => Promise.race([p, new Promise<'pending'>((r) => setImmediate(() => r('pending')))]);

test('up to maxInFlight enter at once; the next waits and enters when one leaves, first come first served', async () => {
  const g = gate();
  const a = (await g.enter(1000))!;
  const b = (await g.enter(1000))!;
  assert.deepEqual([typeof a, typeof b], ['function', 'function']);
  const c = g.enter(1000);
  const d = g.enter(1000);
  assert.equal(await settled(c), 'pending');
  assert.deepEqual(g.load(), { inFlight: 2, bytes: 2000, queued: 2 });
  a();
  a(); // releasing twice frees one slot only
  assert.equal(typeof await settled(c), 'function');
  assert.equal(await settled(d), 'pending');
  b();
  assert.equal(typeof await settled(d), 'function');
});

test('a full line is refused at once', async () => {
  const g = gate({ maxInFlight: 1, maxQueued: 1 });
  await g.enter(1);
  void g.enter(1);
  assert.equal(await g.enter(1), undefined);
});

test('a review that waited maxWaitMs is refused and leaves the line', async () => {
  const g = gate({ maxInFlight: 1, maxWaitMs: 20 });
  const first = (await g.enter(1))!;
  assert.equal(await g.enter(1), undefined);
  assert.equal(g.load().queued, 0);
  first();
  assert.ok(await g.enter(1), 'room again');
});

test('bytes bound concurrency too: large bodies go a few at a time, but one always fits an idle gate', async () => {
  const g = gate({ maxInFlight: 32, maxBytes: 8 * MiB });
  const big = (await g.enter(3 * MiB))!;
  const big2 = (await g.enter(3 * MiB))!;
  const third = g.enter(3 * MiB);
  assert.equal(await settled(third), 'pending', '9 MiB would pass the 8 MiB budget');
  const small = g.enter(1000);
  assert.equal(await settled(small), 'pending', 'no overtaking the large one at the head');
  big();
  const [t, s] = await Promise.all([third, small]);
  assert.ok(t && s);
  for (const r of [big2, t, s] as Release[]) r();
  assert.ok(await gate({ maxBytes: MiB }).enter(3 * MiB), 'larger than the whole budget, alone');
});
