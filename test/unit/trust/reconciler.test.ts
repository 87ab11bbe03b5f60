// Table-style tests of the trust reconciler's decisions over in-memory fakes
// (the model: cert-manager's trigger_controller_test.go): what each starting
// state makes it write, report and return.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ANNOTATION_ROTATE_REQUESTED_AT, SECRET_BUNDLE, SECRET_CERT, SECRET_KEY } from '../../../src/api/group.ts';
import { createRoot } from '../../../src/pki/ca.ts';
import { getCondition } from '../../../src/api/conditions.ts';
import type { ConfigMap, TrustDomain } from '../../../src/api/types.ts';
import { KubeError } from '../../../src/kube/errors.ts';
import type { Result } from '../../../src/controller/queue.ts';
import { CONFLICT_REQUEUE_MS, ReconcileFailure } from '../../../src/controller/failure.ts';
import { WorkQueue } from '../../../src/controller/queue.ts';
import { trustReconciler } from '../../../src/trust/reconciler.ts';
import { bundleConfigMapName } from '../../../src/api/defaults.ts';
import { FakeCluster, OPERATOR_NAMESPACE, POLL_MS, broughtInTrustDomain, selfSignedTrustDomain } from './fakes.ts';

type Outcome = { result: Result } | { error: unknown };

async function run(reconcile: (key: string) => Promise<Result>, key: string): Promise<Outcome> {
  try {
    return { result: await reconcile(key) };
  } catch (error) {
    return { error };
  }
}

/** Reconciles until a reconcile writes nothing (at most 10 times), as the queue would. */
async function settle(c: FakeCluster, reconcile: (key: string) => Promise<Result>, key: string): Promise<void> {
  for (let i = 0; i < 10; i++) {
    c.writes = [];
    const outcome = await run(reconcile, key);
    if ('error' in outcome) throw outcome.error;
    if (c.writes.length === 0) return;
  }
  assert.fail(`${key} did not settle`);
}

function condition(c: FakeCluster, name: string, type: string) {
  return getCondition(c.trustDomains.get(name)?.status?.conditions, type);
}

async function metricValue(c: FakeCluster, metric: 'reconcileErrors' | 'caGenerated' | 'transientErrors', labels: Record<string, string>): Promise<number> {
  const { values } = await c.metrics[metric].get();
  return values.find((v) => Object.entries(labels).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x))?.value ?? 0;
}

test('a fresh TrustDomain whose CA Secret the API server confirms absent gets exactly one CA Secret', async () => {
  const c = new FakeCluster();
  c.addTrustDomain(selfSignedTrustDomain());
  const reconcile = trustReconciler(c.deps());
  const outcome = await run(reconcile, 'default');
  assert.ok('result' in outcome);
  assert.deepEqual(c.writes.filter((w) => w.startsWith('create Secret')), [`create Secret ${OPERATOR_NAMESPACE}/default-ca`]);
  assert.deepEqual(c.events.map((e) => `${e.type} ${e.reason}`), ['Normal CAGenerated']);
  assert.equal(await metricValue(c, 'caGenerated', { trust_domain: 'default' }), 1);
  assert.equal(condition(c, 'default', 'Ready')?.reason, 'CAReady');
  assert.equal(condition(c, 'default', 'BundlePublished')?.status, 'True');
  const state = c.store.get('default');
  assert.ok(state?.signer, 'the identity reconciler can sign');
  assert.equal(c.trustDomains.get('default')?.status?.roots?.[0]?.fingerprint, state.activeRootFingerprint);
  assert.ok(c.configMaps.get(`${OPERATOR_NAMESPACE}/${bundleConfigMapName('default')}`)?.data?.[SECRET_BUNDLE]?.includes('BEGIN CERTIFICATE'));
});

for (const [code, reason, transient] of [[403, 'Forbidden', false], [500, 'InternalError', true], [0, 'ECONNRESET', true]] as const) {
  test(`a CA Secret read answered ${code} ${reason} never creates a CA: CASecretUnreadable, retried with backoff${transient ? ', reported once it persists' : ''}`, async () => {
    const c = new FakeCluster();
    c.addTrustDomain(selfSignedTrustDomain());
    c.secretReadError = new KubeError(code, reason, `read failed: ${reason}`);
    const reconcile = trustReconciler(c.deps());
    // A transient error is retried with backoff and reported only on its 5th attempt in a row.
    for (let attempt = 1; transient && attempt < 5; attempt++) {
      assert.deepEqual(await run(reconcile, 'default'), { result: { backoff: true } }, `attempt ${attempt}`);
      assert.deepEqual([c.writes, c.events, c.store.failure('default')], [[], [], undefined], `attempt ${attempt}: nothing written or reported`);
    }
    const outcome = await run(reconcile, 'default');
    assert.ok('error' in outcome && outcome.error instanceof ReconcileFailure && outcome.error.retry, 'thrown, so the queue backs off');
    assert.equal((outcome.error as ReconcileFailure).reason, 'CASecretUnreadable');
    assert.deepEqual(c.writes, ['patch TrustDomain default status'], 'no create of any kind');
    assert.equal(condition(c, 'default', 'Ready')?.reason, 'CASecretUnreadable');
    assert.equal(condition(c, 'default', 'Ready')?.status, 'False');
    assert.deepEqual(c.events.map((e) => `${e.type} ${e.reason}`), ['Warning CASecretUnreadable']);
    assert.equal(await metricValue(c, 'reconcileErrors', { controller: 'trustdomain', reason: 'CASecretUnreadable' }), 1);
    assert.equal(await metricValue(c, 'transientErrors', { controller: 'trustdomain', reason: code === 500 ? 'ServerError' : 'Network' }), transient ? 5 : 0);
    assert.match(c.store.failure('default') ?? '', /^CASecretUnreadable: /);
  });
}

/** A settled TrustDomain with an identity in `agents`, then one more in `team-b`: its next reconcile writes that copy and the status. */
async function signingWithNewNamespace(): Promise<{ c: FakeCluster; reconcile: (key: string) => Promise<Result>; serial: string }> {
  const c = new FakeCluster();
  c.addTrustDomain(selfSignedTrustDomain());
  c.identities = [identityIn('agents')];
  const reconcile = trustReconciler(c.deps());
  await settle(c, reconcile, 'default');
  c.identities = [identityIn('agents'), identityIn('team-b')];
  c.writes = [];
  c.events = [];
  return { c, reconcile, serial: c.store.get('default')!.signer!.certificate.serialNumber };
}

function identityIn(namespace: string) {
  return { apiVersion: 'agentidentity.dev/v1alpha1', kind: 'AgentIdentity', metadata: { name: 'planner', namespace }, spec: { serviceAccountName: 'planner' } } as const;
}

/** The CA still signs, with the same signer; nothing was reported as a failure. */
function assertStillSigning(c: FakeCluster, serial: string): void {
  assert.equal(c.store.get('default')?.signer?.certificate.serialNumber, serial, 'the store keeps the signer');
  assert.equal(c.store.failure('default'), undefined, 'no store.fail');
  assert.deepEqual(c.events.filter((e) => e.type === 'Warning'), [], 'no Warning');
  assert.equal(condition(c, 'default', 'Ready')?.status, 'True');
}

const statusFaults = [
  { err: new KubeError(409, 'Conflict', 'the object has been modified'), reason: 'Conflict', want: { requeueAfter: CONFLICT_REQUEUE_MS, outcome: 'requeue' } },
  { err: new KubeError(503, 'ServiceUnavailable', 'the server is currently unable to handle the request'), reason: 'ServerError', want: { backoff: true } },
] as const;
for (const tc of statusFaults) {
  test(`a status write answered ${tc.err.code} once keeps the CA signing, is counted, and requeues the key (${JSON.stringify(tc.want)})`, async () => {
    const { c, reconcile, serial } = await signingWithNewNamespace();
    c.failNext('patch TrustDomain default status', tc.err);
    assert.deepEqual(await run(reconcile, 'default'), { result: tc.want });
    assert.ok(c.configMaps.has(`team-b/${bundleConfigMapName('default')}`), 'the bundle copy was still published');
    assertStillSigning(c, serial);
    assert.equal(await metricValue(c, 'transientErrors', { controller: 'trustdomain', reason: tc.reason }), 1);
    assert.equal(await metricValue(c, 'reconcileErrors', { controller: 'trustdomain', reason: tc.err.reason }), 0);
    // Through a real work queue: the key comes back on its own and the status is written.
    const queue = new WorkQueue(reconcile, { concurrency: 1, backoff: { baseMs: 5, maxMs: 50 } });
    c.failNext('patch TrustDomain default status', tc.err);
    c.writes = [];
    queue.add('default');
    await waitFor(() => c.trustDomains.get('default')?.status?.bundleNamespaces === 3, 'the status is written on a requeue');
    await queue.shutdown();
    assert.equal(c.writes.filter((w) => w === 'patch TrustDomain default status').length, 2, 'one failed, one written');
    assertStillSigning(c, serial);
  });
}

test('a bundle copy write that conflicts (a tenant edited it) holds back no other namespace and no status: requeued at once', async () => {
  const { c, reconcile, serial } = await signingWithNewNamespace();
  c.identities = [identityIn('agents'), identityIn('team-b'), identityIn('team-c')];
  c.failNext(`create ConfigMap team-b/${bundleConfigMapName('default')}`, new KubeError(409, 'Conflict', 'the object has been modified'));
  assert.deepEqual(await run(reconcile, 'default'), { result: { requeueAfter: CONFLICT_REQUEUE_MS, outcome: 'requeue' } });
  assert.ok(c.configMaps.has(`team-c/${bundleConfigMapName('default')}`), 'the namespace after it got its copy');
  assert.equal(c.trustDomains.get('default')?.status?.bundleNamespaces, 4, 'status written');
  assert.equal(condition(c, 'default', 'BundlePublished')?.status, 'True', 'as it was: a retried write is not a failure');
  assertStillSigning(c, serial);
  await settle(c, reconcile, 'default');
  assert.ok(c.configMaps.has(`team-b/${bundleConfigMapName('default')}`), 'the retry wrote it');
});

test('a bundle copy write that keeps failing with 503 is reported on BundlePublished after 5 attempts; Ready and signing stay', async () => {
  const { c, reconcile, serial } = await signingWithNewNamespace();
  const copy = `create ConfigMap team-b/${bundleConfigMapName('default')}`;
  for (let i = 0; i < 5; i++) c.failNext(copy, new KubeError(503, 'ServiceUnavailable', 'etcd leader changed'));
  for (let attempt = 1; attempt < 5; attempt++) assert.deepEqual(await run(reconcile, 'default'), { result: { backoff: true } });
  assert.equal(c.events.length, 0, 'nothing reported before the 5th attempt');
  const outcome = await run(reconcile, 'default');
  assert.ok('error' in outcome && outcome.error instanceof ReconcileFailure && outcome.error.retry, 'reported, then retried with backoff');
  assert.deepEqual(c.events.map((e) => `${e.type} ${e.reason}`), ['Warning ServiceUnavailable']);
  assert.match(c.events[0]!.message, /team-b.*etcd leader changed.*5 attempts/);
  assert.equal(condition(c, 'default', 'BundlePublished')?.status, 'False');
  assert.equal(c.store.get('default')?.signer?.certificate.serialNumber, serial, 'the store keeps the signer');
  assert.equal(c.store.failure('default'), undefined);
  assert.equal(condition(c, 'default', 'Ready')?.status, 'True');
  await settle(c, reconcile, 'default');
  assert.equal(condition(c, 'default', 'BundlePublished')?.status, 'True', 'published once the API server answers');
});

test('a copy a tenant edits again right after its restore is restored again only after a second, while other copies and status go on', async () => {
  const { c, reconcile, serial } = await signingWithNewNamespace();
  await settle(c, reconcile, 'default');
  const key = `agents/${bundleConfigMapName('default')}`;
  const tamper = () => c.configMaps.set(key, { ...c.configMaps.get(key)!, data: { [SECRET_BUNDLE]: 'not the bundle' } });
  tamper();
  c.writes = [];
  await run(reconcile, 'default');
  assert.deepEqual(c.writes, [`replace ConfigMap ${key}`], 'the first edit is undone at once');
  tamper();
  c.writes = [];
  c.identities = [...c.identities, identityIn('team-c')];
  const outcome = await run(reconcile, 'default');
  assert.ok('result' in outcome && outcome.result.requeueAfter! > 0 && outcome.result.requeueAfter! <= 1000, `looked at again within the second: ${JSON.stringify(outcome)}`);
  assert.ok(!c.writes.includes(`replace ConfigMap ${key}`), 'the second edit waits its turn');
  assert.ok(c.writes.includes(`create ConfigMap team-c/${bundleConfigMapName('default')}`), 'a new namespace\'s copy is not held back');
  assertStillSigning(c, serial);
  await new Promise((r) => setTimeout(r, outcome.result.requeueAfter));
  c.writes = [];
  await run(reconcile, 'default');
  assert.deepEqual(c.writes, [`replace ConfigMap ${key}`], 'restored when its turn comes');
});

async function waitFor(ok: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('in steady state a second reconcile makes no API write', async () => {
  const c = new FakeCluster();
  c.addTrustDomain(selfSignedTrustDomain());
  const reconcile = trustReconciler(c.deps());
  await settle(c, reconcile, 'default');
  c.writes = [];
  const events = c.events.length;
  const outcome = await run(reconcile, 'default');
  assert.ok('result' in outcome);
  assert.deepEqual(c.writes, []);
  assert.equal(c.events.length, events);
  assert.ok(outcome.result.requeueAfter! > 0, 'looked at again when the intermediate or root is due');
  assert.equal(outcome.result.backoff, undefined);
});

test('a rotation request walks StartRotation, SwitchSigner, RetireRoot, FinishRotation to a new root', async () => {
  const c = new FakeCluster();
  c.addTrustDomain(selfSignedTrustDomain());
  const reconcile = trustReconciler(c.deps());
  await settle(c, reconcile, 'default');
  const oldRoot = c.store.get('default')!.activeRootFingerprint;
  c.events = [];
  const trustDomain = c.trustDomains.get('default')!;
  c.addTrustDomain({ ...trustDomain, metadata: { ...trustDomain.metadata, annotations: { [ANNOTATION_ROTATE_REQUESTED_AT]: 'r1' } } });

  c.writes = [];
  const first = await run(reconcile, 'default');
  assert.deepEqual(first, { result: { requeueAfter: 1 } }, 'a step is applied alone, then looked at again at once');
  assert.deepEqual(c.writes, [`replace Secret ${OPERATOR_NAMESPACE}/default-ca`]);

  await settle(c, reconcile, 'default');
  assert.deepEqual(c.events.filter((e) => e.type === 'Normal').map((e) => e.reason), ['StartRotation', 'SwitchSigner', 'RetireRoot', 'FinishRotation']);
  assert.match(c.events[0]!.message, /^root rotation started \(Requested\): publishing the new root sha256:/);
  const status = c.trustDomains.get('default')!.status!;
  assert.equal(status.lastRotationRequest, 'r1');
  assert.equal(status.rotation, undefined);
  assert.deepEqual(status.roots?.map((r) => r.state), ['Active']);
  assert.notEqual(c.store.get('default')!.activeRootFingerprint, oldRoot);
  assert.equal(status.roots?.[0]?.fingerprint, c.store.get('default')!.activeRootFingerprint);
});

for (const kind of ['self-signed', 'brought-in'] as const) {
  test(`a ${kind} CA of a TrustDomain that publishes a bundle endpoint switches signer only after its refresh hint, for partners`, async () => {
    const c = new FakeCluster();
    const federated = (td: TrustDomain): TrustDomain => ({ ...td, spec: { ...td.spec, federation: { bundleEndpoint: { profile: { type: 'https_spiffe' }, refreshHint: '1h' } } } });
    c.addTrustDomain(federated(kind === 'self-signed' ? selfSignedTrustDomain('fed') : broughtInTrustDomain('fed', { namespace: 'certs', name: 'issuer' })));
    if (kind === 'brought-in') await issuerSecret(c);
    const reconcile = trustReconciler(c.deps());
    await settle(c, reconcile, 'fed');
    if (kind === 'self-signed') {
      const td = c.trustDomains.get('fed')!;
      c.addTrustDomain({ ...td, metadata: { ...td.metadata, annotations: { [ANNOTATION_ROTATE_REQUESTED_AT]: 'r1' } } });
    } else {
      await issuerSecret(c);
    }
    c.events = [];
    await settle(c, reconcile, 'fed');
    assert.deepEqual(c.events.filter((e) => e.type === 'Normal' && e.reason !== 'BundlePublished').map((e) => e.reason).filter((r) => r !== 'CAChanged'), ['StartRotation'], 'the propagation delay (0 here) alone does not switch the signer');
    assert.equal(c.trustDomains.get('fed')!.status!.rotation?.phase, 'PublishingRoot');
    const waiting = await run(reconcile, 'fed');
    assert.ok('result' in waiting && waiting.result.requeueAfter! <= 3_600_000, `looked at again by the end of the hint: ${JSON.stringify(waiting)}`);
    c.now = new Date(c.now.getTime() + 3_599_000);
    await settle(c, reconcile, 'fed');
    assert.equal(c.trustDomains.get('fed')!.status!.rotation?.phase, 'PublishingRoot', 'a second before the hint has passed');

    c.now = new Date(c.now.getTime() + 1_000);
    await settle(c, reconcile, 'fed');
    assert.ok(c.events.some((e) => e.reason === 'SwitchSigner'), 'once the hint passed, the new root signs');
  });
}

test('a squatted bundle ConfigMap is reported (BundleConfigMapConflict) and retried with backoff, never overwritten', async () => {
  const c = new FakeCluster();
  c.addTrustDomain(selfSignedTrustDomain());
  c.identities = [{ apiVersion: 'agentidentity.dev/v1alpha1', kind: 'AgentIdentity', metadata: { name: 'planner', namespace: 'agents' }, spec: { serviceAccountName: 'planner' } }];
  const squatted: ConfigMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: bundleConfigMapName('default'), namespace: 'agents', resourceVersion: '7' }, data: { [SECRET_BUNDLE]: 'not the bundle' } };
  c.configMaps.set(`agents/${bundleConfigMapName('default')}`, squatted);
  const outcome = await run(trustReconciler(c.deps()), 'default');
  assert.ok('result' in outcome);
  assert.equal(outcome.result.backoff, true);
  assert.deepEqual(c.configMaps.get(`agents/${bundleConfigMapName('default')}`), squatted);
  assert.ok(!c.writes.some((w) => w.includes(`ConfigMap agents/`)));
  assert.equal(condition(c, 'default', 'BundlePublished')?.reason, 'BundleConfigMapConflict');
  assert.equal(condition(c, 'default', 'Ready')?.status, 'True', 'the CA keeps signing');
  assert.ok(c.events.some((e) => e.type === 'Warning' && e.reason === 'BundleConfigMapConflict' && e.message.includes('agents')));
  assert.equal(await metricValue(c, 'reconcileErrors', { controller: 'trustdomain', reason: 'BundleConfigMapConflict' }), 1);
});

const lostCases: Array<{ name: string; annotations?: Record<string, string>; wantReason: string; wantCreates: number }> = [
  { name: 'without a copy or a request, a lost CA is held: nothing is generated', wantReason: 'CASecretLost', wantCreates: 0 },
  { name: 'a rotate request replaces a lost CA with a new root published first', annotations: { [ANNOTATION_ROTATE_REQUESTED_AT]: 'r1' }, wantReason: 'StartRotation', wantCreates: 1 },
];
for (const tc of lostCases) {
  test(tc.name, async () => {
    const c = new FakeCluster();
    const trustDomain: TrustDomain = { ...selfSignedTrustDomain(), status: { roots: [{ fingerprint: 'sha256:old', subject: 'CN=old', notBefore: '', notAfter: '', state: 'Active' }] } };
    if (tc.annotations) trustDomain.metadata.annotations = tc.annotations;
    c.addTrustDomain(trustDomain);
    const outcome = await run(trustReconciler(c.deps()), 'default');
    assert.equal(c.writes.filter((w) => w.startsWith('create Secret')).length, tc.wantCreates);
    assert.ok(c.events.some((e) => e.reason === tc.wantReason));
    if (tc.wantCreates === 0) {
      assert.deepEqual(outcome, { result: { outcome: 'error', requeueAfter: POLL_MS } }, 'waits for a change, looked at again after the poll interval');
      assert.equal(condition(c, 'default', 'Ready')?.reason, 'CASecretLost');
    }
  });
}

test('a brought-in CA Secret that does not exist: CASecretNotFound, waits without backoff', async () => {
  const c = new FakeCluster();
  c.addTrustDomain(broughtInTrustDomain('byo', { namespace: 'certs', name: 'issuer' }));
  const outcome = await run(trustReconciler(c.deps()), 'byo');
  assert.deepEqual(outcome, { result: { outcome: 'error', requeueAfter: POLL_MS } });
  assert.deepEqual(c.writes, ['patch TrustDomain byo status']);
  assert.equal(condition(c, 'byo', 'Ready')?.reason, 'CASecretNotFound');
  assert.deepEqual(c.events.map((e) => `${e.type} ${e.reason}`), ['Warning CASecretNotFound']);
});

test('a deleted TrustDomain is forgotten without an API write; its CA Secret stays', async () => {
  const c = new FakeCluster();
  c.addTrustDomain(selfSignedTrustDomain());
  const reconcile = trustReconciler(c.deps());
  await settle(c, reconcile, 'default');
  c.trustDomains.delete('default');
  c.writes = [];
  assert.deepEqual(await run(reconcile, 'default'), { result: {} });
  assert.deepEqual(c.writes, []);
  assert.equal(c.store.get('default'), undefined);
  assert.ok(c.secrets.has(`${OPERATOR_NAMESPACE}/default-ca`));
});

async function issuerSecret(c: FakeCluster): Promise<void> {
  const root = await createRoot({ trustDomain: 'cluster.local', algorithm: 'ECDSA', validityMs: 365 * 86_400_000, now: c.now });
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  c.secrets.set('certs/issuer', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'issuer', namespace: 'certs' }, data: { [SECRET_CERT]: b64(root.certificatePem), [SECRET_KEY]: b64(root.privateKeyPem) } });
  c.unwatched.add('certs/issuer');
}

test('a brought-in CA is adopted, then a changed one is published before it signs and walks the same phases', async () => {
  const c = new FakeCluster();
  c.addTrustDomain(broughtInTrustDomain('byo', { namespace: 'certs', name: 'issuer' }));
  await issuerSecret(c);
  const reconcile = trustReconciler(c.deps());
  assert.deepEqual(await run(reconcile, 'byo'), { result: { requeueAfter: 1 } });
  assert.deepEqual(c.writes, [`create ConfigMap ${OPERATOR_NAMESPACE}/byo-ca-state`]);
  await settle(c, reconcile, 'byo');
  assert.deepEqual(await run(reconcile, 'byo'), { result: { requeueAfter: POLL_MS } }, 'the unwatched Secret is polled');
  const first = c.store.get('byo')!;
  assert.ok(first.signer);
  assert.equal(condition(c, 'byo', 'Ready')?.reason, 'CAReady');

  await issuerSecret(c);
  c.writes = [];
  assert.deepEqual(await run(reconcile, 'byo'), { result: { requeueAfter: 1 } });
  assert.deepEqual(c.writes, [`replace ConfigMap ${OPERATOR_NAMESPACE}/byo-ca-state`]);
  assert.match(c.events.at(-1)!.message, /^the CA in Secret certs\/issuer changed to signer sha256:/);
  await run(reconcile, 'byo');
  assert.equal(c.store.get('byo')!.signer, undefined, 'the new CA does not sign before its roots are published');
  await settle(c, reconcile, 'byo');
  assert.deepEqual(c.events.filter((e) => e.type === 'Normal').map((e) => e.reason), ['StartRotation', 'SwitchSigner', 'RetireRoot', 'FinishRotation']);
  assert.ok(c.store.get('byo')!.signer);
  assert.notEqual(c.store.get('byo')!.activeRootFingerprint, first.activeRootFingerprint);
  assert.deepEqual(c.trustDomains.get('byo')!.status!.roots?.map((r) => r.state), ['Active']);
});

test('a deleted CA Secret this process still holds is written back unchanged: CASecretLost, CASecretRestored', async () => {
  const c = new FakeCluster();
  c.addTrustDomain(selfSignedTrustDomain());
  const reconcile = trustReconciler(c.deps());
  await settle(c, reconcile, 'default');
  const before = c.secrets.get(`${OPERATOR_NAMESPACE}/default-ca`)!.data;
  const root = c.store.get('default')!.activeRootFingerprint;
  c.secrets.delete(`${OPERATOR_NAMESPACE}/default-ca`);
  c.events = [];
  c.writes = [];
  assert.ok('result' in await run(reconcile, 'default'));
  assert.deepEqual(c.writes.filter((w) => w.includes('Secret')), [`create Secret ${OPERATOR_NAMESPACE}/default-ca`]);
  assert.deepEqual(c.events.map((e) => `${e.type} ${e.reason}`), ['Warning CASecretLost', 'Warning CASecretRestored']);
  assert.deepEqual(c.secrets.get(`${OPERATOR_NAMESPACE}/default-ca`)!.data, before);
  assert.equal(c.store.get('default')!.activeRootFingerprint, root);
});
