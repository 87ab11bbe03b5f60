// Watches do not stay dead: when the API server goes away and comes back,
// the informers restart with backoff and the operator keeps issuing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestEnv, type TestEnv } from '../support/env.ts';
import { runOperator, eventually } from '../support/operator.ts';
import { api, isReady } from '../support/objects.ts';
import type { Operator } from '../../src/operator.ts';

let env: TestEnv;
let op: Operator | undefined;

before(async () => { env = await startTestEnv(); });
after(async () => { await op?.stop(); await env?.stop(); });

test('the operator survives an API server restart and reconciles what changed meanwhile', { skip: !process.env.USE_EXISTING_CLUSTER ? false : 'needs a control plane this test can restart' }, async () => {
  const a = api(env.kc);
  await a.createTrustDomain('default', { trustDomain: 'cluster.local', ca: { selfSigned: {} } });
  const ns = await env.namespace('informer');
  op = await runOperator(env.kc);
  await a.createIdentity(ns, 'before');
  await eventually(async () => isReady(await a.getIdentity(ns, 'before')), { what: 'first identity Ready' });

  await env.controlPlane!.restartAPIServer();
  await a.createIdentity(ns, 'after');
  await eventually(async () => isReady(await a.getIdentity(ns, 'after')), { timeoutMs: 60_000, what: 'identity created after the restart Ready' });

  const restarts = (await op.metrics.informerRestarts.get()).values.reduce((s, v) => s + v.value, 0);
  assert.ok(restarts >= 1, `informers restarted ${restarts} times`);
  assert.equal(op.ready(), true);
});
