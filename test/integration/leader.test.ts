// High availability: two operator replicas on one Lease. Only the holder
// reconciles; when it is killed the other takes over within the lease time,
// and no identity is issued twice.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { startTestEnv, type TestEnv } from '../support/env.ts';
import { spawnOperator, eventually, ensureNamespace, OPERATOR_NAMESPACE } from '../support/operator.ts';
import { api, isReady } from '../support/objects.ts';

let env: TestEnv;
let a: ReturnType<typeof api>;
const replicas: Record<string, ReturnType<typeof spawnOperator>> = {};
const FLAGS = ['--leader-elect', '--leader-election-lease-duration=4s', '--leader-election-renew-deadline=3s', '--leader-election-retry-period=500ms'];

before(async () => { env = await startTestEnv(); a = api(env.kc); await ensureNamespace(env.kc, OPERATOR_NAMESPACE); });
after(async () => { for (const r of Object.values(replicas)) await r.kill(); await env?.stop(); });

test('the follower takes over within the lease time when the leader dies, and nothing is issued twice', async (t) => {
  await a.createTrustDomain('default', { trustDomain: 'cluster.local', ca: { selfSigned: {} } });
  const ns = await env.namespace('ha');
  for (const id of ['replica-a', 'replica-b']) replicas[id] = spawnOperator(env.kubeconfigPath, FLAGS, { POD_NAME: id });
  const leases = env.kc.makeApiClient(CoordinationV1Api);
  const holder = async () => (await leases.readNamespacedLease({ namespace: OPERATOR_NAMESPACE, name: 'agent-identity-operator' })).spec?.holderIdentity;
  const leader = await eventually(async () => holder(), { what: 'a leader' });
  const follower = leader === 'replica-a' ? 'replica-b' : 'replica-a';

  for (let i = 0; i < 5; i++) await a.createIdentity(ns, `before-${i}`);
  await eventually(async () => (await a.listIdentities(ns)).items.filter(isReady).length === 5, { what: '5 Ready' });
  assert.match(replicas[leader]!.output(), /became leader/);
  assert.doesNotMatch(replicas[follower]!.output(), /became leader|issued certificate/, 'the follower did not reconcile');

  const killedAt = Date.now();
  await replicas[leader]!.kill();
  await eventually(async () => (await holder()) === follower, { timeoutMs: 20_000, intervalMs: 100, what: 'the follower to take the lease' });
  const takeover = Date.now() - killedAt;
  t.diagnostic(`takeover ${takeover} ms after SIGKILL (lease 4 s, retry 0.5 s)`);
  assert.ok(takeover < 4000 + 2000, `took over within the lease time plus a retry: ${takeover} ms`);

  for (let i = 0; i < 3; i++) await a.createIdentity(ns, `after-${i}`);
  await eventually(async () => (await a.listIdentities(ns)).items.filter(isReady).length === 8, { timeoutMs: 30_000, what: '8 Ready under the new leader' });
  await new Promise((r) => setTimeout(r, 1500));
  const issued = (await a.core.listNamespacedEvent({ namespace: ns })).items.filter((e) => e.reason === 'Issued');
  const perIdentity = new Map<string, number>();
  for (const e of issued) perIdentity.set(e.involvedObject.name!, (perIdentity.get(e.involvedObject.name!) ?? 0) + 1);
  assert.equal(perIdentity.size, 8);
  assert.deepEqual([...perIdentity].filter(([, n]) => n !== 1), [], 'every identity was issued exactly once');
});
