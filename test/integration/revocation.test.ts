// Revocation and bundle distribution: a suspended or deleted identity loses
// its Secret and its serial is published on the deny list next to the bundle
// until the certificate expires; bundles go to every namespace with agents
// and to the namespaces the TrustDomain selects.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { TestEnv } from '../support/env.ts';
import { setUp, tearDown, DEFAULT_TRUST_DOMAIN } from '../support/suite.ts';
import { eventually, OPERATOR_NAMESPACE } from '../support/operator.ts';
import { api, isReady } from '../support/objects.ts';
import type { Operator } from '../../src/operator.ts';
import type { DenyList } from '../../src/api/documents.ts';

let env: TestEnv;
let op: Operator;
let a: ReturnType<typeof api>;

before(async () => {
  ({ env, op, a } = await setUp({ trustDomain: { ...DEFAULT_TRUST_DOMAIN, bundle: { namespaceSelector: { matchLabels: { bundle: 'yes' } } } } }));
});
after(() => tearDown({ env, op }));

const denyList = async (ns: string): Promise<DenyList | undefined> => {
  const cm = await a.core.readNamespacedConfigMap({ namespace: ns, name: 'trust-bundle-default' }).catch(() => undefined);
  return cm?.data?.['denylist.json'] ? JSON.parse(cm.data['denylist.json']) as DenyList : undefined;
};

test('a suspended identity loses its Secret; its serial is deny-listed until it expires', async (t) => {
  const ns = await env.namespace('suspend');
  await a.createIdentity(ns, 'rogue', { duration: '8s' });
  const ready = await eventually(async () => { const i = await a.getIdentity(ns, 'rogue'); return isReady(i) && i; }, { what: 'Ready' });
  // Take the serial from the Secret right before suspending: a renewal may have just replaced it.
  await a.patchIdentity(ns, 'rogue', { spec: { suspended: true } });
  const suspended = await eventually(async () => {
    const i = await a.getIdentity(ns, 'rogue');
    return i.status?.conditions?.find((c) => c.type === 'Ready' && c.reason === 'Suspended') && i;
  }, { what: 'Suspended' });
  assert.equal(suspended.status!.serialNumber, undefined, 'status no longer claims a certificate');
  await eventually(async () => (await a.getSecret(ns, 'rogue-identity').then(() => false, (e) => e.code === 404)), { what: 'Secret removed' });

  const listed = await eventually(async () => { const d = await denyList(ns); return d && d.entries.length > 0 && d; }, { what: 'deny list entry' });
  const entry = listed.entries[0]!;
  assert.equal(entry.spiffeID, ready.status!.spiffeID);
  assert.equal(entry.reason, 'Suspended');
  assert.match(entry.serialNumber, /^[0-9a-f]+$/);
  assert.deepEqual(await denyList(OPERATOR_NAMESPACE), listed, 'the same list in every copy');
  assert.equal((await a.getTrustDomain('default')).status!.denyListEntries, 1);

  const expiresIn = new Date(entry.notAfter).getTime() - Date.now();
  t.diagnostic(`entry ${entry.serialNumber} expires in ${expiresIn} ms`);
  await eventually(async () => (await denyList(ns))?.entries.length === 0, { timeoutMs: expiresIn + 15_000, what: 'deny list pruned after expiry' });
  assert.ok(Date.now() >= new Date(entry.notAfter).getTime(), 'pruned only after the certificate expired');

  await a.patchIdentity(ns, 'rogue', { spec: { suspended: false } });
  const back = await eventually(async () => { const i = await a.getIdentity(ns, 'rogue'); return isReady(i) && i; }, { what: 'Ready again' });
  assert.notEqual(back.status!.serialNumber, entry.serialNumber);
});

test('deleting an identity deny-lists its certificate and removes its Secret', async () => {
  const ns = await env.namespace('delete');
  await a.createIdentity(ns, 'gone', { duration: '1h' });
  const i = await eventually(async () => { const x = await a.getIdentity(ns, 'gone'); return isReady(x) && x; }, { what: 'Ready' });
  assert.ok(i.metadata.finalizers?.includes('agentidentity.dev/revoke'));
  const serial = (await a.getSecret(ns, 'gone-identity')).metadata.annotations!['agentidentity.dev/serial-number'];
  await a.deleteIdentity(ns, 'gone');
  await eventually(async () => (await a.getIdentity(ns, 'gone').then(() => false, (e) => e.code === 404)), { what: 'identity gone' });
  const d = await eventually(async () => { const x = await denyList(OPERATOR_NAMESPACE); return x?.entries.some((e) => e.serialNumber === serial) && x; }, { what: 'serial deny-listed' });
  assert.equal(d.entries.find((e) => e.serialNumber === serial)!.reason, 'Deleted');
  await eventually(async () => (await a.getSecret(ns, 'gone-identity').then(() => false, (e) => e.code === 404)), { what: 'Secret garbage-collected' });
});

test('the bundle is published where agents live, where the selector points, and as a ClusterTrustBundle; withdrawn when neither holds', async () => {
  const agents = await env.namespace('agents');
  const selected = await env.namespace('selected');
  const other = await env.namespace('other');
  await a.core.patchNamespace({ name: selected, body: { metadata: { labels: { bundle: 'yes' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  await a.createIdentity(agents, 'x');
  const has = async (ns: string) => a.core.readNamespacedConfigMap({ namespace: ns, name: 'trust-bundle-default' }).then(() => true, () => false);
  await eventually(async () => (await has(agents)) && (await has(selected)), { what: 'bundle in agents and selected namespaces' });
  assert.equal(await has(other), false, 'not in unrelated namespaces');
  const cm = await a.core.readNamespacedConfigMap({ namespace: agents, name: 'trust-bundle-default' });
  assert.match(cm.data!['ca.crt']!, /BEGIN CERTIFICATE/);
  assert.equal(cm.metadata!.labels!['app.kubernetes.io/managed-by'], 'agent-identity-operator');
  // The API server serves certificates.k8s.io/v1 ClusterTrustBundles, so there is one too.
  const ctb = await eventually(async () => a.custom.getClusterCustomObject({ group: 'certificates.k8s.io', version: 'v1', plural: 'clustertrustbundles', name: 'agentidentity-default' }).catch(() => undefined) as Promise<{ spec: { trustBundle: string } } | undefined>, { what: 'ClusterTrustBundle' });
  assert.equal(ctb.spec.trustBundle, cm.data!['ca.crt']);

  await a.deleteIdentity(agents, 'x');
  await eventually(async () => !(await has(agents)), { what: 'bundle withdrawn when the last agent left' });
  assert.equal(await has(selected), true, 'still where the selector points');
});
