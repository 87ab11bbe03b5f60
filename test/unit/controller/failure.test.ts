import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { ReconcileFailure, errorPolicy, failureOf, type FailureScope } from '../../../src/controller/failure.ts';
import { KubeError } from '../../../src/kube/errors.ts';
import { Metrics } from '../../../src/controller/metrics.ts';

const target = { apiVersion: 'v1', kind: 'Thing', metadata: { name: 'a' } };

function harness(overrides: Partial<FailureScope> = {}) {
  const events: string[] = [];
  const reported: ReconcileFailure[] = [];
  const metrics = new Metrics();
  const c = { metrics, log: pino({ level: 'silent' }), now: () => new Date(), events: { record: (_t: unknown, type: string, reason: string, message: string) => { events.push(`${type} ${reason}: ${message}`); } } };
  const scope: FailureScope = { controller: 'thing', key: 'a', target, fallbackReason: 'ThingFailed', report: async (f) => { reported.push(f); }, ...overrides };
  const count = async (metric: 'reconciles' | 'reconcileErrors') => (await metrics[metric].get()).values.map((v) => ({ ...v.labels, value: v.value }));
  return { c, scope, events, reported, count };
}

test('a failure to retry is counted, logged, recorded as a Warning event, reported in status, then rethrown for the queue to back off', async () => {
  const h = harness();
  const f = new ReconcileFailure('CASecretUnreadable', 'cannot read');
  await assert.rejects(errorPolicy(h.c, f, h.scope), (err) => err === f);
  assert.deepEqual(h.events, ['Warning CASecretUnreadable: cannot read']);
  assert.deepEqual(h.reported, [f]);
  assert.deepEqual(await h.count('reconciles'), [{ controller: 'thing', result: 'error', value: 1 }]);
  assert.deepEqual(await h.count('reconcileErrors'), [{ controller: 'thing', reason: 'CASecretUnreadable', value: 1 }]);
});

test('a failure that waits for a change returns an action instead: nothing, or a recheck after recheckMs', async () => {
  const waits = new ReconcileFailure('CASecretNotFound', 'gone', { retry: false });
  assert.deepEqual(await errorPolicy(harness().c, waits, harness().scope), {});
  const h = harness({ recheckMs: 60_000 });
  assert.deepEqual(await errorPolicy(h.c, waits, h.scope), { requeueAfter: 60_000 });
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
