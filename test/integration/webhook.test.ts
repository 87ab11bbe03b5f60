// The admission webhook on a real API server: the configurations from
// config/webhook/webhooks.yaml point at a server on 127.0.0.1, the manager
// fills their caBundle, and the API server itself calls the webhook for every
// pod created here. No kubelet: pods are admitted and stored, never run.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdmissionregistrationV1Api, AppsV1Api, CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { dump } from 'js-yaml';
import { startTestEnv, type TestEnv } from '../support/env.ts';
import { ensureNamespace, eventually, OPERATOR_NAMESPACE } from '../support/operator.ts';
import { api } from '../support/objects.ts';
import { caBundles, createPod, createServiceAccounts, installWebhookConfigurations, markIssued, plain, podManifest, readPod, untilWebhookAnswers } from '../support/webhook.ts';
import { freePort } from '../support/ports.ts';
import { createLogger } from '../../src/log.ts';
import { startWebhookServer, type WebhookServer } from '../../src/webhook/index.ts';
import { startWebhookCertificates, type WebhookCertificates } from '../../src/webhook-certificates/controller.ts';
import { injectIdentity } from '../../src/webhook/mutate.ts';

let env: TestEnv;
let server: WebhookServer;
let manager: WebhookCertificates;
let ns: string;
let a: ReturnType<typeof api>;
const spiffeID = (name: string) => `spiffe://cluster.local/ns/${ns}/agent/${name}`;
const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent', 'json', process.stderr);

before(async () => {
  env = await startTestEnv();
  a = api(env.kc);
  await ensureNamespace(env.kc, OPERATOR_NAMESPACE);
  ns = await env.namespace('agents');
  await createServiceAccounts(env.kc, ns, ['planner', 'intruder']);
  await a.createIdentity(ns, 'planner', { serviceAccountName: 'planner' });
  await markIssued(env.kc, ns, 'planner', spiffeID('planner'));

  const port = await freePort();
  server = await startWebhookServer({ kubeConfig: env.kc, namespace: OPERATOR_NAMESPACE, host: '127.0.0.1', port, certificatePollMs: 200, logger: log });
  await installWebhookConfigurations(env.kc, port);
  manager = await startWebhookCertificates({ kubeConfig: env.kc, namespace: OPERATOR_NAMESPACE, ipAddresses: ['127.0.0.1'], resyncMs: 1000, logger: log });
  await eventually(async () => server.ready(), { what: 'serving certificate loaded' });
  await untilWebhookAnswers(env.kc, ns, async () => (await createPod(env.kc, ns, podManifest(`warmup-${Date.now()}`, { agent: 'planner', serviceAccountName: 'planner' }))).admitted);
});

after(async () => {
  await manager?.stop();
  await server?.close();
  await env?.stop();
});

function refused(r: Awaited<ReturnType<typeof createPod>>): string {
  assert.equal(r.admitted, false, 'the API server refused the pod');
  if (r.admitted) throw new Error('unreachable');
  return r.message;
}

test('the shipped configurations are accepted as they are (CEL and all), and the manager fills their caBundle', async () => {
  const ca = await a.getSecret(OPERATOR_NAMESPACE, 'agent-identity-webhook-root');
  const bundle = Buffer.from(ca.data!['ca.crt']!, 'base64').toString('utf8');
  assert.match(bundle, /^-----BEGIN CERTIFICATE-----/);
  assert.deepEqual(await caBundles(env.kc), [bundle, bundle, bundle], 'all three webhooks trust exactly the webhook CA');
  const tls = await a.getSecret(OPERATOR_NAMESPACE, 'agent-identity-webhook-tls');
  assert.equal(tls.type, 'kubernetes.io/tls');
  assert.deepEqual(Object.keys(tls.data!).sort(), ['tls.crt', 'tls.key']);
  assert.equal(manager.status().configurationsFound.length, 2);
  const admission = env.kc.makeApiClient(AdmissionregistrationV1Api);
  const v = await admission.readValidatingWebhookConfiguration({ name: 'agent-identity-operator' });
  assert.equal(v.webhooks![0]!.matchConditions!.length, 1);
  assert.equal(v.webhooks![0]!.failurePolicy, 'Fail');
  assert.equal(v.webhooks![0]!.timeoutSeconds, 5);
});

test('a labelled pod comes back mutated as specified, and injecting it again changes nothing', async () => {
  const before = server.reviews();
  const r = await createPod(env.kc, ns, podManifest('planner-0', {
    agent: 'planner', serviceAccountName: 'planner',
    spec: { containers: [{ name: 'app', image: 'registry.invalid/agent:1' }, { name: 'proxy', image: 'registry.invalid/proxy:1' }], initContainers: [{ name: 'init', image: 'registry.invalid/init:1' }] },
  }));
  assert.ok(r.admitted, r.admitted ? '' : r.message);
  const pod = await readPod(env.kc, ns, 'planner-0');

  const volume = pod.spec.volumes!.find((v) => v.name === 'agent-identity');
  assert.deepEqual(volume?.projected, {
    defaultMode: 420,
    sources: [
      { secret: { name: 'planner-identity', items: [{ key: 'tls.crt', path: 'tls.crt' }, { key: 'tls.key', path: 'tls.key' }, { key: 'ca.crt', path: 'ca.crt' }, { key: 'policy.json', path: 'policy.json' }] } },
      // Optional: the partners' Roots (federation), projected only while the TrustDomain federates.
      { configMap: { name: 'trust-bundle-default', items: [{ key: 'federated-bundles.json', path: 'federated-bundles.json' }], optional: true } },
    ],
  });
  for (const c of [...pod.spec.containers, ...pod.spec.initContainers!]) {
    assert.deepEqual(c.volumeMounts?.filter((m) => m.name === 'agent-identity'), [{ name: 'agent-identity', mountPath: '/var/run/agentidentity', readOnly: true }], c.name);
    const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
    assert.deepEqual(env, {
      AGENT_IDENTITY_DIR: '/var/run/agentidentity',
      AGENT_IDENTITY_CERT_FILE: '/var/run/agentidentity/tls.crt',
      AGENT_IDENTITY_KEY_FILE: '/var/run/agentidentity/tls.key',
      AGENT_IDENTITY_BUNDLE_FILE: '/var/run/agentidentity/ca.crt',
      AGENT_IDENTITY_POLICY_FILE: '/var/run/agentidentity/policy.json',
      AGENT_IDENTITY_SPIFFE_ID: spiffeID('planner'),
    }, c.name);
  }
  assert.deepEqual(JSON.parse(pod.metadata.annotations!['agentidentity.dev/injected']!), {
    identity: 'planner', spiffeID: spiffeID('planner'), secret: 'planner-identity',
    mountPath: '/var/run/agentidentity', containers: ['app', 'proxy', 'init'],
  });
  const after = server.reviews();
  assert.deepEqual(after, { ...before, mutate: before.mutate + 1, validate: before.validate + 1 }, 'one call to each pod webhook');

  // The stored pod, with every default the API server added, needs no further patch.
  const identity = await a.getIdentity(ns, 'planner');
  assert.deepEqual(injectIdentity(pod, identity).patch, []);
});

test('re-applying the same manifest changes nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'webhook-apply-'));
  const file = join(dir, 'pod.yaml');
  writeFileSync(file, dump({ ...podManifest('applied', { agent: 'planner', serviceAccountName: 'planner' }), metadata: { name: 'applied', namespace: ns, labels: { 'agentidentity.dev/agent': 'planner' } } }));
  const first = await env.kubectl(['apply', '-f', file]);
  assert.equal(first.code, 0, first.stderr);
  const created = await readPod(env.kc, ns, 'applied');
  assert.ok(created.metadata.annotations?.['agentidentity.dev/injected'], 'injected on create');
  const second = await env.kubectl(['apply', '-f', file]);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, /pod\/applied unchanged/);
  const again = await readPod(env.kc, ns, 'applied');
  assert.equal(again.metadata.resourceVersion, created.metadata.resourceVersion);
  assert.equal(again.spec.volumes!.filter((v) => v.name === 'agent-identity').length, 1);
});

test('a labelled pod with the wrong ServiceAccount is denied, with the message', async () => {
  const message = refused(await createPod(env.kc, ns, podManifest('impostor', { agent: 'planner', serviceAccountName: 'intruder' })));
  assert.equal(message, 'admission webhook "bind.agentidentity.dev" denied the request: pod "impostor" runs as ServiceAccount "intruder", but AgentIdentity "planner" belongs to ServiceAccount "planner"; set spec.serviceAccountName: planner in the pod (or its workload\'s pod template)');
});

test('a labelled pod naming a missing AgentIdentity is denied', async () => {
  const message = refused(await createPod(env.kc, ns, podManifest('lost', { agent: 'planer', serviceAccountName: 'planner' })));
  assert.equal(message, `admission webhook "bind.agentidentity.dev" denied the request: pod "lost" asks for AgentIdentity "planer" (label agentidentity.dev/agent), but namespace "${ns}" has no AgentIdentity "planer"; create it, or correct the label`);
});

test('an unlabelled pod that mounts an identity Secret under another ServiceAccount is denied; its owner may', async () => {
  const thief = (name: string, serviceAccountName: string) => podManifest(name, { serviceAccountName, spec: { volumes: [{ name: 'loot', secret: { secretName: 'planner-identity' } }] } });
  const message = refused(await createPod(env.kc, ns, thief('thief', 'intruder')));
  assert.match(message, /^admission webhook "bind.agentidentity.dev" denied the request: pod "thief" runs as ServiceAccount "intruder" but uses Secret "planner-identity" \(volume "loot"\); that Secret holds the private key of AgentIdentity "planner", which only pods running as ServiceAccount "planner" may use$/);

  const viaEnv = podManifest('env-thief', { serviceAccountName: 'intruder', spec: { containers: [{ name: 'app', image: 'registry.invalid/x:1', env: [{ name: 'KEY', valueFrom: { secretKeyRef: { name: 'planner-identity', key: 'tls.key' } } }] }] } });
  assert.match(refused(await createPod(env.kc, ns, viaEnv)), /\(env KEY of container "app"\)/);

  const r = await createPod(env.kc, ns, thief('owner', 'planner'));
  assert.ok(r.admitted, 'the same volume under the identity\'s own ServiceAccount is fine');
});

test('an ephemeral container reaching an identity Secret under another ServiceAccount is denied', async () => {
  const created = await createPod(env.kc, ns, podManifest('debug-me', { serviceAccountName: 'intruder' }));
  assert.ok(created.admitted);
  const core = env.kc.makeApiClient(CoreV1Api);
  const patch = [{ op: 'add', path: '/spec/ephemeralContainers', value: [{ name: 'debugger', image: 'registry.invalid/debug:1', envFrom: [{ secretRef: { name: 'planner-identity' } }] }] }];
  const err = await core.patchNamespacedPodEphemeralcontainers({ namespace: ns, name: 'debug-me', body: patch }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch)).then(() => undefined, (e: { body?: string }) => e);
  assert.ok(err, 'the API server refused the ephemeral container');
  assert.match(String(err.body), /denied the request: pod \\"debug-me\\" runs as ServiceAccount \\"intruder\\" but uses Secret \\"planner-identity\\" \(envFrom of ephemeralContainer \\"debugger\\"\)/);
});

test('unrelated pods are untouched and never reach the webhook; pods with ordinary Secrets reach only the validating one', async () => {
  const before = server.reviews();
  const plain = await createPod(env.kc, ns, podManifest('plain', { serviceAccountName: 'intruder', spec: {
    containers: [{ name: 'app', image: 'registry.invalid/app:1', env: [{ name: 'MODE', value: 'x' }], envFrom: [{ configMapRef: { name: 'settings' } }] }],
    volumes: [{ name: 'cfg', configMap: { name: 'settings' } }, { name: 'tmp', emptyDir: {} }],
  } }));
  assert.ok(plain.admitted);
  assert.deepEqual(server.reviews(), before, 'neither webhook was called');
  const stored = await readPod(env.kc, ns, 'plain');
  assert.deepEqual(stored.spec.volumes!.map((v) => v.name).filter((n) => !n.startsWith('kube-api-access')), ['cfg', 'tmp']);
  assert.equal(stored.metadata.annotations?.['agentidentity.dev/injected'], undefined);
  assert.deepEqual(stored.spec.containers[0]!.env, [{ name: 'MODE', value: 'x' }]);

  const withSecret = await createPod(env.kc, ns, podManifest('db-client', { serviceAccountName: 'intruder', spec: { volumes: [{ name: 'db', secret: { secretName: 'database-password' } }] } }));
  assert.ok(withSecret.admitted);
  assert.deepEqual(server.reviews(), { ...before, validate: before.validate + 1 }, 'only the validating webhook, which allowed it');
});

test('pods a controller creates from a labelled template are injected too', async () => {
  const apps = env.kc.makeApiClient(AppsV1Api);
  await apps.createNamespacedDeployment({ namespace: ns, body: {
    metadata: { name: 'planner' },
    spec: {
      replicas: 1, selector: { matchLabels: { app: 'planner' } },
      template: { metadata: { labels: { app: 'planner', 'agentidentity.dev/agent': 'planner' } }, spec: { serviceAccountName: 'planner', containers: [{ name: 'app', image: 'registry.invalid/agent:1' }] } },
    },
  } });
  const core = env.kc.makeApiClient(CoreV1Api);
  const pod = plain(await eventually(async () => (await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=planner' })).items[0], { what: 'the ReplicaSet\'s pod' }));
  assert.match(pod.metadata.name!, /^planner-/);
  assert.ok(pod.spec.volumes!.some((v) => v.name === 'agent-identity'));
  assert.equal(JSON.parse(pod.metadata.annotations!['agentidentity.dev/injected']!).identity, 'planner');
});
