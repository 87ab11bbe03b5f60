// Level-based and idempotent: restarting the operator over 50 Ready
// identities writes nothing — no resourceVersion moves, no Event appears,
// nothing is issued.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestEnv, type TestEnv } from '../support/env.ts';
import { runOperator, eventually, OPERATOR_NAMESPACE } from '../support/operator.ts';
import { api, isReady } from '../support/objects.ts';
import type { Operator } from '../../src/operator.ts';

const N = 50;
let env: TestEnv;
let op: Operator | undefined;
let a: ReturnType<typeof api>;

before(async () => { env = await startTestEnv(); a = api(env.kc); });
after(async () => { await op?.stop(); await env?.stop(); });

async function versions(ns: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const i of (await a.listIdentities(ns)).items) out.set(`identity/${i.metadata.name}`, i.metadata.resourceVersion!);
  for (const s of (await a.core.listNamespacedSecret({ namespace: ns })).items) out.set(`secret/${s.metadata!.name}`, s.metadata!.resourceVersion!);
  for (const c of (await a.core.listNamespacedConfigMap({ namespace: ns })).items) out.set(`configmap/${c.metadata!.name}`, c.metadata!.resourceVersion!);
  for (const s of (await a.core.listNamespacedSecret({ namespace: OPERATOR_NAMESPACE })).items) out.set(`ca/${s.metadata!.name}`, s.metadata!.resourceVersion!);
  out.set('trustdomain/default', (await a.getTrustDomain('default')).metadata.resourceVersion!);
  return out;
}

const eventCount = async (ns: string) => (await a.core.listNamespacedEvent({ namespace: ns })).items.length
  + (await a.core.listNamespacedEvent({ namespace: 'default' })).items.length;

test(`restarting the operator over ${N} Ready identities makes zero writes`, async () => {
  await a.createTrustDomain('default', { trustDomain: 'cluster.local', ca: { selfSigned: {} } });
  const ns = await env.namespace('restart');
  op = await runOperator(env.kc);
  await Promise.all(Array.from({ length: N }, (_, i) => a.createIdentity(ns, `agent-${i}`)));
  await eventually(async () => (await a.listIdentities(ns)).items.filter(isReady).length === N, { timeoutMs: 60_000, what: `${N} identities Ready` });
  await op.idle();
  await op.stop();
  op = undefined;

  const before = await versions(ns);

  const eventsBefore = await eventCount(ns);
  assert.equal([...before.keys()].filter((k) => k.startsWith('secret/')).length, N);
  assert.equal([...before.keys()].filter((k) => k.endsWith('-identity-policy')).length, 0, 'policy.json rides each identity Secret: no policy ConfigMap');

  op = await runOperator(env.kc);
  // runOperator returns once the caches synced and every object is queued; idle() once the
  // queues (and the work they coalesce) drained: each identity was reconciled, so a write would already show.
  await op.idle();
  const reconciled = (await op.metrics.certificateExpiration.get()).values.filter((v) => v.labels.namespace === ns).length;
  assert.equal(reconciled, N, 'the restarted operator reconciled every identity to the end (it set each one\'s expiry gauge)');

  const afterRestart = await versions(ns);
  const moved = [...before].filter(([k, v]) => afterRestart.get(k) !== v).map(([k]) => k);
  assert.deepEqual(moved, [], 'no object changed');
  assert.equal(afterRestart.size, before.size, 'no object appeared');
  assert.equal(await eventCount(ns), eventsBefore, 'no Event was recorded');
  const issued = (await op.metrics.issuances.get()).values.reduce((s, v) => s + v.value, 0);
  assert.equal(issued, 0, 'nothing was issued');
});
