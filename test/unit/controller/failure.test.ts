import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { CONFLICT_REQUEUE_MS, ReconcileFailure, errorPolicy, failureOf, type FailureScope } from '../../../src/controller/failure.ts';
import { KubeError } from '../../../src/kube/errors.ts';
import { Metrics } from '../../../src/controller/metrics.ts';

const target = { apiVersion: 'v1', kind: 'Thing', metadata: { name: 'a' } };

function harness(overrides: Partial<FailureScope> = {}) {
  const events: string[] = [];
  const reported: ReconcileFailure[] = [];
  const metrics = new Metrics();
  const clock = { ms: Date.parse('2026-03-01T00:00:00Z') };
  const c = { metrics, log: pino({ level: 'silent' }), now: () => new Date(clock.ms), events: { record: (_t: unknown, type: string, reason: string, message: string) => { events.push(`${type} ${reason}: ${message}`); } } };
  const scope: FailureScope = { controller: 'thing', key: 'a', target, fallbackReason: 'ThingFailed', report: async (f) => { reported.push(f); }, ...overrides };
  const count = async (metric: 'reconciles' | 'reconcileErrors' | 'transientErrors') => (await metrics[metric].get()).values.map((v) => ({ ...v.labels, value: v.value }));
  return { c, scope, events, reported, count, clock };
}

test('a failure to retry is counted by reason, logged, recorded as a Warning event, reported in status, then rethrown for the queue to back off', async () => {
  const h = harness();
  const f = new ReconcileFailure('CASecretUnreadable', 'cannot read');
  await assert.rejects(errorPolicy(h.c, f, h.scope), (err) => err === f);
  assert.deepEqual(h.events, ['Warning CASecretUnreadable: cannot read']);
  assert.deepEqual(h.reported, [f]);
  assert.deepEqual(await h.count('reconciles'), [], 'the queue counts the reconcile (queue.test.ts)');
  assert.deepEqual(await h.count('reconcileErrors'), [{ controller: 'thing', reason: 'CASecretUnreadable', value: 1 }]);
});

test('a failure that waits for a change returns an action instead, still an error to the queue: nothing, or a recheck after recheckMs', async () => {
  const waits = new ReconcileFailure('CASecretNotFound', 'gone', { retry: false });
  assert.deepEqual(await errorPolicy(harness().c, waits, harness().scope), { outcome: 'error' });
  const h = harness({ recheckMs: 60_000 });
  assert.deepEqual(await errorPolicy(h.c, waits, h.scope), { outcome: 'error', requeueAfter: 60_000 });
  assert.deepEqual(h.reported, [waits]);
});

test('an error the controller settles is no failure: its action, no metric, event or status', async () => {
  const h = harness({ settle: (err) => (err instanceof KubeError && err.code === 409 ? { requeueAfter: 500 } : undefined) });
  assert.deepEqual(await errorPolicy(h.c, new KubeError(409, 'Conflict', 'stale'), h.scope), { requeueAfter: 500 });
  assert.deepEqual(h.events, []);
  assert.deepEqual(h.reported, []);
  assert.deepEqual(await h.count('reconciles'), []);
});

test('an error that names no reason gets the fallback; a failing status write is logged, not thrown', async () => {
  const h = harness({ report: async () => { throw new KubeError(500, 'InternalError', 'etcd'); } });
  await assert.rejects(errorPolicy(h.c, new Error('boom'), h.scope), (err: ReconcileFailure) => err.reason === 'ThingFailed' && err.message === 'boom');
  assert.deepEqual(h.events, ['Warning ThingFailed: boom']);
  assert.equal(failureOf(new KubeError(422, 'Invalid', 'bad'), 'X').reason, 'Invalid', 'a kube reason is kept');
});

const unavailable = () => new KubeError(503, 'ServiceUnavailable', 'the server is currently unable to handle the request');

test('a write conflict with no settle of its own is "requeue now": no report, no event, counted as transient', async () => {
  const h = harness();
  for (const err of [new KubeError(409, 'Conflict', 'stale'), new ReconcileFailure('CASecretCreateFailed', 'lost the race', { cause: new KubeError(409, 'AlreadyExists', 'exists') })]) {
    assert.deepEqual(await errorPolicy(h.c, err, h.scope), { requeueAfter: CONFLICT_REQUEUE_MS, outcome: 'requeue' });
  }
  assert.deepEqual([h.events, h.reported], [[], []]);
  assert.deepEqual(await h.count('transientErrors'), [{ controller: 'thing', reason: 'Conflict', value: 2 }]);
  assert.deepEqual(await h.count('reconcileErrors'), []);
});

test('a 503 is retried with backoff and reported only on the 5th attempt in a row, with how long it lasted', async () => {
  const h = harness();
  for (let attempt = 1; attempt < 5; attempt++) {
    assert.deepEqual(await errorPolicy(h.c, unavailable(), h.scope), { backoff: true }, `attempt ${attempt}`);
    h.clock.ms += 2000;
  }
  assert.deepEqual([h.events, h.reported], [[], []], 'nothing reported before the 5th');
  await assert.rejects(errorPolicy(h.c, unavailable(), h.scope), (f: ReconcileFailure) => f.reason === 'ServiceUnavailable' && f.retry);
  assert.deepEqual(h.events, ['Warning ServiceUnavailable: the server is currently unable to handle the request (still failing after 5 attempts in 8s)']);
  assert.equal(h.reported.length, 1);
  assert.equal((h.reported[0]!.cause as KubeError).code, 503, 'a report can tell it was transient');
  assert.deepEqual(await h.count('transientErrors'), [{ controller: 'thing', reason: 'ServerError', value: 5 }]);
});

test('a transient error that has gone on for a minute is reported, however few the attempts', async () => {
  const h = harness();
  assert.deepEqual(await errorPolicy(h.c, unavailable(), h.scope), { backoff: true });
  h.clock.ms += 60_000;
  await assert.rejects(errorPolicy(h.c, unavailable(), h.scope));
  assert.equal(h.events.length, 1);
});

test('a streak ends after 10 quiet minutes, and each key has its own', async () => {
  const h = harness();
  for (let i = 0; i < 4; i++) await errorPolicy(h.c, unavailable(), h.scope);
  assert.deepEqual(await errorPolicy(h.c, unavailable(), { ...h.scope, key: 'b' }), { backoff: true }, 'another key starts its own streak');
  h.clock.ms += 10 * 60_000 + 1;
  assert.deepEqual(await errorPolicy(h.c, unavailable(), h.scope), { backoff: true }, 'a new streak');
  assert.deepEqual(h.events, []);
});

test('a ReconcileFailure built on a lasting API error (403) is reported at once', async () => {
  const h = harness();
  const f = new ReconcileFailure('CASecretUnreadable', 'cannot read', { cause: new KubeError(403, 'Forbidden', 'no') });
  await assert.rejects(errorPolicy(h.c, f, h.scope), (err) => err === f);
  assert.deepEqual(h.events, ['Warning CASecretUnreadable: cannot read']);
  assert.deepEqual(await h.count('transientErrors'), []);
});
