// Every rotation step resumes after a crash: the operator process is killed
// (SIGKILL) in each phase and restarted, and the rotation still completes
// with every copy of the bundle consistent. The phases are followed through
// a watch on the CA Secret, which delivers every version the operator writes:
// a poll can miss a phase shorter than its interval.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PatchStrategy, setHeaderOptions, Watch } from '@kubernetes/client-node';
import { startTestEnv, type TestEnv } from '../support/env.ts';
import { spawnOperator, eventually, ensureNamespace, OPERATOR_NAMESPACE } from '../support/operator.ts';
import { api, isReady, secretText } from '../support/objects.ts';
import { parseCertificates } from '../../src/pki/parse.ts';
import { verifyChain } from '../../src/pki/verify.ts';
import type { Secret } from '../../src/api/types.ts';

let env: TestEnv;
let a: ReturnType<typeof api>;
let operator: ReturnType<typeof spawnOperator> | undefined;
const FLAGS = ['--rotation-propagation-delay=4s', '--rotation-reissue-window=4s', '--rotation-grace=4s', '--rotation-poll=300ms'];

before(async () => { env = await startTestEnv(); a = api(env.kc); await ensureNamespace(env.kc, OPERATOR_NAMESPACE); });
after(async () => { await operator?.kill(); await env?.stop(); });

const PHASE = 'agentidentity.dev/rotation-phase';
const STARTED_AT = 'agentidentity.dev/rotation-started-at';
const caPhase = async () => (await a.getSecret(OPERATOR_NAMESPACE, 'default-ca')).metadata.annotations?.[PHASE];

/** Every version of the CA Secret, in the order the API server wrote them. */
async function watchCASecret() {
  const versions: { phase?: string; startedAt?: string }[] = [];
  let closed: unknown;
  const watch = await new Watch(env.kc).watch(`/api/v1/namespaces/${OPERATOR_NAMESPACE}/secrets`, { fieldSelector: 'metadata.name=default-ca' },
    (type, s: Secret) => { if (type === 'ADDED' || type === 'MODIFIED') versions.push({ phase: s.metadata.annotations?.[PHASE], startedAt: s.metadata.annotations?.[STARTED_AT] }); },
    (err) => { closed = err ?? new Error('watch closed'); });
  return {
    versions,
    reached: (phase: string) => eventually(async () => {
      if (closed) throw new Error(`the watch ended: ${closed}`);
      return versions.some((v) => v.phase === phase);
    }, { timeoutMs: 30_000, intervalMs: 10, what: `phase ${phase}` }),
    stop: () => watch.abort(),
  };
}

test('killing the operator in each rotation phase still completes the rotation consistently', async (t) => {
  await a.createTrustDomain('default', { trustDomain: 'cluster.local', ca: { selfSigned: {} } });
  const ns = await env.namespace('crash');
  operator = spawnOperator(env.kubeconfigPath, FLAGS);
  const names = ['a', 'b', 'c'];
  for (const n of names) await a.createIdentity(ns, n, { duration: '1h' });
  await eventually(async () => (await Promise.all(names.map((n) => a.getIdentity(ns, n)))).every(isReady), { what: 'identities Ready' });
  const oldRoot = (await a.getTrustDomain('default')).status!.roots![0]!.fingerprint;
  const ca = await watchCASecret();
  t.after(() => ca.stop());

  await a.custom.patchClusterCustomObject(
    { group: 'agentidentity.dev', version: 'v1alpha1', plural: 'trustdomains', name: 'default', body: { metadata: { annotations: { 'agentidentity.dev/rotate-requested-at': 'crash-test' } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  for (const phase of ['PublishingRoot', 'ReissuingLeaves', 'RetiringRoot']) {
    await ca.reached(phase);
    await operator.kill();
    // With the operator dead the phase cannot move: this is the phase it died in.
    assert.equal(await caPhase(), phase, `killed in ${phase}`);
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
  // The record is the CA Secret's versions, not Events: a SIGKILL right after a step may lose that step's (best effort) Event.
  await eventually(async () => ca.versions.at(-1)?.phase === undefined, { what: 'the watch to deliver the last write' });
  const phases = ca.versions.map((v) => v.phase).filter((p, i, all) => i === 0 || p !== all[i - 1]);
  assert.deepEqual(phases, [undefined, 'PublishingRoot', 'ReissuingLeaves', 'RetiringRoot', undefined], 'each phase once, in order');
  assert.equal(new Set(ca.versions.map((v) => v.startedAt).filter(Boolean)).size, 1, 'the rotation was started once, not again after a restart');
});
