// The webhook's own certificates on a real API server, with lifetimes of
// seconds: the CA is generated only after a confirmed 404, the serving
// certificate is renewed at 2/3 of its life, and a CA rotation keeps both CAs
// in caBundle until the serving certificate has moved to the new one — while
// pods keep being admitted (and mutated) throughout. Manager and server run
// with exactly the RBAC of config/webhook/rbac.yaml.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { startTestEnv, type TestEnv } from '../support/env.ts';
import { ensureNamespace, eventually, OPERATOR_NAMESPACE } from '../support/operator.ts';
import { api } from '../support/objects.ts';
import { caBundles, createPod, createServiceAccounts, installWebhookConfigurations, kubeconfigForServiceAccount, markIssued, podManifest } from '../support/webhook.ts';
import { freePort } from '../support/ports.ts';
import { createLogger } from '../../src/log.ts';
import { startWebhookServer } from '../../src/webhook/index.ts';
import { startWebhookCertificates } from '../../src/webhook-certificates/controller.ts';
import { KubeClient } from '../../src/kube/client.ts';

const RBAC = join(resolve(import.meta.dirname, '..', '..'), 'config', 'webhook', 'rbac.yaml');
// Everything the webhook logs, at debug level, so the test can read it for key material.
let logged = '';
const log = createLogger('debug', 'json', new Writable({ write(chunk, _enc, done) { logged += String(chunk); if (process.env.TEST_LOG_LEVEL) process.stderr.write(chunk); done(); } }));

let env: TestEnv;
let a: ReturnType<typeof api>;
let ns: string;

before(async () => {
  env = await startTestEnv();
  a = api(env.kc);
  await ensureNamespace(env.kc, OPERATOR_NAMESPACE);
  ns = await env.namespace('agents');
  await createServiceAccounts(env.kc, ns, ['planner']);
  await a.createIdentity(ns, 'planner');
  await markIssued(env.kc, ns, 'planner', `spiffe://cluster.local/ns/${ns}/agent/planner`);
});
after(async () => { await env?.stop(); });

const webhookSecrets = async () => (await a.core.listNamespacedSecret({ namespace: OPERATOR_NAMESPACE })).items.map((s) => s.metadata!.name!).filter((n) => n.startsWith('agent-identity-webhook'));

test('a lookup that times out fails; it is never taken for "not found"', async () => {
  const kube = new KubeClient(env.kc, { timeoutMs: 1 });
  await assert.rejects(kube.getIdentity(ns, 'planner'), (err: { code?: number; message?: string }) => err.code === 0 && /abort|timeout/i.test(err.message ?? ''));
  await assert.rejects(kube.getSecret(OPERATOR_NAMESPACE, 'agent-identity-webhook-root'), (err: { code?: number }) => err.code === 0);
  assert.equal((await new KubeClient(env.kc, { timeoutMs: 5000 }).getIdentity(ns, 'planner'))?.metadata.name, 'planner', 'with time to answer, the same lookup succeeds');
});

test('a forbidden read of the webhook CA Secret generates no CA', async () => {
  const rbac = env.kc.makeApiClient(RbacAuthorizationV1Api);
  const sa = 'webhook-cannot-read';
  // create and update, but not get: the only way to make a CA here would be to ignore the failed read.
  await rbac.createClusterRole({ body: { metadata: { name: sa }, rules: [
    { apiGroups: [''], resources: ['secrets'], verbs: ['create', 'update'] },
    { apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations'], verbs: ['get', 'patch'] },
  ] } });
  await rbac.createClusterRoleBinding({ body: { metadata: { name: sa }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: sa }, subjects: [{ kind: 'ServiceAccount', name: sa, namespace: OPERATOR_NAMESPACE }] } });
  const kc = await kubeconfigForServiceAccount(env.kc, OPERATOR_NAMESPACE, sa);
  const manager = await startWebhookCertificates({ kubeConfig: kc, namespace: OPERATOR_NAMESPACE, resyncMs: 200, logger: log });
  try {
    await eventually(async () => manager.status().passes >= 3, { what: 'several failed passes' });
    assert.match(manager.status().lastError ?? '', /^cannot read webhook CA Secret agent-identity-system\/agent-identity-webhook-root: .*forbidden/);
    assert.deepEqual(await webhookSecrets(), [], 'no CA was generated');
  } finally {
    await manager.stop();
  }
});

test('CA rotation keeps both CAs in caBundle until the serving certificate moved; pods are admitted throughout', async (t) => {
  const applied = await env.kubectl(['apply', '-f', RBAC]);
  assert.equal(applied.code, 0, applied.stderr);
  const kc = await kubeconfigForServiceAccount(env.kc, OPERATOR_NAMESPACE, 'agent-identity-operator');

  const port = await freePort();
  const server = await startWebhookServer({ kubeConfig: kc, namespace: OPERATOR_NAMESPACE, host: '127.0.0.1', port, certificatePollMs: 200, logger: log });
  await installWebhookConfigurations(env.kc, port);
  const lifetimes = { caMs: 24_000, servingMs: 9_000, propagationMs: 1_500, graceMs: 2_000 };
  const manager = await startWebhookCertificates({ kubeConfig: kc, namespace: OPERATOR_NAMESPACE, ipAddresses: ['127.0.0.1'], lifetimes, resyncMs: 500, logger: log });
  try {
    assert.equal(manager.status().lastError, undefined, 'the shipped RBAC is enough for the manager');
    assert.deepEqual((await webhookSecrets()).sort(), ['agent-identity-webhook-root', 'agent-identity-webhook-tls'], 'generated after the 404');
    await eventually(async () => server.ready(), { what: 'serving certificate loaded' });
    await eventually(async () => (await createPod(env.kc, ns, podManifest(`warmup-${Date.now()}`, { agent: 'planner', serviceAccountName: 'planner' }))).admitted, { what: 'first admission', intervalMs: 250 });

    const subjectsOf = (pem: string) => pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((c) => new X509Certificate(c).subject.replace(/^[\s\S]*CN=/, '')) ?? [];
    const [initial] = await caBundles(env.kc);
    const oldCA = subjectsOf(initial!);
    assert.equal(oldCA.length, 1);

    interface Sample { at: number; bundle: string[]; validatingBundle: string[]; servingIssuer: string; servingSerial: string }
    const samples: Sample[] = [];
    const failures: string[] = [];
    let admitted = 0;
    const started = Date.now();
    const issuerCN = () => server.servingCertificate()!.issuer.replace(/^[\s\S]*CN=/, '');
    for (let i = 0; Date.now() - started < 60_000; i++) {
      const r = await createPod(env.kc, ns, podManifest(`rot-${i}`, { agent: 'planner', serviceAccountName: 'planner' }));
      if (!r.admitted) failures.push(`rot-${i}: ${r.message}`);
      else if (!r.pod.metadata.annotations?.['agentidentity.dev/injected']) failures.push(`rot-${i}: admitted but not mutated`);
      else admitted++;
      const [m, v] = await caBundles(env.kc);
      samples.push({ at: Date.now() - started, bundle: subjectsOf(m!), validatingBundle: subjectsOf(v!), servingIssuer: issuerCN(), servingSerial: server.servingCertificate()!.serialNumber });
      const last = samples.at(-1)!;
      const done = last.bundle.length === 1 && last.bundle[0] !== oldCA[0];
      if (done && samples.filter((s) => s.bundle.length === 1 && s.bundle[0] !== oldCA[0]).length >= 5) break;
      await new Promise((r) => setTimeout(r, 250));
    }

    // The story, as distinct caBundles in order.
    const phases = samples.map((s) => s.bundle.join(' + ')).filter((b, i, all) => i === 0 || b !== all[i - 1]);
    t.diagnostic(`${admitted} pods admitted over ${samples.at(-1)!.at} ms; caBundle phases: ${phases.join('  →  ')}`);
    assert.deepEqual(failures, [], 'every pod was admitted and mutated during the rotation');
    assert.equal(phases.length, 3, `caBundle went [old] → [old, new] → [new]: ${phases.join(' → ')}`);
    const newCA = samples.at(-1)!.bundle[0]!;
    assert.deepEqual(phases, [oldCA[0], `${oldCA[0]} + ${newCA}`, newCA]);

    const overlap = samples.filter((s) => s.bundle.length === 2);
    // Which certificate was served when is read from the log the server and manager write, in order:
    // samples (one per pod admitted) can step over a state that lasts a second or two.
    const lines = logged.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; step?: string; issuer?: string });
    const published = lines.findIndex((l) => l.step === 'publishIncoming');
    const retired = lines.findIndex((l) => l.step === 'retireOld');
    const loads = lines.map((l, i) => ({ i, ca: l.msg === 'serving certificate loaded' ? l.issuer?.replace(/^[\s\S]*CN=/, '') : undefined })).filter((l) => l.ca);
    assert.ok(published >= 0 && retired > published, 'the manager published the new CA, then retired the old one');
    assert.equal(loads.filter((l) => l.i < published).at(-1)?.ca, oldCA[0], 'when the overlap began the server served a certificate of the old CA');
    assert.ok(loads.some((l) => l.i > published && l.i < retired && l.ca === newCA), 'during the overlap it loaded one of the new CA, before the old CA left caBundle');
    // Readiness follows the same story: the replica never left its Service during the rotation.
    const readiness = lines.map((l, i) => ({ i, msg: l.msg })).filter((l) => l.msg === 'webhook ready' || l.msg === 'webhook not ready');
    assert.equal(readiness[0]?.msg, 'webhook ready', 'ready once the first caBundle verified its certificate');
    assert.deepEqual(readiness.slice(1), [], 'it never became unready while the CA rotated');
    const firstNewOnly = samples.find((s) => s.bundle.length === 1 && s.bundle[0] === newCA)!;
    assert.equal(firstNewOnly.servingIssuer, newCA, 'the old CA left caBundle only after the server served a certificate of the new CA');
    const validatingPhases = samples.map((s) => s.validatingBundle.join(' + ')).filter((b, i, all) => i === 0 || b !== all[i - 1]);
    assert.deepEqual(validatingPhases, phases, 'the validating configuration went through the same bundles');

    const servedUnderOld = new Set(samples.filter((s) => s.servingIssuer === oldCA[0]).map((s) => s.servingSerial));
    assert.ok(servedUnderOld.size >= 2, `the serving certificate was renewed at 2/3 of its life before the rotation (${servedUnderOld.size} serials)`);
    const rotatedAt = overlap[0]!.at;
    assert.ok(rotatedAt >= 10_000, `the CA rotated at 2/3 of its 24 s life, not earlier (${rotatedAt} ms into the loop)`);

    const ca = await a.getSecret(OPERATOR_NAMESPACE, 'agent-identity-webhook-root');
    assert.equal(ca.data!['incoming.crt'], undefined, 'no rotation in progress');

    // The logs tell the story, and never carry a key (not even one the logger had to scrub).
    for (const step of ['publishIncoming', 'promoteIncoming', 'retireOld']) assert.match(logged, new RegExp(`"step":"${step}"`));
    assert.match(logged, /"reason":"Renewing"/);
    assert.match(logged, /serving certificate loaded/);
    assert.doesNotMatch(logged, /PRIVATE KEY|REDACTED/);
    assert.deepEqual(subjectsOf(Buffer.from(ca.data!['ca.crt']!, 'base64').toString('utf8')), [newCA]);
  } finally {
    await manager.stop();
    await server.close();
  }
});
