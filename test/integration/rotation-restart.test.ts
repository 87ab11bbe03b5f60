// Every rotation step resumes after a crash: the operator process is killed
// (SIGKILL) in each phase and restarted, and the rotation still completes
// with every copy of the bundle consistent.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { startTestEnv, type TestEnv } from '../support/env.ts';
import { spawnOperator, eventually, ensureNamespace, OPERATOR_NAMESPACE } from '../support/operator.ts';
import { api, isReady, secretText } from '../support/objects.ts';
import { parseCertificates } from '../../src/pki/parse.ts';
import { verifyChain } from '../../src/pki/verify.ts';

let env: TestEnv;
let a: ReturnType<typeof api>;
let operator: ReturnType<typeof spawnOperator> | undefined;
const FLAGS = ['--rotation-propagation-delay=4s', '--rotation-reissue-window=4s', '--rotation-grace=4s', '--rotation-poll=300ms'];

before(async () => { env = await startTestEnv(); a = api(env.kc); await ensureNamespace(env.kc, OPERATOR_NAMESPACE); });
after(async () => { await operator?.kill(); await env?.stop(); });

const caPhase = async () => (await a.getSecret(OPERATOR_NAMESPACE, 'default-ca')).metadata.annotations?.['agentidentity.dev/rotation-phase'];

test('killing the operator in each rotation phase still completes the rotation consistently', async (t) => {
  await a.createTrustDomain('default', { trustDomain: 'cluster.local', ca: { selfSigned: {} } });
  const ns = await env.namespace('crash');
  operator = spawnOperator(env.kubeconfigPath, FLAGS);
  const names = ['a', 'b', 'c'];
  for (const n of names) await a.createIdentity(ns, n, { duration: '1h' });
  await eventually(async () => (await Promise.all(names.map((n) => a.getIdentity(ns, n)))).every(isReady), { what: 'identities Ready' });
  const oldRoot = (await a.getTrustDomain('default')).status!.roots![0]!.fingerprint;

  await a.custom.patchClusterCustomObject(
    { group: 'agentidentity.dev', version: 'v1alpha1', plural: 'trustdomains', name: 'default', body: { metadata: { annotations: { 'agentidentity.dev/rotate-requested-at': 'crash-test' } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  for (const phase of ['PublishingRoot', 'ReissuingLeaves', 'RetiringRoot']) {
    await eventually(async () => (await caPhase()) === phase, { timeoutMs: 30_000, intervalMs: 50, what: `phase ${phase}` });
    await operator.kill();
    t.diagnostic(`killed the operator in ${phase}`);
    operator = spawnOperator(env.kubeconfigPath, FLAGS);
  }
  const td = await eventually(async () => {
    const x = await a.getTrustDomain('default');
    return !x.status?.rotation && x.status?.roots?.length === 1 && x.status.roots[0]!.fingerprint !== oldRoot && x;
  }, { timeoutMs: 60_000, what: 'rotation complete after the restarts' });
  assert.equal(td.status!.lastRotationRequest, 'crash-test');
  assert.equal(await caPhase(), undefined);

  // Consistent: one bundle everywhere, every leaf under its root, one rotation only.
  const bundle = secretText(await a.getSecret(ns, 'a-identity'), 'ca.crt');
  const roots = parseCertificates(bundle);
  assert.equal(roots.length, 1);
  for (const n of names) {
    const s = await a.getSecret(ns, `${n}-identity`);
    assert.equal(secretText(s, 'ca.crt'), bundle, `${n}'s bundle`);
    assert.deepEqual(await verifyChain(parseCertificates(secretText(s, 'tls.crt')), roots, new Date()), { ok: true }, `${n} chains to the new root`);
  }
  for (const cmNs of [ns, OPERATOR_NAMESPACE]) {
    const cm = await a.core.readNamespacedConfigMap({ namespace: cmNs, name: 'trust-bundle-default' });
    assert.equal(cm.data!['ca.crt'], bundle, `ConfigMap in ${cmNs}`);
  }
  const events = await a.core.listNamespacedEvent({ namespace: 'default' });
  assert.equal(events.items.filter((e) => e.reason === 'StartRotation').length, 1, 'the rotation was started once, not again after a restart');
});
