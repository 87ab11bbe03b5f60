// The revoke-finalizer MutatingAdmissionPolicy (deploy/admissionpolicy.yaml,
// rendered from the chart) on a real API server: an AgentIdentity comes back
// from its create call with the finalizer, never twice, next to any other
// finalizer; and the operator then brings it to Ready without writing its
// metadata (issue 12: one API write less per issuance).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { startTestEnv, type TestEnv } from '../support/env.ts';
import { runOperator, eventually } from '../support/operator.ts';
import { api, isReady } from '../support/objects.ts';
import { DEFAULT_TRUST_DOMAIN } from '../support/suite.ts';
import { API_VERSION, AGENT_IDENTITY, FIELD_MANAGER, FINALIZER_REVOKE, GROUP, TRUST_DOMAIN, VERSION } from '../../src/api/group.ts';
import type { Operator } from '../../src/operator.ts';
import type { AgentIdentity } from '../../src/api/types.ts';

const POLICIES = join(resolve(import.meta.dirname, '..', '..'), 'deploy', 'admissionpolicy.yaml');
const OTHER = 'example.com/keep';

let env: TestEnv;
let a: ReturnType<typeof api>;
let ns: string;
let op: Operator | undefined;
let seq = 0;

/** Creates an AgentIdentity with the given finalizers and returns what the create call answered. */
function create(finalizers?: string[]): Promise<AgentIdentity> {
  return a.custom.createNamespacedCustomObject({
    group: GROUP, version: VERSION, plural: AGENT_IDENTITY.plural, namespace: ns,
    body: { apiVersion: API_VERSION, kind: AGENT_IDENTITY.kind, metadata: { name: `aid-${++seq}`, finalizers }, spec: { serviceAccountName: 'none' } },
  }) as Promise<AgentIdentity>;
}

before(async () => {
  env = await startTestEnv();
  a = api(env.kc);
  ns = await env.namespace('finalizer-policy');
  const applied = await env.kubectl(['apply', '--server-side', '-f', POLICIES]);
  assert.equal(applied.code, 0, applied.stderr);
  // The API server compiles policies asynchronously: wait until one takes effect.
  await eventually(async () => (await create()).metadata.finalizers?.includes(FINALIZER_REVOKE), { what: 'the policy to add the finalizer' });
});

after(async () => {
  await op?.stop();
  if (a) {
    // Nothing runs to honour the finalizers now: drop them so the namespace can go (on an existing cluster).
    const { items } = await a.listIdentities(ns).catch(() => ({ items: [] as AgentIdentity[] }));
    await Promise.all(items.map((i) => a.patchIdentity(ns, i.metadata.name!, { metadata: { finalizers: null } }).catch(() => undefined)));
    await a.custom.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: TRUST_DOMAIN.plural, name: 'default' }).catch(() => undefined);
    await env.kubectl(['delete', '--ignore-not-found', '-f', POLICIES]);
  }
  await env?.stop();
});

test('an AgentIdentity created without finalizers comes back with exactly the revoke finalizer', async () => {
  assert.deepEqual((await create()).metadata.finalizers, [FINALIZER_REVOKE]);
  assert.deepEqual((await create([])).metadata.finalizers, [FINALIZER_REVOKE]);
});

test('another finalizer is kept and the revoke finalizer added after it', async () => {
  assert.deepEqual((await create([OTHER])).metadata.finalizers, [OTHER, FINALIZER_REVOKE]);
});

test('an AgentIdentity that already has the revoke finalizer does not get it twice', async () => {
  assert.deepEqual((await create([FINALIZER_REVOKE])).metadata.finalizers, [FINALIZER_REVOKE]);
  assert.deepEqual((await create([FINALIZER_REVOKE, OTHER])).metadata.finalizers, [FINALIZER_REVOKE, OTHER]);
});

test('with the policy, the operator brings an identity to Ready without writing its metadata', async () => {
  await a.createTrustDomain('default', DEFAULT_TRUST_DOMAIN);
  op = await runOperator(env.kc);
  await a.createIdentity(ns, 'planner');
  const ready = await eventually(async () => { const i = await a.getIdentity(ns, 'planner'); return isReady(i) && i; }, { what: 'planner Ready' });
  assert.deepEqual(ready.metadata.finalizers, [FINALIZER_REVOKE]);
  const { managedFields } = ready.metadata as { managedFields?: Array<{ manager: string; subresource?: string }> };
  const mine = (managedFields ?? []).filter((m) => m.manager === FIELD_MANAGER);
  assert.deepEqual(mine.map((m) => m.subresource ?? ''), ['status'], `the operator wrote only the status: ${JSON.stringify(mine)}`);
});
