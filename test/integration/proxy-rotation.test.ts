// The demo's Python agent (examples/python/agent.py, no certificate code)
// behind the identity proxy, both ways, through a root rotation against a
// real API server: its pod is what the webhook makes of it (proxied-pod.ts
// runs the sidecar's args and the agent's env as processes), its identity is
// the operator's Secret and policy.json projected as the kubelet does. An SDK
// agent calls it (inbound) and it calls an SDK agent (outbound, egress.allow)
// while the root rotates; no call may fail, and the proxy must end up serving
// the leaf the new root signed, without a restart.
import assert from 'node:assert/strict';
import https from 'node:https';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, test } from 'node:test';
import type { Operator } from '../../src/operator.ts';
import { createHttpsServer, httpsAgent, type Identity, loadIdentity, peerIdentity } from '../../src/sdk/index.ts';
import { runCli } from '../support/cli.ts';
import type { TestEnv } from '../support/env.ts';
import { mountIdentity, type Mount } from '../support/kubelet.ts';
import { api, isReady } from '../support/objects.ts';
import { eventually } from '../support/operator.ts';
import { freePort, mutatedPod, type ProxiedPod, runProxiedPod } from '../support/proxied-pod.ts';
import { setUp, tearDown } from '../support/suite.ts';
import { repeatCalls } from '../support/traffic.ts';

let env: TestEnv;
let op: Operator;
let a: ReturnType<typeof api>;
let base: string;
const cleanups: Array<() => unknown> = [];

before(async () => {
  ({ env, op, a } = await setUp({ operator: { propagationDelayMs: 1500, reissueWindowMs: 3000, rotationGraceMs: 3000, rotationPollMs: 300 } }));
  base = await mkdtemp(join(tmpdir(), 'proxy-rotation-'));
});
after(async () => {
  for (const c of cleanups.reverse()) await c();
  await tearDown({ env, op });
  await rm(base, { recursive: true, force: true });
});

test('a Python agent behind its injected proxy calls and is called by SDK agents through a root rotation with zero failed calls', async () => {
  const ns = await env.namespace('proxied-rotation');
  const id = (name: string) => `spiffe://cluster.local/ns/${ns}/agent/${name}`;
  const proxySpec = { port: await freePort(), appPort: await freePort(), mode: 'http' as const };
  await a.createIdentity(ns, 'planner', { duration: '1h', policy: { allow: [{ agent: { name: 'researcher' } }] } });
  await a.createIdentity(ns, 'orchestrator', { duration: '1h' });
  await a.createIdentity(ns, 'researcher', { duration: '1h', proxy: proxySpec,
    policy: { allow: [{ agent: { name: 'orchestrator' } }], egress: { allow: [{ agent: { name: 'planner' } }] } } });
  for (const name of ['planner', 'orchestrator', 'researcher']) await eventually(async () => isReady(await a.getIdentity(ns, name)), { what: `${name} Ready` });
  const policy = async (name: string) => (await a.getPolicy(ns, name))!;
  await eventually(async () => (await policy('researcher')).egress?.destinations.some((d) => d.host === `planner.${ns}.svc`), { what: 'researcher\'s policy.json maps planner\'s host' });
  await eventually(async () => (await policy('planner')).allow.some((p) => p.spiffeID === id('researcher')), { what: 'planner\'s policy.json allows researcher' });

  const mounts: Record<string, Mount> = {};
  const ids: Record<string, Identity> = {};
  for (const name of ['planner', 'orchestrator', 'researcher']) {
    mounts[name] = await mountIdentity(env.kc, ns, name, join(base, name), 200);
    cleanups.push(() => mounts[name]!.stop());
  }
  for (const name of ['planner', 'orchestrator']) {
    ids[name] = await loadIdentity({ dir: mounts[name]!.dir, pollIntervalMs: 200 });
    cleanups.push(() => ids[name]!.close());
  }
  const planner = createHttpsServer(ids.planner!, {}, (req, res) => res.end(`hello ${peerIdentity(req.socket as TLSSocket)?.spiffeID}`));
  await new Promise<void>((r) => planner.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise((r) => planner.close(r)));
  const plannerURL = `http://planner.${ns}.svc:${(planner.address() as { port: number }).port}/`;

  const pod = mutatedPod({
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: 'researcher-0', namespace: ns },
    spec: { serviceAccountName: 'researcher', containers: [{ name: 'agent', image: 'registry.invalid/researcher', env: [{ name: 'PORT', value: String(proxySpec.appPort) }] }] },
  }, await a.getIdentity(ns, 'researcher'));
  // The outbound port moved off 15001: other test files and runs share this host.
  const researcher: ProxiedPod = await runProxiedPod(pod, mounts.researcher!.dir, [`planner.${ns}.svc`], { outboundPort: await freePort() });
  cleanups.push(() => researcher.stop());
  assert.deepEqual(researcher.agent.volumeMounts ?? [], [], 'the agent container mounts nothing of the identity');

  // Every inbound call is a new handshake (no keep-alive): the proxy must present a leaf the caller trusts at each moment.
  const toResearcher = httpsAgent(ids.orchestrator!, { authorize: id('researcher'), keepAlive: false });
  const inbound = () => new Promise<string>((res, rej) => {
    https.get({ host: '127.0.0.1', port: proxySpec.port, path: '/', agent: toResearcher }, (r) => {
      let d = '';
      r.on('data', (c) => (d += c)).on('end', () => (r.statusCode === 200 ? res(d) : rej(new Error(`${r.statusCode} ${d}`))));
    }).on('error', rej);
  });
  const outbound = async () => {
    const r = await researcher.call(plannerURL);
    if (r.status !== 200) throw new Error(`${r.status} ${r.body}`);
    return r.body;
  };
  assert.match(await inbound(), new RegExp(`^hello ${id('orchestrator')}, from agent \\(Python\\)`));
  assert.equal(await outbound(), `hello ${id('researcher')}`);

  const before = (await a.getTrustDomain('default')).status!.roots!.map((r) => r.fingerprint);
  assert.equal(before.length, 1);
  const loops = [repeatCalls(inbound, { intervalMs: 100 }), repeatCalls(outbound, { intervalMs: 100 })];
  // Stopped before the agents go, also when an assertion below fails first.
  cleanups.push(() => Promise.all(loops.map((l) => l.stop())));
  const rotate = await runCli(env.kubeconfigPath, 'ca', 'rotate', 'default');
  assert.equal(rotate.code, 0, rotate.stderr);
  const newRoot = await eventually(async () => {
    const roots = (await a.getTrustDomain('default')).status?.roots ?? [];
    return roots.length === 1 && roots[0]!.fingerprint !== before[0] && roots[0]!.fingerprint;
  }, { timeoutMs: 90_000, what: 'the rotation to finish on a new root' });
  // The proxy reloads the re-issued leaf from the mount; then calls keep going on the new root alone.
  const reissued = (await a.getIdentity(ns, 'researcher')).status!.serialNumber!;
  await eventually(async () => researcher.proxy.process.events.some((e) => e.event === 'identity reloaded' && String(e.serialNumber).toLowerCase() === reissued.toLowerCase()),
    { what: `researcher's proxy serving the re-issued leaf ${reissued}` });
  const okAtEnd = loops.map((l) => l.tally.ok);
  await eventually(async () => loops.every((l, i) => l.tally.ok >= okAtEnd[i]! + 5), { what: 'five more calls each way on the new root' });
  await Promise.all(loops.map((l) => l.stop()));

  assert.ok(newRoot);
  assert.deepEqual(loops.map((l) => l.tally.failed), [[], []], 'no call failed, either way');
  assert.ok(loops.every((l) => l.tally.ok >= 10), `calls each way: ${loops.map((l) => l.tally.ok).join(', ')}`);
  assert.equal(researcher.python.child.exitCode, null, 'the Python agent ran throughout, never restarted');
});
