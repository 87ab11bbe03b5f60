import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { requeue, wait, WorkQueue, type Result } from '../../../src/controller/queue.ts';
import type { Reconciler } from '../../../src/controller/queue.ts';

const DAY = 86_400_000;

// Time is mocked (setTimeout and Date) in every test, starting at 0; only
// setImmediate is real, and it is used to let pending promise callbacks run.
function fakeTime(t: TestContext): (ms: number) => Promise<void> {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
  return async (ms) => {
    t.mock.timers.tick(ms);
    await flush();
  };
}

function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

interface Failure {
  key: string;
  attempt: number;
  retryInMs: number;
}

test('a key added 10 times while it waits is reconciled once', async (t) => {
  fakeTime(t);
  const release = Promise.withResolvers<void>();
  const calls: string[] = [];
  const queue = new WorkQueue(
    async (key) => {
      calls.push(key);
      if (key === 'blocker') await release.promise;
    },
    { concurrency: 1 },
  );

  queue.add('blocker');
  for (let i = 0; i < 10; i++) queue.add('a');
  assert.equal(queue.depth(), 2);

  release.resolve();
  await queue.drain();
  await flush();
  assert.deepEqual(calls, ['blocker', 'a']);
});

test('a key added while it runs runs exactly once more afterwards, never alongside itself', async (t) => {
  fakeTime(t);
  let gate = Promise.withResolvers<void>();
  let calls = 0;
  let running = 0;
  let maxRunning = 0;
  const queue = new WorkQueue(
    async () => {
      calls++;
      running++;
      maxRunning = Math.max(maxRunning, running);
      await gate.promise;
      running--;
    },
    { concurrency: 4 },
  );

  queue.add('a');
  await flush();
  assert.equal(calls, 1);

  queue.add('a');
  queue.add('a');
  queue.add('a');
  await flush();
  assert.equal(calls, 1, 'no second reconcile while the first still runs');
  assert.equal(queue.depth(), 1);

  const first = gate;
  gate = Promise.withResolvers<void>();
  first.resolve();
  await flush();
  assert.equal(calls, 2, 'runs again once the first reconcile ends');

  gate.resolve();
  await queue.drain();
  assert.equal(calls, 2);
  assert.equal(maxRunning, 1);
});

test('no more than `concurrency` reconciles run at once', async (t) => {
  fakeTime(t);
  let calls = 0;
  let running = 0;
  let maxRunning = 0;
  const queue = new WorkQueue(
    async () => {
      calls++;
      running++;
      maxRunning = Math.max(maxRunning, running);
      await flush();
      running--;
    },
    { concurrency: 3 },
  );

  for (let i = 0; i < 10; i++) queue.add(`k${i}`);
  await queue.drain();

  assert.equal(calls, 10);
  // Exactly 3: the bound holds, and the queue does use the parallelism.
  assert.equal(maxRunning, 3);
});

test('retry delays double per failure, cap at maxMs, and start over after a success', async (t) => {
  const advance = fakeTime(t);
  t.mock.method(Math, 'random', () => 0.5); // no jitter, so delays are exact
  let failing = true;
  let calls = 0;
  const failures: Failure[] = [];
  const queue = new WorkQueue(
    async () => {
      calls++;
      if (failing) throw new Error('boom');
    },
    {
      concurrency: 1,
      backoff: { baseMs: 100, maxMs: 1000 },
      onError: (key, _err, attempt, retryInMs) => failures.push({ key, attempt, retryInMs }),
    },
  );

  queue.add('a');
  await flush();
  for (let i = 0; i < 5; i++) {
    const wait = failures.at(-1)!.retryInMs;
    await advance(wait - 1);
    assert.equal(calls, i + 1, `retry ${i + 1} must not come early`);
    await advance(1);
    assert.equal(calls, i + 2, `retry ${i + 1} comes after ${wait} ms`);
  }
  assert.deepEqual(
    failures.map((f) => f.retryInMs),
    [100, 200, 400, 800, 1000, 1000],
  );
  assert.deepEqual(
    failures.map((f) => f.attempt),
    [1, 2, 3, 4, 5, 6],
  );

  failing = false;
  await advance(1000);
  assert.equal(calls, 7);
  assert.equal(failures.length, 6);

  failing = true;
  queue.add('a');
  await flush();
  assert.deepEqual(failures.at(-1), { key: 'a', attempt: 1, retryInMs: 100 });
});

test('retry delays carry ±10% jitter', async (t) => {
  fakeTime(t);
  const randoms = [0, 0.999999];
  t.mock.method(Math, 'random', () => randoms.shift());
  const delays: number[] = [];
  const queue = new WorkQueue(
    async () => {
      throw new Error('boom');
    },
    { concurrency: 2, backoff: { baseMs: 100, maxMs: 1000 }, onError: (_key, _err, _attempt, ms) => delays.push(ms) },
  );

  queue.add('a');
  queue.add('b');
  await queue.drain();
  assert.deepEqual(delays, [90, 110]);
});

test('a failing key waiting out its backoff does not hold back other keys', async (t) => {
  const advance = fakeTime(t);
  t.mock.method(Math, 'random', () => 0.5);
  const calls: Array<[string, number]> = [];
  const queue = new WorkQueue(
    async (key) => {
      calls.push([key, Date.now()]);
      if (key === 'bad') throw new Error('boom');
    },
    { concurrency: 1, backoff: { baseMs: 1000, maxMs: 60_000 } },
  );

  queue.add('bad');
  await flush();
  queue.add('good1');
  queue.add('good2');
  await flush();
  assert.deepEqual(calls, [
    ['bad', 0],
    ['good1', 0],
    ['good2', 0],
  ]);
  assert.equal(queue.depth(), 0, 'the waiting retry holds no worker');

  await advance(1000);
  assert.deepEqual(calls.at(-1), ['bad', 1000]);
});

test('addAfter keeps the earliest deadline and fires then, once', async (t) => {
  const advance = fakeTime(t);
  const calls: Array<[string, number]> = [];
  const queue = new WorkQueue(
    async (key) => {
      calls.push([key, Date.now()]);
    },
    { concurrency: 1 },
  );

  queue.addAfter('a', 5000);
  queue.addAfter('a', 2000);
  queue.addAfter('a', 8000);
  await advance(1999);
  assert.deepEqual(calls, []);
  await advance(1);
  assert.deepEqual(calls, [['a', 2000]]);
  await advance(10_000);
  assert.equal(calls.length, 1, 'the later deadlines were folded into the earlier one');
});

test('a 40-day delay fires at 40 days, not earlier, from a short chain of timers', async (t) => {
  const advance = fakeTime(t);
  const setTimeoutSpy = t.mock.method(globalThis, 'setTimeout');
  const calls: number[] = [];
  const queue = new WorkQueue(
    async () => {
      calls.push(Date.now());
    },
    { concurrency: 1 },
  );

  queue.addAfter('a', 40 * DAY);
  // A single setTimeout above 2^31-1 ms fires after 1 ms; the mocked timers do the same.
  await advance(1);
  assert.deepEqual(calls, []);
  await advance(DAY - 1);
  for (let day = 1; day < 39; day++) await advance(DAY);
  await advance(DAY - 1);
  assert.deepEqual(calls, [], 'nothing before 40 days');
  await advance(1);
  assert.deepEqual(calls, [40 * DAY]);
  // Re-checking the clock every 1 ms would also be correct, but would spin.
  const delays = setTimeoutSpy.mock.calls.map((call) => Number(call.arguments[1]));
  assert.ok(Math.max(...delays) <= 2 ** 31 - 1, `every delay fits a timer: ${delays.join(', ')}`);
  assert.ok(delays.length <= 40, `${delays.length} timers for one delayed add`);
});

test('reconcile starts are not paced: only concurrency bounds them', async (t) => {
  fakeTime(t);
  let running = 0;
  let most = 0;
  let done = 0;
  const queue = new WorkQueue(
    async () => {
      most = Math.max(most, ++running);
      await flush();
      running--;
      done++;
    },
    { concurrency: 4 },
  );
  for (let i = 0; i < 100; i++) queue.add(`k${i}`);
  // No clock moves: cheap reconciles run back to back, four at a time.
  await queue.drain();
  assert.equal(done, 100);
  assert.equal(most, 4);
});

test('forget cancels a delayed add and clears the failure count', async (t) => {
  const advance = fakeTime(t);
  t.mock.method(Math, 'random', () => 0.5);
  let failing = false;
  let calls = 0;
  const failures: Failure[] = [];
  const queue = new WorkQueue(
    async () => {
      calls++;
      if (failing) throw new Error('boom');
    },
    { concurrency: 1, backoff: { baseMs: 100, maxMs: 1000 }, onError: (key, _e, attempt, retryInMs) => failures.push({ key, attempt, retryInMs }) },
  );

  queue.addAfter('a', 1000);
  queue.forget('a');
  await advance(5000);
  assert.equal(calls, 0);

  failing = true;
  queue.add('a');
  await flush();
  await advance(100);
  assert.deepEqual(failures.at(-1), { key: 'a', attempt: 2, retryInMs: 200 });
  queue.forget('a');
  await advance(5000);
  assert.equal(calls, 2, 'the pending retry was dropped');
  queue.add('a');
  await flush();
  assert.deepEqual(failures.at(-1), { key: 'a', attempt: 1, retryInMs: 100 });
});

test('requeueAfter schedules the key again and resets its failure count', async (t) => {
  const advance = fakeTime(t);
  t.mock.method(Math, 'random', () => 0.5);
  let outcome: 'fail' | 'requeue' = 'fail';
  const calls: number[] = [];
  const failures: Failure[] = [];
  const queue = new WorkQueue(
    async () => {
      calls.push(Date.now());
      if (outcome === 'fail') throw new Error('boom');
      return { requeueAfter: 5000 };
    },
    { concurrency: 1, backoff: { baseMs: 100, maxMs: 1000 }, onError: (key, _e, attempt, retryInMs) => failures.push({ key, attempt, retryInMs }) },
  );

  queue.add('a');
  await flush();
  await advance(100);
  assert.equal(failures.at(-1)?.attempt, 2);

  outcome = 'requeue';
  await advance(200);
  assert.deepEqual(calls, [0, 100, 300]);
  outcome = 'fail';
  await advance(4999);
  assert.equal(calls.length, 3);
  await advance(1);
  assert.deepEqual(calls, [0, 100, 300, 5300]);
  assert.deepEqual(failures.at(-1), { key: 'a', attempt: 1, retryInMs: 100 });
});

test('backoff: true retries after the key\'s backoff without counting as an error; a sooner requeueAfter wins; a plain result resets it', async (t) => {
  const advance = fakeTime(t);
  t.mock.method(Math, 'random', () => 0.5);
  let result: { requeueAfter?: number; backoff?: boolean } = { backoff: true };
  const calls: number[] = [];
  const failures: Failure[] = [];
  const queue = new WorkQueue(
    async () => {
      calls.push(Date.now());
      return result;
    },
    { concurrency: 1, backoff: { baseMs: 100, maxMs: 1000 }, onError: (key, _e, attempt, retryInMs) => failures.push({ key, attempt, retryInMs }) },
  );

  queue.add('a');
  await flush();
  await advance(100);
  await advance(200);
  await advance(400);
  assert.deepEqual(calls, [0, 100, 300, 700], 'doubling like a failure');
  assert.equal(failures.length, 0, 'not reported as an error');

  result = { backoff: true, requeueAfter: 50 };
  await advance(800);
  assert.deepEqual(calls, [0, 100, 300, 700, 1500]);
  await advance(50);
  assert.deepEqual(calls, [0, 100, 300, 700, 1500, 1550], 'the sooner requeueAfter wins over a 1000 ms backoff');

  result = {};
  await advance(50);
  assert.equal(calls.length, 7);
  result = { backoff: true };
  queue.add('a');
  await flush();
  await advance(99);
  assert.equal(calls.length, 8);
  await advance(1);
  assert.equal(calls.length, 9, 'after a plain result the backoff starts over at 100 ms');
});

test('reconcile errors, even synchronous throws, never become unhandled rejections', async (t) => {
  const advance = fakeTime(t);
  const unhandled: unknown[] = [];
  const record = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', record);
  t.after(() => process.off('unhandledRejection', record));
  let calls = 0;
  const reconcile: Reconciler = (key) => {
    calls++;
    if (key === 'sync') throw new Error('thrown before any promise exists');
    return Promise.reject('not even an Error');
  };
  const queue = new WorkQueue(reconcile, { concurrency: 2, backoff: { baseMs: 100, maxMs: 100 } });

  queue.add('sync');
  queue.add('async');
  await queue.drain();
  await flush();
  assert.deepEqual(unhandled, []);

  await advance(100);
  assert.equal(calls, 4, 'both keys are still retried');
  assert.deepEqual(unhandled, []);
});

test('onDepth reports every change in keys waiting + in flight', async (t) => {
  fakeTime(t);
  const release = Promise.withResolvers<void>();
  const depths: number[] = [];
  const queue = new WorkQueue(() => release.promise, { concurrency: 1, onDepth: (d) => depths.push(d) });

  queue.add('a');
  queue.add('b');
  queue.add('b');
  assert.deepEqual(depths, [1, 2]);
  release.resolve();
  await queue.drain();
  assert.deepEqual(depths, [1, 2, 1, 0]);
});

test('throwing onError and onDepth hooks do not disturb the queue', async (t) => {
  const advance = fakeTime(t);
  const calls: string[] = [];
  const queue = new WorkQueue(
    async (key) => {
      calls.push(key);
      if (key === 'bad') throw new Error('boom');
    },
    {
      concurrency: 1,
      backoff: { baseMs: 100, maxMs: 100 },
      onError: () => {
        throw new Error('the logging hook broke');
      },
      onDepth: () => {
        throw new Error('the gauge broke');
      },
    },
  );

  assert.doesNotThrow(() => queue.add('bad'));
  queue.add('good');
  await queue.drain();
  assert.deepEqual(calls, ['bad', 'good']);
  await advance(100);
  assert.deepEqual(calls, ['bad', 'good', 'bad'], 'the failed key is still retried');
});

test('shutdown waits for in-flight reconciles, drops waiting keys and cancels timers', async (t) => {
  const advance = fakeTime(t);
  const setTimeoutSpy = t.mock.method(globalThis, 'setTimeout');
  const clearTimeoutSpy = t.mock.method(globalThis, 'clearTimeout');
  const release = Promise.withResolvers<void>();
  const calls: string[] = [];
  const queue = new WorkQueue(
    async (key) => {
      calls.push(key);
      if (key === 'a') {
        await release.promise;
        return { requeueAfter: 1000 };
      }
    },
    { concurrency: 1 },
  );

  queue.add('a');
  queue.add('b');
  queue.addAfter('c', 1000);
  await flush();
  queue.add('a'); // marks the running key dirty

  assert.equal(setTimeoutSpy.mock.callCount(), 1, "c's timer");
  const timerOfC = setTimeoutSpy.mock.calls[0]?.result;

  let stopped = false;
  const shutdown = queue.shutdown().then(() => {
    stopped = true;
  });
  await flush();
  assert.equal(stopped, false, 'waits for the running reconcile');
  assert.equal(queue.depth(), 1);

  queue.add('d');
  queue.addAfter('e', 10);
  release.resolve();
  await shutdown;
  assert.equal(queue.depth(), 0);

  // Cleared, not merely ignored when it fires: a live timer would keep the process up.
  assert.ok(clearTimeoutSpy.mock.calls.some((call) => call.arguments[0] === timerOfC));
  assert.equal(setTimeoutSpy.mock.callCount(), 1, 'no timer set after shutdown');
  await advance(10_000);
  assert.deepEqual(calls, ['a'], 'no waiting, dirty, delayed, requeued or new key ran');
});

test('dueWithin names how long until the last short delay is due, ignoring long requeues; addAfter coalesces repeats', async (t) => {
  const tick = fakeTime(t);
  const calls: string[] = [];
  const queue = new WorkQueue(async (key) => { calls.push(key); return {}; }, { concurrency: 1 });
  assert.equal(queue.dueWithin(1000), 0, 'nothing delayed');
  for (let i = 0; i < 5; i++) queue.addAfter('td', 1000);
  queue.addAfter('renewal', DAY);
  assert.equal(queue.dueWithin(1000), 1000);
  await tick(400);
  queue.addAfter('td', 1000);
  assert.equal(queue.dueWithin(1000), 600, 'a later repeat does not push the first deadline back');
  await tick(600);
  await queue.drain();
  assert.deepEqual(calls, ['td'], 'five adds and a repeat: one reconcile');
  assert.equal(queue.dueWithin(1000), 0, 'the day-long requeue is not waited for');
});

test('every reconcile is counted with how it ended: success, requeue, wait, error', async (t) => {
  const tick = fakeTime(t);
  const outcomes: string[] = [];
  const plans: Record<string, () => Promise<Result | void>> = {
    done: async () => undefined,
    planned: async () => ({ requeueAfter: DAY }),
    wrote: async () => requeue(1),
    pending: async () => wait(),
    behind: async () => ({ backoff: true }),
    broken: async () => { throw new Error('boom'); },
  };
  const queue = new WorkQueue((key) => plans[key]!(), { concurrency: 1, onOutcome: (o, key) => outcomes.push(`${key}:${o}`) });
  for (const key of Object.keys(plans)) queue.add(key);
  await tick(0);
  await queue.drain();
  assert.deepEqual(outcomes, ['done:success', 'planned:success', 'wrote:requeue', 'pending:wait', 'behind:wait', 'broken:error']);
  // The requeue comes back at once, and is counted again.
  await tick(1);
  await queue.drain();
  assert.equal(outcomes.filter((o) => o === 'wrote:requeue').length, 2);
  await queue.shutdown();
});

test('the error policy decides what a thrown error means, and the outcome follows it', async (t) => {
  const tick = fakeTime(t);
  const outcomes: string[] = [];
  const retried: string[] = [];
  const errors: Record<string, Error> = { conflict: new Error('409'), refused: new Error('refused'), broken: new Error('boom'), gone: new Error('404') };
  const queue = new WorkQueue(async (key) => { throw errors[key]!; }, {
    concurrency: 1,
    backoff: { baseMs: 1000, maxMs: 1000 },
    onError: (key) => retried.push(key),
    onOutcome: (o, key) => outcomes.push(`${key}:${o}`),
    errorPolicy: async (key, err) => {
      if (err === errors.conflict) return requeue(500);
      if (err === errors.gone) return { outcome: 'success' };
      // A failure that waits for its inputs to change: reported, not retried.
      if (err === errors.refused) return {};
      throw err;
    },
  });
  for (const key of Object.keys(errors)) queue.add(key);
  await tick(0);
  await queue.drain();
  assert.deepEqual(outcomes, ['conflict:requeue', 'refused:error', 'broken:error', 'gone:success']);
  assert.deepEqual(retried, ['broken'], 'only a rethrown error backs off');
  await tick(500);
  await queue.drain();
  assert.deepEqual(outcomes.slice(4), ['conflict:requeue'], 'the conflict looks again after 500 ms, the failure that waits does not');
  await tick(500);
  await queue.drain();
  assert.deepEqual(outcomes.slice(5).sort(), ['broken:error', 'conflict:requeue'], 'the rethrown error after its backoff (and the conflict again)');
  await queue.shutdown();
});

test('a throwing outcome hook does not break the queue', async (t) => {
  const tick = fakeTime(t);
  const calls: string[] = [];
  const queue = new WorkQueue(async (key) => { calls.push(key); }, { concurrency: 1, onOutcome: () => { throw new Error('metrics down'); } });
  queue.add('a');
  await tick(0);
  await queue.drain();
  queue.add('a');
  await tick(0);
  await queue.drain();
  assert.deepEqual(calls, ['a', 'a']);
});

test('keys delayed by many different delays fire in deadline order, once each; a forgotten key never fires', async (t) => {
  const tick = fakeTime(t);
  const seen: string[] = [];
  const queue = new WorkQueue(async (key) => { seen.push(key); }, { concurrency: 1 });
  const delays = Array.from({ length: 200 }, (_, i) => ((i * 7919) % 1000) + 1);
  delays.forEach((d, i) => queue.addAfter(`k${i}`, d));
  delays.forEach((d, i) => { if (i % 2 === 0) queue.addAfter(`k${i}`, d + 5000); }); // later: kept at the earlier deadline
  queue.forget('k1');
  for (let ms = 0; ms < 1200; ms += 10) await tick(10);
  const expected = delays.map((d, i) => ({ d, k: `k${i}` })).filter(({ k }) => k !== 'k1').sort((a, b) => a.d - b.d || Number(a.k.slice(1)) - Number(b.k.slice(1)));
  assert.equal(seen.length, 199);
  assert.deepEqual(new Set(seen), new Set(expected.map((e) => e.k)));
  // Within one 10 ms tick order may vary; across ticks it follows the deadlines.
  const at = new Map(delays.map((d, i) => [`k${i}`, Math.ceil(d / 10)]));
  for (let i = 1; i < seen.length; i++) assert.ok(at.get(seen[i - 1]!)! <= at.get(seen[i]!)!, `${seen[i - 1]} before ${seen[i]}`);
  await queue.shutdown();
});

test('a thousand delayed keys hold one timer, not one each', async () => {
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const before = timers();
  const queue = new WorkQueue(async () => undefined, { concurrency: 1 });
  try {
    for (let i = 0; i < 1000; i++) queue.addAfter(`k${i}`, 3_600_000 + i * 1000);
    assert.ok(timers() - before <= 1, `${timers() - before} timers for 1,000 delayed keys`);
  } finally {
    await queue.shutdown();
  }
  assert.equal(timers(), before);
});

/** One worker held by `first` until released; every reconcile's key in the order they started. */
function heldQueue() {
  const order: string[] = [];
  const gate = Promise.withResolvers<void>();
  const q = new WorkQueue(async (key) => { order.push(key); if (key === 'first') await gate.promise; }, { concurrency: 1 });
  q.add('first');
  return { q, order, release: () => gate.resolve() };
}

test('keys queued low wait behind every key queued normal, whenever it came; each group in its own order', async () => {
  const { q, order, release } = heldQueue();
  for (const k of ['b1', 'b2', 'b3']) q.add(k, 'low');
  q.add('own1');
  q.add('b4', 'low');
  q.add('own2');
  release();
  await q.drain();
  assert.deepEqual(order, ['first', 'own1', 'own2', 'b1', 'b2', 'b3', 'b4']);
});

test('a waiting low key added again as normal moves up; added again as low it stays where it was', async () => {
  const { q, order, release } = heldQueue();
  for (const k of ['b1', 'b2', 'b3']) q.add(k, 'low');
  q.add('b3');
  q.add('b1', 'low');
  release();
  await q.drain();
  assert.deepEqual(order, ['first', 'b3', 'b1', 'b2']);
});

test('a delayed key already due whose timer has not fired yet (a busy event loop fires late) still counts as due', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
  const queue = new WorkQueue(async () => ({}), { concurrency: 1 });
  queue.addAfter('requeued', 1);
  t.mock.timers.setTime(50);
  assert.equal(queue.dueWithin(1000), 1, 'what manager.idle() waits on: an overdue key is not "nothing due"');
  await queue.shutdown();
});
