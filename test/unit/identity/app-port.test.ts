// The app-port check: when and where a proxied pod is probed (app-port.ts),
// what the prober keeps and tells (app-port-probe.ts), and the dial itself on
// loopback: a server bound to 0.0.0.0 answers on 127.0.0.2 as an app bound to
// all addresses answers on its pod IP; one bound to 127.0.0.1 does not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import type { AgentIdentity, Pod } from '../../../src/api/types.ts';
import { probeTarget } from '../../../src/identity/app-port.ts';
import { answers, appPortProber, AppPortResults, podsOfIdentity } from '../../../src/identity/app-port-probe.ts';
import { Metrics } from '../../../src/controller/metrics.ts';

const NS = 'agents';
const identity = (proxy: AgentIdentity['spec']['proxy'] = { port: 8443, appPort: 8080 }): AgentIdentity => ({
  apiVersion: 'agentidentity.dev/v1alpha1', kind: 'AgentIdentity',
  metadata: { name: 'planner', namespace: NS, uid: 'uid-planner' },
  spec: { serviceAccountName: 'planner', ...(proxy ? { proxy } : {}) },
});

function pod(name = 'planner-a', o: { restarts?: number; phase?: string; ip?: string; proxyStarted?: boolean; appStarted?: boolean; sa?: string; sidecar?: boolean; label?: string } = {}): Pod {
  return {
    metadata: { name, namespace: NS, uid: `uid-${name}`, labels: { 'agentidentity.dev/proxy': o.label ?? 'planner' } },
    spec: {
      serviceAccountName: o.sa ?? 'planner',
      initContainers: o.sidecar === false ? [] : [{ name: 'agent-identity-proxy' }],
      containers: [{ name: 'agent' }],
    },
    status: {
      phase: o.phase ?? 'Running',
      ...(o.ip === '' ? {} : { podIP: o.ip ?? '127.0.0.2' }),
      initContainerStatuses: [{ name: 'agent-identity-proxy', started: o.proxyStarted ?? true, restartCount: 0 }],
      containerStatuses: [{ name: 'agent', started: o.appStarted ?? true, restartCount: o.restarts ?? 0 }],
    },
  };
}

test('probeTarget: a running pod of an identity with spec.proxy, at its pod IP and the identity\'s appPort', () => {
  assert.deepEqual(probeTarget(pod(), identity()), { identity: `${NS}/planner`, address: '127.0.0.2', port: 8080, probeKey: 'uid-planner-a/0/127.0.0.2/8080' });
});

test('probeTarget: nothing to probe until it runs with an IP, its proxy and app started; nor for a pod or identity the webhook would not have paired', () => {
  const none: Array<[string, Pod, AgentIdentity | undefined]> = [
    ['pending', pod('p', { phase: 'Pending' }), identity()],
    ['no pod IP', pod('p', { ip: '' }), identity()],
    ['proxy not started', pod('p', { proxyStarted: false }), identity()],
    ['app not started (it may not have bound yet)', pod('p', { appStarted: false }), identity()],
    ['another ServiceAccount than the identity\'s', pod('p', { sa: 'intruder' }), identity()],
    ['no proxy sidecar', pod('p', { sidecar: false }), identity()],
    ['identity without spec.proxy', pod(), identity(null as never)],
    ['no such identity', pod(), undefined],
  ];
  for (const [why, p, i] of none) assert.equal(probeTarget(p, i), undefined, why);
});

test('probeTarget: a restarted app or a new appPort is a new probe', () => {
  const first = probeTarget(pod(), identity())!.probeKey;
  assert.notEqual(probeTarget(pod('planner-a', { restarts: 1 }), identity())!.probeKey, first);
  assert.notEqual(probeTarget(pod(), identity({ port: 8443, appPort: 9090 }))!.probeKey, first);
});

async function listen(host: string): Promise<Server & { port: number }> {
  const s = createServer((c) => c.destroy());
  await new Promise<void>((r) => s.listen(0, host, r));
  return Object.assign(s, { port: (s.address() as { port: number }).port });
}
const close = (s: Server) => new Promise((r) => s.close(r));

test('answers: an app bound to all addresses answers on another address of the host; one bound to 127.0.0.1 does not', async () => {
  const all = await listen('0.0.0.0');
  const loopback = await listen('127.0.0.1');
  try {
    assert.equal(await answers('127.0.0.2', all.port, 2000), true);
    assert.equal(await answers('127.0.0.2', loopback.port, 2000), false);
    assert.equal(await answers('127.0.0.1', loopback.port, 2000), true, 'it does serve, on loopback');
  } finally {
    await Promise.all([close(all), close(loopback)]);
  }
});

/** The prober over in-memory caches, with a dial that records its calls and answers from `open`. */
function prober() {
  const pods = new Map<string, Pod>();
  const identities = new Map<string, AgentIdentity>([[`${NS}/planner`, identity()]]);
  const results = new AppPortResults();
  const metrics = new Metrics();
  const events: Array<{ kind: string; type: string; reason: string; message: string }> = [];
  const dials: string[] = [];
  const open = new Set<string>();
  const changed: string[] = [];
  results.onChange((i) => changed.push(i));
  const reconcile = appPortProber({
    pods: { get: (n, ns) => pods.get(`${ns}/${n}`) },
    identities: { get: (n, ns) => identities.get(`${ns}/${n}`) },
    results, metrics,
    events: { record: (t, type, reason, message) => { events.push({ kind: t.kind, type, reason, message }); } },
    dial: async (address, port) => { dials.push(`${address}:${port}`); return open.has(`${address}:${port}`); },
  });
  const gauge = async () => (await metrics.registry.getSingleMetric('agentidentity_proxy_app_port_exposed_pods')!.get()).values[0]?.value;
  return { pods, identities, results, events, dials, open, changed, reconcile, gauge };
}

test('prober: probes once per pod and app restart, keeps the finding, tells the Pod and the gauge; forgets a deleted pod', async () => {
  const p = prober();
  p.pods.set(`${NS}/planner-a`, pod());
  p.open.add('127.0.0.2:8080');
  await p.reconcile(`${NS}/planner-a`);
  assert.deepEqual(p.dials, ['127.0.0.2:8080']);
  assert.equal(p.results.probeOf(`${NS}/planner-a`)?.exposed, true);
  assert.equal(await p.gauge(), 1);
  assert.deepEqual(p.events.map((e) => [e.kind, e.type, e.reason]), [['Pod', 'Warning', 'AppPortExposed']]);
  assert.match(p.events[0]!.message, /app port 8080 answers on the pod IP 127\.0\.0\.2.*bind it to 127\.0\.0\.1/);
  assert.deepEqual(p.changed, [`${NS}/planner`]);

  await p.reconcile(`${NS}/planner-a`);
  assert.equal(p.dials.length, 1, 'the same pod and restart count: no second probe (resyncs, status updates)');

  // Restarting: its finding stands while the app is down, then the restart is probed.
  p.pods.set(`${NS}/planner-a`, pod('planner-a', { appStarted: false }));
  await p.reconcile(`${NS}/planner-a`);
  assert.equal(p.results.probeOf(`${NS}/planner-a`)?.exposed, true);
  p.open.clear();
  p.pods.set(`${NS}/planner-a`, pod('planner-a', { restarts: 1 }));
  await p.reconcile(`${NS}/planner-a`);
  assert.equal(p.dials.length, 2);
  assert.equal(p.results.probeOf(`${NS}/planner-a`)?.exposed, false);
  assert.equal(await p.gauge(), 0);
  assert.deepEqual(p.events.map((e) => [e.type, e.reason]).slice(1), [['Normal', 'AppPortPrivate']]);

  p.pods.delete(`${NS}/planner-a`);
  await p.reconcile(`${NS}/planner-a`);
  assert.equal(p.results.probeOf(`${NS}/planner-a`), undefined);
  assert.deepEqual(p.results.podsOf(`${NS}/planner`), [], 'memory follows the live pods');
});

test('prober: a deleted exposed pod clears the gauge and tells its identity; a pod whose identity lost spec.proxy is forgotten', async () => {
  const p = prober();
  p.open.add('127.0.0.2:8080');
  p.pods.set(`${NS}/planner-a`, pod());
  p.pods.set(`${NS}/planner-b`, pod('planner-b', { ip: '127.0.0.3' }));
  await p.reconcile(`${NS}/planner-a`);
  await p.reconcile(`${NS}/planner-b`);
  assert.equal(await p.gauge(), 1);
  assert.deepEqual([...podsOfIdentity(p.results)(identity())].sort(), [`${NS}/planner-a`, `${NS}/planner-b`], 'an identity change reaches its pods');
  p.changed.length = 0;
  p.pods.delete(`${NS}/planner-a`);
  await p.reconcile(`${NS}/planner-a`);
  assert.equal(await p.gauge(), 0);
  assert.deepEqual(p.changed, [`${NS}/planner`]);

  p.identities.set(`${NS}/planner`, identity(null as never));
  await p.reconcile(`${NS}/planner-b`);
  assert.equal(p.results.probeOf(`${NS}/planner-b`), undefined);
  assert.equal(p.dials.length, 2);
});

test('AppPortResults: a probe that finds the same tells no one; the exposed count follows every change', () => {
  const r = new AppPortResults();
  const told: string[] = [];
  r.onChange((i) => told.push(i));
  const probe = (exposed: boolean, probeKey: string) => ({ pod: 'ns/a', identity: 'ns/x', address: '10.0.0.1', port: 80, probeKey, exposed });
  r.set('ns/a', 'ns/x', probe(true, 'k1'));
  r.set('ns/a', 'ns/x', probe(true, 'k2'));
  assert.deepEqual(told, ['ns/x']);
  assert.equal(r.probeOf('ns/a')?.probeKey, 'k2', 'the newer key is kept');
  assert.equal(r.exposed, 1);
  r.set('ns/a', 'ns/y', probe(true, 'k3'));
  assert.deepEqual(told, ['ns/x', 'ns/x', 'ns/y'], 'moving to another identity tells both');
  assert.equal(r.exposed, 1);
  r.forget('ns/a');
  assert.equal(r.exposed, 0);
  assert.deepEqual(r.of('ns/y'), []);
});
