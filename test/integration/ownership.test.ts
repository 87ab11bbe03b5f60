// Issue 9, holes 1-3: a namespace tenant (a ServiceAccount with a namespaced
// Role, reached by impersonation) must not make the operator revoke, report,
// mount, publish or trust an object the operator does not own.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PatchStrategy, setHeaderOptions, type CoreV1Event } from '@kubernetes/client-node';
import type { TestEnv } from '../support/env.ts';
import { setUp, tearDown } from '../support/suite.ts';
import { eventually } from '../support/operator.ts';
import { api, isReady } from '../support/objects.ts';
import { makeTenant } from '../support/tenant.ts';
import { createRoot } from '../../src/pki/ca.ts';
import { LABEL_MANAGED_BY } from '../../src/api/group.ts';
import type { Operator } from '../../src/operator.ts';
import type { AgentIdentity, ConfigMap } from '../../src/api/types.ts';
import type { DenyList } from '../../src/api/documents.ts';

let env: TestEnv;
let op: Operator;
let a: ReturnType<typeof api>;

before(async () => { ({ env, op, a } = await setUp()); });
after(() => tearDown({ env, op }));

const readCM = (ns: string, name: string) => a.core.readNamespacedConfigMap({ namespace: ns, name }) as Promise<ConfigMap>;
/** A namespace with a tenant, and (made by the admin) the ServiceAccounts its identities run as. */
async function tenantNamespace(prefix: string, serviceAccounts: string[]) {
  const ns = await env.namespace(prefix);
  const tenant = await makeTenant(env.kc, ns);
  for (const name of serviceAccounts) await a.core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name } } });
  return { ns, t: api(tenant.kc) };
}
const reasonOf = (i: AgentIdentity | undefined, type = 'Ready') => i?.status?.conditions?.find((c) => c.type === type);
const waitReady = (ns: string, name: string) =>
  eventually(async () => { const i = await a.getIdentity(ns, name); return isReady(i) && i; }, { what: `${ns}/${name} Ready` });
const waitReason = (ns: string, name: string, reason: string) =>
  eventually(async () => { const i = await a.getIdentity(ns, name); return reasonOf(i)?.reason === reason && i; }, { what: `${ns}/${name} ${reason}` });
const gone = (ns: string, name: string) =>
  eventually(async () => a.getIdentity(ns, name).then(() => false, (e) => e.code === 404), { what: `${ns}/${name} gone` });
const errorsFor = async (controller: string, reason: string) =>
  (await op.metrics.reconcileErrors.get()).values.find((v) => v.labels.controller === controller && v.labels.reason === reason)?.value ?? 0;
const warnings = async (ns: string, name: string, reason: string): Promise<CoreV1Event[]> =>
  (await a.core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${name},reason=${reason},type=Warning` })).items;

/** Every serial on any deny list: the bundle copies' denylist.json and every policy.json (in identity Secrets and policy ConfigMaps). */
async function deniedSerials(): Promise<Set<string>> {
  const out = new Set<string>();
  const policy = (json: string) => { for (const e of (JSON.parse(json) as { denyList?: Array<{ serialNumber: string }> }).denyList ?? []) out.add(e.serialNumber); };
  for (const cm of (await a.core.listConfigMapForAllNamespaces()).items) {
    const d = cm.data ?? {};
    if (d['denylist.json']) for (const e of (JSON.parse(d['denylist.json']) as DenyList).entries) out.add(e.serialNumber);
    if (d['policy.json']) policy(d['policy.json']);
  }
  for (const s of (await a.core.listSecretForAllNamespaces()).items) {
    if (s.data?.['policy.json']) policy(Buffer.from(s.data['policy.json'], 'base64').toString('utf8'));
  }
  return out;
}

test('hole 1: deleting an identity that names another identity\'s Secret revokes nothing of it, and its status never shows that certificate', async () => {
  const { ns, t } = await tenantNamespace('revoke', ['beta', 'me']);
  await t.createIdentity(ns, 'beta');
  const beta = await waitReady(ns, 'beta');
  const serial = beta.status!.serialNumber!;

  await t.createIdentity(ns, 'revoker', { serviceAccountName: 'me', secretName: 'beta-identity' });
  const revoker = await waitReason(ns, 'revoker', 'SecretOwnedByAnother');
  for (const field of ['spiffeID', 'serialNumber', 'notBefore', 'notAfter', 'renewalTime', 'secretName', 'caFingerprint'] as const) {
    assert.equal(revoker.status?.[field], undefined, `revoker status.${field} reports nothing of beta's certificate`);
  }

  await t.deleteIdentity(ns, 'revoker');
  // Gone means the operator ran its finalizer (which deny-lists before it lets go).
  await gone(ns, 'revoker');
  await op.idle();
  const denied = await deniedSerials();
  assert.ok(!denied.has(serial), `beta's serial ${serial} is on no deny list and in no policy.json`);
  const after_ = await a.getIdentity(ns, 'beta');
  assert.ok(isReady(after_), 'beta is still Ready');
  assert.equal(after_.status!.serialNumber, serial, 'beta keeps its certificate');
  assert.equal((await a.getSecret(ns, 'beta-identity')).metadata.annotations!['agentidentity.dev/serial-number'], serial);
});

test('hole 2: a shadow identity naming an existing identity\'s Secret gets SecretOwnedByAnother, also before that Secret exists, and changes neither the Secret nor the policy.json in it', async () => {
  const { ns, t } = await tenantNamespace('shadow', ['beta', 'me']);
  // beta claims beta-identity first, but has no Secret yet (suspended).
  await t.createIdentity(ns, 'beta', { suspended: true });
  await waitReason(ns, 'beta', 'Suspended');
  await t.createIdentity(ns, 'early', { serviceAccountName: 'me', secretName: 'beta-identity' });
  await waitReason(ns, 'early', 'SecretOwnedByAnother');
  await op.idle();
  assert.equal(await a.getSecret(ns, 'beta-identity').then(() => 'exists', (e) => e.code), 404, 'the shadow created no Secret under beta\'s name');

  await t.patchIdentity(ns, 'beta', { spec: { suspended: false } });
  const beta = await waitReady(ns, 'beta');
  const secret = await a.getSecret(ns, 'beta-identity');
  assert.equal(secret.metadata.ownerReferences?.[0]?.uid, beta.metadata.uid, 'beta owns its Secret');
  assert.ok(secret.data?.['policy.json'], 'beta\'s policy.json rides its Secret');

  await t.createIdentity(ns, 'late', { serviceAccountName: 'me', secretName: 'beta-identity', suspended: true });
  const late = await waitReason(ns, 'late', 'SecretOwnedByAnother');
  assert.equal(late.status?.serialNumber, undefined);
  await op.idle();
  assert.equal((await a.getSecret(ns, 'beta-identity')).metadata.resourceVersion, secret.metadata.resourceVersion, 'beta\'s Secret (and policy.json) untouched');
  assert.ok(isReady(await a.getIdentity(ns, 'beta')));
  assert.ok(!(await deniedSerials()).has(beta.status!.serialNumber!));
});

test('hole 3: a squatted policy ConfigMap (pod-certificate delivery, whose pods mount it) is never overwritten nor adopted: PolicyConfigMapConflict (condition, event, metric) with backoff', async (t) => {
  const { ns, t: ta } = await tenantNamespace('squat', ['gamma']);
  const squat = await ta.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'gamma-identity-policy' }, data: { 'policy.json': '{"allow":"everyone"}' } } });
  await ta.createIdentity(ns, 'gamma', { delivery: 'PodCertificate' });
  const gamma = await waitReason(ns, 'gamma', 'PolicyConfigMapConflict');
  assert.match(reasonOf(gamma)!.message, /gamma-identity-policy/);
  await eventually(async () => (await warnings(ns, 'gamma', 'PolicyConfigMapConflict')).length > 0, { what: 'Warning event' });

  // Attempts over 10 s: exponential backoff (1 s, 2 s, 4 s, 8 s...) makes a handful; the old 500 ms requeue made 20.
  const first = await eventually(async () => errorsFor('agentidentity', 'PolicyConfigMapConflict'), { what: 'metric' });
  await new Promise((r) => setTimeout(r, 10_000));
  const attempts = (await errorsFor('agentidentity', 'PolicyConfigMapConflict')) - first;
  t.diagnostic(`${attempts} more failed reconciles in 10 s after the first ${first}`);
  assert.ok(attempts >= 1 && attempts <= 6, `retried with backoff: ${attempts} attempts in 10 s`);

  const now = await readCM(ns, 'gamma-identity-policy');
  assert.equal(now.metadata.resourceVersion, squat.metadata!.resourceVersion, 'the squatter\'s ConfigMap was not written');
  assert.deepEqual(now.data, { 'policy.json': '{"allow":"everyone"}' });
  assert.equal(now.metadata.ownerReferences, undefined, 'not adopted');

  // Once the squatter is gone, a retry publishes the identity's own policy.
  await ta.core.deleteNamespacedConfigMap({ namespace: ns, name: 'gamma-identity-policy' });
  const ready = await eventually(async () => { const i = await a.getIdentity(ns, 'gamma'); return isReady(i) && i; }, { timeoutMs: 45_000, what: 'gamma Ready after the squatter left' });
  const own = await readCM(ns, 'gamma-identity-policy');
  assert.equal(own.metadata.ownerReferences?.find((o) => o.controller)?.uid, ready.metadata.uid);
});

test('Secret delivery: a ConfigMap of the policy\'s name is no pod\'s policy (policy.json rides the Secret), so it is neither written nor refused', async () => {
  const { ns, t: ta } = await tenantNamespace('squat-secret', ['zeta']);
  const squat = await ta.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'zeta-identity-policy' }, data: { 'policy.json': '{"allow":"everyone"}' } } });
  await ta.createIdentity(ns, 'zeta');
  const zeta = await waitReady(ns, 'zeta');
  const policy = JSON.parse(Buffer.from((await a.getSecret(ns, 'zeta-identity')).data!['policy.json']!, 'base64').toString('utf8')) as { spiffeID: string };
  assert.equal(policy.spiffeID, zeta.status!.spiffeID);
  await op.idle();
  assert.equal((await readCM(ns, 'zeta-identity-policy')).metadata.resourceVersion, squat.metadata!.resourceVersion, 'the tenant\'s ConfigMap was not written');
});

test('hole 3: an operator object stripped of its managed-by label is restored (owned by UID), not fought over with 409s', async () => {
  const { ns, t: ta } = await tenantNamespace('strip', ['delta']);
  // Pod-certificate delivery keeps policy.json in a ConfigMap: the object stripped here.
  await ta.createIdentity(ns, 'delta', { delivery: 'PodCertificate' });
  const delta = await waitReady(ns, 'delta');
  const name = 'delta-identity-policy';
  await ta.core.patchNamespacedConfigMap({ namespace: ns, name, body: { metadata: { labels: { [LABEL_MANAGED_BY]: null } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  const restored = await eventually(async () => {
    const cm = await readCM(ns, name);
    return cm.metadata.labels?.[LABEL_MANAGED_BY] === 'agent-identity-operator' && cm;
  }, { what: 'label restored' });
  assert.equal(restored.metadata.ownerReferences?.find((o) => o.controller)?.uid, delta.metadata.uid);
  await op.idle();
  assert.ok(isReady(await a.getIdentity(ns, 'delta')));
});

test('hole 3: a squatted trust-bundle ConfigMap with a foreign root leaves the TrustDomain saying BundleConfigMapConflict, not Published', async () => {
  const { ns, t: ta } = await tenantNamespace('bundlesquat', ['epsilon']);
  const foreign = await createRoot({ trustDomain: 'cluster.local', algorithm: 'ECDSA', validityMs: 3_600_000, now: new Date() });
  const data = { 'ca.crt': foreign.certificatePem, 'denylist.json': '{"entries":[]}' };
  const squat = await ta.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'trust-bundle-default' }, data } });
  await ta.createIdentity(ns, 'epsilon');
  // The tenant's squat must not stop issuance for the trust domain.
  await waitReady(ns, 'epsilon');
  const td = await eventually(async () => {
    const x = await a.getTrustDomain('default');
    return x.status?.conditions?.find((c) => c.type === 'BundlePublished' && c.reason === 'BundleConfigMapConflict') && x;
  }, { what: 'BundleConfigMapConflict' });
  const cond = td.status!.conditions!.find((c) => c.type === 'BundlePublished')!;
  assert.equal(cond.status, 'False');
  assert.match(cond.message, new RegExp(ns));
  assert.equal(td.status!.conditions!.find((c) => c.type === 'Ready')!.status, 'True', 'the CA still signs');
  await eventually(async () => (await a.trustDomainEvents('default')).some((e) => e.reason === 'BundleConfigMapConflict' && e.type === 'Warning'), { what: 'Warning event' });
  assert.ok(await errorsFor('trustdomain', 'BundleConfigMapConflict') >= 1);
  const now = await readCM(ns, 'trust-bundle-default');
  assert.equal(now.metadata.resourceVersion, squat.metadata!.resourceVersion, 'the squatter\'s bundle was not written');

  await ta.core.deleteNamespacedConfigMap({ namespace: ns, name: 'trust-bundle-default' });
  await eventually(async () => (await a.getTrustDomain('default')).status?.conditions?.some((c) => c.type === 'BundlePublished' && c.status === 'True'), { timeoutMs: 45_000, what: 'Published again' });
  const own = await readCM(ns, 'trust-bundle-default');
  assert.equal(own.metadata.ownerReferences?.find((o) => o.controller)?.uid, td.metadata.uid, 'the copy is owned by the TrustDomain');
  assert.notEqual(own.data?.['ca.crt'], foreign.certificatePem);
});
