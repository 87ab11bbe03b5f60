import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Lease } from '@kubernetes/client-node';
import { LeaderElector, type LeaseOptions } from '../../../src/kube/lease.ts';
import { KubeError } from '../../../src/kube/errors.ts';

/** One Lease with the API server's compare-and-swap on resourceVersion. */
function leaseStore() {
  let stored: V1Lease | undefined;
  let version = 0;
  const copy = (l: V1Lease) => structuredClone(l);
  return {
    get current() { return stored; },
    getLease: async () => {
      if (!stored) throw new KubeError(404, 'NotFound', 'not found');
      return copy(stored);
    },
    createLease: async (l: V1Lease) => {
      if (stored) throw new KubeError(409, 'AlreadyExists', 'exists');
      stored = { ...copy(l), metadata: { ...l.metadata, resourceVersion: String(++version) } };
      return copy(stored);
    },
    replaceLease: async (l: V1Lease) => {
      if (l.metadata?.resourceVersion !== stored?.metadata?.resourceVersion) throw new KubeError(409, 'Conflict', 'stale');
      stored = { ...copy(l), metadata: { ...l.metadata, resourceVersion: String(++version) } };
      return copy(stored);
    },
  };
}

const options = (identity: string, onStartedLeading: () => void): LeaseOptions => ({
  namespace: 'ns', name: 'lease', identity, leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 10,
  onStartedLeading, onStoppedLeading: () => undefined,
});

test('of two candidates on one Lease only one leads; stopping releases the Lease', async () => {
  const store = leaseStore();
  const leaders: string[] = [];
  const a = new LeaderElector(store, options('a', () => leaders.push('a')));
  const b = new LeaderElector(store, options('b', () => leaders.push('b')));
  a.start();
  b.start();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(leaders.length, 1);
  assert.equal(store.current?.spec?.holderIdentity, leaders[0]);
  const [leader, follower] = leaders[0] === 'a' ? [a, b] : [b, a];
  assert.equal(follower.isLeader(), false);
  await leader.stop();
  await follower.stop();
  assert.equal(store.current?.spec?.holderIdentity, undefined);
  assert.equal(store.current?.spec?.leaseDurationSeconds, 1);
});

test('a leader whose renewal hangs (a dead connection) steps down at its renew deadline, not when the request gives up', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
  const store = leaseStore();
  let hang = false;
  const kube = { ...store, getLease: (...a: Parameters<typeof store.getLease>) => (hang ? new Promise<never>(() => undefined) : store.getLease(...a)) };
  let stoppedAt: number | undefined;
  const elector = new LeaderElector(kube, { ...options('a', () => undefined), retryPeriodMs: 2_000, onStoppedLeading: () => { stoppedAt = Date.now(); } });
  const settle = async () => { for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r)); };
  elector.start();
  await settle();
  assert.equal(elector.isLeader(), true);
  t.mock.timers.tick(2_000);
  await settle();
  const renewedAt = Date.now();
  hang = true;
  for (let ms = 0; ms < 20_000 && stoppedAt === undefined; ms += 500) {
    t.mock.timers.tick(500);
    await settle();
  }
  assert.equal(stoppedAt, renewedAt + 10_000, 'stepped down exactly at the renew deadline after the last renewal');
  assert.equal(elector.isLeader(), false);
});
