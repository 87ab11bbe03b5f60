// The app-port check of spec.proxy against a real API server: a pod as the
// webhook admits it (src/webhook/mutate.ts, so with the agentidentity.dev/proxy
// label the operator selects by), its status set as a kubelet would through
// the status subresource (there is no kubelet), and its "pod IP" 127.0.0.2.
// The agent's app is a TCP server on this host: bound to 0.0.0.0 it answers on
// 127.0.0.2 as an app bound to all addresses answers on its pod IP (exposed);
// bound to 127.0.0.1 it does not (private). The operator dials for real.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, test } from 'node:test';
import { PatchStrategy, setHeaderOptions, type CoreV1Event, type V1Pod } from '@kubernetes/client-node';
import type { Operator } from '../../src/operator.ts';
import type { AgentIdentity } from '../../src/api/types.ts';
import type { Pod as WebhookPod } from '../../src/webhook/pod.ts';
import type { TestEnv } from '../support/env.ts';
import { api, isReady } from '../support/objects.ts';
import { eventually } from '../support/operator.ts';
import { mutatedPod } from '../support/proxied-pod.ts';
import { setUp, tearDown } from '../support/suite.ts';

let env: TestEnv;
let op: Operator;
let a: ReturnType<typeof api>;
const servers: Server[] = [];

before(async () => {
  ({ env, op, a } = await setUp({}));
});
after(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  await tearDown({ env, op });
});

/** The agent's app, listening on `host`; on `port`, or any free one. */
async function app(host: string, port = 0): Promise<Server & { port: number }> {
  const s = createServer((c) => c.destroy());
  await new Promise<void>((r, j) => { s.once('error', j); s.listen(port, host, r); });
  servers.push(s);
  return Object.assign(s, { port: (s.address() as { port: number }).port });
}
const stop = (s: Server) => new Promise((r) => s.close(r));

const condition = (i: AgentIdentity) => i.status?.conditions?.find((c) => c.type === 'AppPortPrivate');
const exposedGauge = async () => Number(/^agentidentity_proxy_app_port_exposed_pods (\S+)$/m.exec(await op.metrics.text())?.[1]);

test('an app port that answers on the pod IP is reported on the identity, the Pod and the gauge; fixed (a restart bound to 127.0.0.1, then the pod gone), all three clear', async () => {
  const ns = await env.namespace('appport');
  const exposedApp = await app('0.0.0.0');
  const port = exposedApp.port;
  await a.createIdentity(ns, 'planner', { proxy: { port: 8443, appPort: port } });
  const identity = await eventually(async () => { const i = await a.getIdentity(ns, 'planner'); return isReady(i) && i; }, { what: 'planner Ready' });
  assert.equal(condition(identity)?.reason, 'NotProbed', 'no pod yet');

  const bare: WebhookPod = {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: 'planner-0', namespace: ns, labels: { 'agentidentity.dev/agent': 'planner' } },
    spec: { serviceAccountName: 'planner', containers: [{ name: 'agent', image: 'agent:1' }] },
  };
  const pod = mutatedPod(bare, identity);
  assert.equal(pod.metadata.labels?.['agentidentity.dev/proxy'], 'planner', 'the webhook\'s label, which the operator selects by');
  await a.core.createNamespacedPod({ namespace: ns, body: pod as V1Pod });
  // What the kubelet would report: running at "pod IP" 127.0.0.2, the proxy and the app started.
  const setStatus = (restartCount: number) => a.core.patchNamespacedPodStatus({
    namespace: ns, name: 'planner-0',
    body: { status: {
      phase: 'Running', podIP: '127.0.0.2', podIPs: [{ ip: '127.0.0.2' }],
      initContainerStatuses: [containerStatus('agent-identity-proxy', 0)],
      containerStatuses: [containerStatus('agent', restartCount)],
    } },
  }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  await setStatus(0);

  const exposed = await eventually(async () => { const c = condition(await a.getIdentity(ns, 'planner')); return c?.status === 'False' && c; }, { what: 'AppPortPrivate False' });
  assert.equal(exposed.reason, 'AppPortExposed');
  assert.match(exposed.message, new RegExp(`^app port ${port} answers on the pod IP of 1 pod\\(s\\): ${ns}/planner-0 \\(127\\.0\\.0\\.2:${port}\\);.*Bind the app to 127\\.0\\.0\\.1`));
  assert.equal(await exposedGauge(), 1);
  const podEvent = await eventually(async () => (await events(ns, 'Pod', 'planner-0')).find((e) => e.reason === 'AppPortExposed'), { what: 'Warning on the Pod' });
  assert.equal(podEvent.type, 'Warning');
  assert.match(podEvent.message!, new RegExp(`app port ${port} answers on the pod IP 127\\.0\\.0\\.2`));
  const identityEvent = await eventually(async () => (await events(ns, 'AgentIdentity', 'planner')).find((e) => e.reason === 'AppPortExposed'), { what: 'Warning on the AgentIdentity' });
  assert.equal(identityEvent.type, 'Warning');

  // The fix: the app restarts bound to 127.0.0.1; the restart is probed again.
  await stop(exposedApp);
  await app('127.0.0.1', port);
  await setStatus(1);
  const fixed = await eventually(async () => { const c = condition(await a.getIdentity(ns, 'planner')); return c?.status === 'True' && c; }, { what: 'AppPortPrivate True' });
  assert.equal(fixed.reason, 'AppPortPrivate');
  assert.equal(await exposedGauge(), 0);
  for (const [kind, name] of [['Pod', 'planner-0'], ['AgentIdentity', 'planner']] as const) {
    const cleared = await eventually(async () => (await events(ns, kind, name)).find((e) => e.reason === 'AppPortPrivate'), { what: `Normal AppPortPrivate on the ${kind}` });
    assert.equal(cleared.type, 'Normal');
  }

  // Exposed again after another restart, then the pod is deleted: the finding goes with it.
  const servers0 = servers.splice(0);
  await Promise.all(servers0.map(stop));
  await app('0.0.0.0', port);
  await setStatus(2);
  await eventually(async () => condition(await a.getIdentity(ns, 'planner'))?.status === 'False', { what: 'exposed again' });
  assert.equal(await exposedGauge(), 1);
  await a.core.deleteNamespacedPod({ namespace: ns, name: 'planner-0', gracePeriodSeconds: 0 });
  const gone = await eventually(async () => { const c = condition(await a.getIdentity(ns, 'planner')); return c?.status === 'Unknown' && c; }, { what: 'no pod left to report' });
  assert.equal(gone.reason, 'NotProbed');
  assert.equal(await exposedGauge(), 0);
});

function containerStatus(name: string, restartCount: number) {
  return {
    name, image: 'agent:1', imageID: '', ready: true, started: true, restartCount,
    state: { running: { startedAt: new Date() } },
  };
}

async function events(namespace: string, kind: string, name: string): Promise<CoreV1Event[]> {
  return (await a.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.kind=${kind},involvedObject.name=${name}` })).items;
}
