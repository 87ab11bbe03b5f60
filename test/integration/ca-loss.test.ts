// A self-signed CA Secret that is deleted or corrupted after agents came to
// trust its root must not become a new root no agent trusts. Deleted while the
// operator runs: it is written back from memory, unchanged. Deleted while the
// operator is down: nothing signs until asked (the rotate annotation), and then
// the new root is in every bundle copy before any leaf is issued under it.
// Corrupted: identities whose certificates still work stay Ready.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PatchStrategy, setHeaderOptions, Watch } from '@kubernetes/client-node';
import type { TestEnv } from '../support/env.ts';
import { setUp, tearDown } from '../support/suite.ts';
import { eventually, runOperator, OPERATOR_NAMESPACE } from '../support/operator.ts';
import { api, isReady, secretText } from '../support/objects.ts';
import { parseCertificates, fingerprintOf } from '../../src/pki/parse.ts';
import { verifyChain } from '../../src/pki/verify.ts';
import type { Operator } from '../../src/operator.ts';
import type { Config } from '../../src/config.ts';
import type { AgentIdentity, ConfigMap, Secret } from '../../src/api/types.ts';

const OPTS: Partial<Config> = { propagationDelayMs: 1500, reissueWindowMs: 3000, rotationGraceMs: 3000, rotationPollMs: 300 };
let env: TestEnv;
let op: Operator;
let a: ReturnType<typeof api>;
let ns: string;
const NAMES = ['a', 'b', 'c'];

before(async () => {
  ({ env, op, a } = await setUp({ operator: OPTS }));
  ns = await env.namespace('ca-loss');
  for (const n of NAMES) await a.createIdentity(ns, n, { duration: '1h' });
  await eventually(async () => (await Promise.all(NAMES.map((n) => a.getIdentity(ns, n)))).every(isReady), { what: 'identities Ready' });
});
after(() => tearDown({ env, op }));

const caSecret = () => a.getSecret(OPERATOR_NAMESPACE, 'default-ca');
/** Replaces the CA Secret's data as an admin would (kubectl edit). */
const replaceCAData = async (data: Record<string, string>) => {
  const { metadata: m } = await caSecret();
  await a.core.replaceNamespacedSecret({ namespace: OPERATOR_NAMESPACE, name: 'default-ca', body: { metadata: { name: m.name, resourceVersion: m.resourceVersion, labels: m.labels, annotations: m.annotations }, data } });
};
const deleteCASecret = () => a.core.deleteNamespacedSecret({ namespace: OPERATOR_NAMESPACE, name: 'default-ca' });
const serials = async () => Promise.all(NAMES.map(async (n) => (await a.getIdentity(ns, n)).status!.serialNumber));
const rootOf = async (pem: string) => fingerprintOf(parseCertificates(pem)[0]!);
const fingerprints = async (pem: string) => Promise.all(parseCertificates(pem).map((c) => fingerprintOf(c)));
const events = async (reason: string) => (await a.trustDomainEvents('default')).filter((e) => e.reason === reason);
const condition = (o: AgentIdentity, type: string) => o.status?.conditions?.find((c) => c.type === type);
const sum = async (m: { get(): Promise<{ values: Array<{ value: number; labels: Record<string, unknown> }> }> }, reason?: string) =>
  (await m.get()).values.filter((v) => !reason || v.labels.reason === reason).reduce((s, v) => s + v.value, 0);

test('a CA Secret deleted while the operator runs is written back unchanged; no leaf is re-issued', async () => {
  const was = await caSecret();
  const root = await rootOf(secretText(was, 'root.crt'));
  const before = await serials();
  const issued = await sum(op.metrics.issuances);

  await deleteCASecret();
  await eventually(async () => (await events('CASecretRestored')).length > 0, { what: 'a CASecretRestored event' });
  const now = await caSecret();
  assert.notEqual(now.metadata.uid, was.metadata.uid, 'a new Secret object');
  assert.deepEqual(now.data, was.data, 'holding the same CA: root, intermediate and their keys');
  assert.equal(await rootOf(secretText(now, 'root.crt')), root);
  const [lost] = await events('CASecretLost');
  assert.equal(lost?.type, 'Warning');
  assert.match(lost!.message!, /default-ca was deleted .* writing it back from the copy this operator holds in memory/);
  assert.equal((await events('CASecretRestored'))[0]!.type, 'Warning');
  assert.equal(await sum(op.metrics.reconcileErrors, 'CASecretLost'), 1);
  assert.equal(await sum(op.metrics.caGenerated), 1, 'only the first CA was ever generated');

  await op.idle();
  assert.ok(isReady(await a.getTrustDomain('default')));
  assert.deepEqual(await serials(), before, 'no identity was re-issued');
  assert.equal(await sum(op.metrics.issuances), issued);
});

test('a corrupt CA Secret leaves identities whose certificates still work Ready; deleting it restores the last good CA', async () => {
  const good = await caSecret();
  const garbage = Buffer.from('not a key').toString('base64');
  await replaceCAData({ ...good.data, 'root.key': garbage, 'intermediate.key': garbage });
  await eventually(async () => (await a.getTrustDomain('default')).status?.conditions?.some((c) => c.type === 'Ready' && c.reason === 'CANotUsable'), { what: 'TrustDomain CANotUsable' });
  for (const n of NAMES) {
    const i = await eventually(async () => { const x = await a.getIdentity(ns, n); return condition(x, 'Issuing')?.reason === 'TrustDomainNotReady' && x; }, { what: `${n} told the CA cannot issue` });
    assert.equal(condition(i, 'Ready')?.status, 'True', `${n} stays Ready: ${JSON.stringify(condition(i, 'Ready'))}`);
    assert.equal(condition(i, 'Issuing')?.status, 'False');
    assert.match(condition(i, 'Issuing')!.message, /CANotUsable/);
  }

  // Deleting the broken Secret brings back the CA the operator last loaded, not a new one.
  await deleteCASecret();
  await eventually(async () => isReady(await a.getTrustDomain('default')), { what: 'TrustDomain Ready again' });
  assert.deepEqual((await caSecret()).data, good.data, 'the last good CA was written back');
  for (const n of NAMES) await eventually(async () => condition(await a.getIdentity(ns, n), 'Issuing')?.reason === 'UpToDate', { what: `${n} up to date` });
});

interface Version { rv: number; kind: 'Secret' | 'ConfigMap'; key: string; obj: Secret | ConfigMap }

/** Every version of the operator's Secrets and ConfigMaps. resourceVersion is the etcd revision, one order across both kinds. */
async function record() {
  const versions: Version[] = [];
  const watches = await Promise.all((['Secret', 'ConfigMap'] as const).map((kind) => new Watch(env.kc).watch(
    `/api/v1/${kind === 'Secret' ? 'secrets' : 'configmaps'}`, { labelSelector: 'app.kubernetes.io/managed-by=agent-identity-operator' },
    (type, o: Secret | ConfigMap) => {
      if (type === 'ADDED' || type === 'MODIFIED') versions.push({ rv: Number(o.metadata.resourceVersion), kind, key: `${kind}/${o.metadata.namespace}/${o.metadata.name}`, obj: o });
    }, () => undefined)));
  return { versions, stop: () => watches.forEach((w) => w.abort()) };
}

test('deleted while the operator was down: no new CA until asked, then the new root is in every bundle copy before it signs', async (t) => {
  const oldRoot = (await a.getTrustDomain('default')).status!.roots![0]!.fingerprint;
  const before = await serials();
  await op.stop();
  await deleteCASecret();
  op = await runOperator(env.kc, OPTS);

  const td = await eventually(async () => { const x = await a.getTrustDomain('default'); return x.status?.conditions?.some((c) => c.type === 'Ready' && c.reason === 'CASecretLost') && x; }, { what: 'TrustDomain CASecretLost' });
  const ready = td.status!.conditions!.find((c) => c.type === 'Ready')!;
  assert.equal(ready.status, 'False');
  assert.match(ready.message, new RegExp(`default-ca was deleted after this TrustDomain's agents came to trust root ${oldRoot}`));
  assert.match(ready.message, /restore the Secret from a backup/);
  assert.match(ready.message, /agent-identity ca rotate default/);
  assert.ok((await events('CASecretLost')).some((e) => e.type === 'Warning' && /holds no copy/.test(e.message!)), 'a Warning event says so');
  assert.ok(await sum(op.metrics.reconcileErrors, 'CASecretLost') >= 1);
  for (const n of NAMES) {
    const i = await eventually(async () => { const x = await a.getIdentity(ns, n); return /CASecretLost/.test(condition(x, 'Issuing')?.message ?? '') && x; }, { what: `${n} told the CA is lost` });
    assert.equal(condition(i, 'Ready')?.status, 'True', `${n} stays Ready with its old certificate`);
  }
  await op.idle();
  assert.equal(await sum(op.metrics.caGenerated), 0, 'no CA was generated');
  await assert.rejects(caSecret(), (e: { code?: number }) => e.code === 404, 'and no CA Secret written');
  assert.deepEqual(await serials(), before);

  const rec = await record();
  t.after(() => rec.stop());
  await eventually(async () => rec.versions.some((v) => v.key === `ConfigMap/${OPERATOR_NAMESPACE}/trust-bundle-default`) && NAMES.every((n) => rec.versions.some((v) => v.key === `Secret/${ns}/${n}-identity`)), { what: 'the watches to list what exists' });
  await a.custom.patchClusterCustomObject(
    { group: 'agentidentity.dev', version: 'v1alpha1', plural: 'trustdomains', name: 'default', body: { metadata: { annotations: { 'agentidentity.dev/rotate-requested-at': 'replace-lost-ca' } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  const done = await eventually(async () => {
    const x = await a.getTrustDomain('default');
    return isReady(x) && !x.status?.rotation && x.status?.roots?.length === 1 && x.status.roots[0]!.fingerprint !== oldRoot && x;
  }, { timeoutMs: 60_000, what: 'the replacement to complete' });
  const newRoot = done.status!.roots![0]!.fingerprint;
  assert.equal(done.status!.lastRotationRequest, 'replace-lost-ca');
  const newRootCert = parseCertificates(secretText(await caSecret(), 'root.crt'));
  for (const n of NAMES) {
    const s = await a.getSecret(ns, `${n}-identity`);
    assert.deepEqual(await verifyChain(parseCertificates(secretText(s, 'tls.crt')), newRootCert, new Date()), { ok: true }, `${n} moved to the new root`);
    await eventually(async () => isReady(await a.getIdentity(ns, n)), { what: `${n} Ready` });
  }
  await eventually(async () => rec.versions.some((v) => v.key === `Secret/${OPERATOR_NAMESPACE}/default-ca` && !v.obj.metadata.annotations?.['agentidentity.dev/rotation-phase']), { what: 'the watch to deliver the last CA write' });
  rec.stop();

  const versions = [...rec.versions].sort((x, y) => x.rv - y.rv);
  const firstCA = versions.find((v) => v.key === `Secret/${OPERATOR_NAMESPACE}/default-ca`)!;
  assert.equal(firstCA.obj.data!['root.key'], undefined, 'the new CA was written with no root that could sign');
  assert.equal(firstCA.obj.data!['intermediate.key'], undefined);
  assert.equal(await rootOf(secretText(firstCA.obj as Secret, 'incoming-root.crt')), newRoot);
  // The first leaf under the new root, and what every bundle copy held at that moment.
  let firstLeaf: Version | undefined;
  for (const v of versions) {
    if (v.kind !== 'Secret' || !v.obj.metadata.labels?.['agentidentity.dev/identity']) continue;
    if ((await verifyChain(parseCertificates(secretText(v.obj as Secret, 'tls.crt')), newRootCert, new Date())).ok) { firstLeaf = v; break; }
  }
  assert.ok(firstLeaf, 'a leaf under the new root was recorded');
  const copies = new Map<string, Version>();
  for (const v of versions) if (v.rv < firstLeaf.rv && (v.kind === 'ConfigMap' ? v.obj.metadata.name === 'trust-bundle-default' : v.obj.metadata.labels?.['agentidentity.dev/identity'])) copies.set(v.key, v);
  assert.deepEqual([...copies.keys()].sort(), [`ConfigMap/${OPERATOR_NAMESPACE}/trust-bundle-default`, `ConfigMap/${ns}/trust-bundle-default`, ...NAMES.map((n) => `Secret/${ns}/${n}-identity`)].sort());
  for (const [key, v] of copies) {
    const pem = v.kind === 'ConfigMap' ? (v.obj as ConfigMap).data!['ca.crt']! : secretText(v.obj as Secret, 'ca.crt');
    assert.deepEqual((await fingerprints(pem)).sort(), [oldRoot, newRoot].sort(), `${key} carried both roots when the first new leaf was written`);
  }
  const order = (await a.trustDomainEvents('default')).filter((e) => ['StartRotation', 'SwitchSigner', 'RetireRoot', 'FinishRotation'].includes(e.reason!));
  assert.ok(order.every((e) => e.message!.includes(newRoot)), 'every phase of this replacement was recorded, naming the new root');
  assert.match(order.find((e) => e.reason === 'StartRotation')!.message!, /\(CASecretLost\).*next to the 1 old root/);
  t.diagnostic(`${versions.length} versions recorded; first new-root leaf at rv ${firstLeaf.rv}, ${copies.size} bundle copies all carried both roots`);
});
