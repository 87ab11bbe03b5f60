// spec.proxy through a real API server that calls the webhook (with the RBAC
// of config/webhook/rbac.yaml) and a running operator: an opted-in pod is
// stored with the proxy as its native sidecar and the key in the proxy alone;
// a pod that would hand the key to the agent is refused with the container's
// name; the operator keeps the identity's NetworkPolicy, owned by its UID,
// restores it when edited, and removes it with spec.proxy.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import { NetworkingV1Api, type V1NetworkPolicy } from '@kubernetes/client-node';
import { setUp, tearDown, type Suite } from '../support/suite.ts';
import { eventually } from '../support/operator.ts';
import { isReady } from '../support/objects.ts';
import { createPod, podManifest, readPod, startShippedWebhook, type ShippedWebhook, untilWebhookAnswers } from '../support/webhook.ts';
import { injectIdentity } from '../../src/webhook/mutate.ts';
import type { ProxySidecarConfig } from '../../src/webhook/sidecar.ts';

let s: Suite;
let webhook: ShippedWebhook;
let ns: string;
let net: NetworkingV1Api;
const PROXY: ProxySidecarConfig = { image: 'registry.invalid/agent-identity-operator:1.0.0', imagePullPolicy: 'IfNotPresent', resources: { requests: { cpu: '0.05', memory: '64Mi' }, limits: { memory: '0.125Gi' } } };
const SPEC = { port: 8443, appPort: 8080, mode: 'http' as const };

before(async () => {
  s = await setUp();
  net = s.env.kc.makeApiClient(NetworkingV1Api);
  ns = await s.env.namespace('proxied');
  await s.a.createIdentity(ns, 'planner', { proxy: SPEC });
  await eventually(async () => isReady(await s.a.getIdentity(ns, 'planner')), { what: 'planner issued' });
  webhook = await startShippedWebhook(s.env, { proxy: PROXY });
  await untilWebhookAnswers(s.env.kc, ns);
});

after(async () => {
  await webhook?.stop();
  await tearDown(s ?? {});
});

const readNetworkPolicy = (name = 'planner-identity-proxy') => net.readNamespacedNetworkPolicy({ namespace: ns, name }).catch((e: { code?: number }) => {
  if (e.code === 404) return undefined;
  throw e;
});

test('an opted-in pod is stored with the proxy as a native sidecar that alone mounts the identity; re-injecting it asks for nothing', async () => {
  const r = await createPod(s.env.kc, ns, podManifest('planner-0', { agent: 'planner', serviceAccountName: 'planner', spec: {
    containers: [{ name: 'agent', image: 'registry.invalid/python-agent:1' }], initContainers: [{ name: 'migrate', image: 'registry.invalid/migrate:1' }],
  } }));
  assert.ok(r.admitted, r.admitted ? '' : r.message);
  const pod = await readPod(s.env.kc, ns, 'planner-0');
  assert.deepEqual(pod.spec.initContainers!.map((c) => c.name), ['agent-identity-proxy', 'migrate']);
  const sidecar = pod.spec.initContainers![0]!;
  assert.equal(sidecar.restartPolicy, 'Always', 'a native sidecar: the API server kept it');
  assert.deepEqual(sidecar.args, ['proxy', '--identity-dir=/var/run/agentidentity', '--inbound-port=8443', '--app-port=8080', '--mode=http', '--outbound-port=15001']);
  assert.equal(sidecar.image, PROXY.image);
  assert.deepEqual(sidecar.startupProbe, { tcpSocket: { port: 8443 }, periodSeconds: 1, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 60 });
  assert.deepEqual(sidecar.resources, { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '128Mi' } }, 'stored in the API server\'s canonical form');
  assert.deepEqual(sidecar.volumeMounts, [{ name: 'agent-identity', mountPath: '/var/run/agentidentity', readOnly: true }]);
  for (const c of [pod.spec.containers[0]!, pod.spec.initContainers![1]!]) {
    assert.ok(!c.volumeMounts?.some((m) => m.name === 'agent-identity'), `${c.name} does not mount the identity`);
    const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
    assert.equal(env.HTTP_PROXY, 'http://127.0.0.1:15001', c.name);
    assert.equal(env.HOST, '127.0.0.1', c.name);
    assert.equal(env.AGENT_IDENTITY_KEY_FILE, undefined, c.name);
  }
  // The stored pod, with every default the API server added (probe, quantities, termination fields), needs no further patch.
  assert.deepEqual(injectIdentity(pod, await s.a.getIdentity(ns, 'planner'), { proxy: PROXY }).patch, []);
});

test('a pod that mounts the identity into the agent container is refused, naming the container', async () => {
  const r = await createPod(s.env.kc, ns, podManifest('leaky', { agent: 'planner', serviceAccountName: 'planner', spec: {
    containers: [{ name: 'agent', image: 'registry.invalid/python-agent:1', volumeMounts: [{ name: 'keys', mountPath: '/keys', readOnly: true }] }],
    volumes: [{ name: 'keys', secret: { secretName: 'planner-identity' } }],
  } }));
  assert.equal(r.admitted, false);
  if (r.admitted) throw new Error('unreachable');
  assert.equal(r.code, 403);
  assert.equal(r.message, 'admission webhook "bind.agentidentity.dev" denied the request: container "agent" of pod "leaky" mounts volume "keys", which projects Secret "planner-identity" (the identity\'s key); AgentIdentity "planner" has spec.proxy, so only its identity proxy (agent-identity-proxy) may hold the key: remove that from container "agent", and let it call other agents through HTTP_PROXY');
});

test('an unlabelled pod of the identity\'s ServiceAccount may not mount its Secret either', async () => {
  const r = await createPod(s.env.kc, ns, podManifest('side-door', { serviceAccountName: 'planner', spec: { volumes: [{ name: 'keys', secret: { secretName: 'planner-identity' } }] } }));
  assert.equal(r.admitted, false);
  if (r.admitted) throw new Error('unreachable');
  assert.equal(r.message, 'admission webhook "bind.agentidentity.dev" denied the request: pod "side-door" uses Secret "planner-identity" (volume "keys"); AgentIdentity "planner" has spec.proxy, so only its identity proxy may hold its key: label the pod agentidentity.dev/agent: planner and let the webhook inject the proxy, or remove that');
});

test('the NetworkPolicy: owned by the identity\'s UID, its pods reachable on the proxy port only, restored when edited, gone with spec.proxy', async () => {
  const { metadata: { uid } } = await s.a.getIdentity(ns, 'planner');
  const np = await eventually(() => readNetworkPolicy(), { what: 'the operator writes planner-identity-proxy' });
  assert.deepEqual(np.metadata!.ownerReferences!.map((o) => ({ ...o })), [{ apiVersion: 'agentidentity.dev/v1alpha1', kind: 'AgentIdentity', name: 'planner', uid, controller: true, blockOwnerDeletion: true }]);
  const spec = (p: V1NetworkPolicy) => JSON.parse(JSON.stringify(p.spec)) as unknown;
  const expected = { podSelector: { matchLabels: { 'agentidentity.dev/agent': 'planner' } }, policyTypes: ['Ingress'], ingress: [{ ports: [{ protocol: 'TCP', port: 8443 }] }] };
  assert.deepEqual(spec(np), expected);

  // Someone opens the agent's plaintext port: the operator puts it back.
  await net.replaceNamespacedNetworkPolicy({ namespace: ns, name: 'planner-identity-proxy', body: { ...np, spec: { ...np.spec!, ingress: [{ ports: [{ protocol: 'TCP', port: 8080 }] }] } } });
  const restored = await eventually(async () => {
    const now = await readNetworkPolicy();
    return now && now.metadata!.resourceVersion !== np.metadata!.resourceVersion && isDeepStrictEqual(spec(now), expected) && now;
  }, { what: 'the edited NetworkPolicy restored' });
  // Restored once, then left alone: the operator's object reads back equal to what it wants.
  await s.op.idle();
  assert.equal((await readNetworkPolicy())!.metadata!.resourceVersion, restored.metadata!.resourceVersion, 'no further writes');

  await s.a.patchIdentity(ns, 'planner', { spec: { proxy: null } });
  await eventually(async () => (await readNetworkPolicy()) === undefined, { what: 'the NetworkPolicy deleted with spec.proxy' });
});
