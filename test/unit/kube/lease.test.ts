import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Lease } from '@kubernetes/client-node';
import { LeaderElector, type LeaseOptions } from '../../../src/kube/lease.ts';
import { KubeError } from '../../../src/kube/errors.ts';
import { eventually } from '../../support/eventually.ts';

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
  // Each candidate's reads, counted: the follower's tries are what the claim below waits on.
  const reads = { a: 0, b: 0 };
  const candidate = (id: 'a' | 'b') => new LeaderElector(
    { ...store, getLease: () => { reads[id]++; return store.getLease(); } },
    options(id, () => leaders.push(id)),
  );
  const a = candidate('a');
  const b = candidate('b');
  a.start();
  b.start();
  const [first] = await eventually(async () => leaders.length > 0 && leaders, { intervalMs: 5, what: 'a leader' });
  const followerID = first === 'a' ? 'b' : 'a';
  // The follower keeps trying every retry period; ten tries on a held Lease must not make it lead.
  const triedBefore = reads[followerID];
  await eventually(async () => reads[followerID] >= triedBefore + 10, { intervalMs: 5, what: 'ten more tries by the follower' });
  assert.deepEqual(leaders, [first]);
  assert.equal(store.current?.spec?.holderIdentity, first);
  const [leader, follower] = first === 'a' ? [a, b] : [b, a];
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
