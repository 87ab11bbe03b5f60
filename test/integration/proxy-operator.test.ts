// The identity proxy on what the operator really writes: identities and
// policies created in a real API server, their Secrets and policy.json
// projected into directories as the kubelet does (test/support/kubelet.ts),
// Python agents behind `agent-identity proxy` processes. Egress by the
// operator's host → identity map and egress.allow; revocation reaching a
// running proxy through the deny list.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Operator } from '../../src/operator.ts';
import type { TestEnv } from '../support/env.ts';
import { mountIdentity, type Mount } from '../support/kubelet.ts';
import { api, isReady } from '../support/objects.ts';
import { eventually } from '../support/operator.ts';
import { type Echo, headerValues, pythonGet, startPythonApp, startProxyProcess } from '../support/proxy.ts';
import type { PeerProcess } from '../support/sdk-process.ts';
import { setUp, tearDown } from '../support/suite.ts';

let env: TestEnv;
let op: Operator;
let a: ReturnType<typeof api>;
let base: string;
const mounts: Mount[] = [];
const children: PeerProcess[] = [];

before(async () => {
  ({ env, op, a } = await setUp({}));
  base = await mkdtemp(join(tmpdir(), 'proxy-operator-'));
});
after(async () => {
  for (const m of mounts) m.stop();
  await Promise.all(children.map((c) => c.stop()));
  await tearDown({ env, op });
  await rm(base, { recursive: true, force: true });
});

test('Python agents through the proxies on the operator\'s documents: a dnsNames host, egress.allow, and a suspended caller refused by the running proxy', async () => {
  const ns = await env.namespace('proxied');
  const id = (name: string) => `spiffe://cluster.local/ns/${ns}/agent/${name}`;
  await a.createIdentity(ns, 'planner', { dnsNames: [`planner-api.${ns}.svc`], policy: { allow: [{ agent: { name: 'caller' } }] } });
  await a.createIdentity(ns, 'caller', { policy: { egress: { allow: [{ agent: { name: 'planner' } }] } } });
  await a.createIdentity(ns, 'bystander');
  for (const name of ['planner', 'caller', 'bystander']) await eventually(async () => isReady(await a.getIdentity(ns, name)), { what: `${name} Ready` });
  const policy = async (name: string) => (await a.getPolicy(ns, name))!;
  await eventually(async () => (await policy('caller')).egress?.destinations.some((d) => d.host === `bystander.${ns}.svc`), { what: 'caller policy.json names bystander\'s host' });
  await eventually(async () => (await policy('planner')).allow.some((p) => p.spiffeID === id('caller')), { what: 'planner policy.json allows caller' });

  const dir = (name: string) => join(base, name);
  for (const name of ['planner', 'caller']) mounts.push(await mountIdentity(env.kc, ns, name, dir(name), 200));
  const app = await startPythonApp();
  children.push(app.process);
  const resolve = ['planner-api', 'planner', 'bystander'].flatMap((h) => ['--resolve', `${h}.${ns}.svc=127.0.0.1`]);
  const planner = await startProxyProcess(['--identity-dir', dir('planner'), '--inbound-port', '0', '--inbound-address', '127.0.0.1', '--app-port', String(app.port)]);
  const caller = await startProxyProcess(['--identity-dir', dir('caller'), '--outbound-port', '0', ...resolve]);
  children.push(planner.process, caller.process);

  const ok = await pythonGet(`http://planner-api.${ns}.svc:${planner.inboundPort}/hi`, caller.outboundPort!);
  assert.equal(ok.status, 200, ok.body);
  assert.deepEqual(headerValues(JSON.parse(ok.body) as Echo, 'x-agent-identity-peer'), [id('caller')]);

  const denied = await pythonGet(`http://bystander.${ns}.svc:${planner.inboundPort}/`, caller.outboundPort!);
  assert.equal(denied.status, 403);
  assert.match(denied.body, new RegExp(`calls to ${id('bystander')} are not allowed by the egress policy of ${id('caller')} \\(egress\\.allow list: egress\\.allow\\[0\\]: agent ${ns}/planner\\)`));

  // Suspending the caller puts its serial on the deny list in planner's policy.json; the mount carries it to the running proxy.
  const serial = (await a.getIdentity(ns, 'caller')).status!.serialNumber!;
  await a.patchIdentity(ns, 'caller', { spec: { suspended: true } });
  await eventually(async () => (await policy('planner')).denyList.some((e) => e.serialNumber === serial), { what: 'caller serial in planner policy.json' });
  // The mount and the proxy's reload follow within moments: call until refused (each call its own path).
  let attempt = 0;
  const refused = await eventually(async () => {
    const r = await pythonGet(`http://planner-api.${ns}.svc:${planner.inboundPort}/after-suspension-${++attempt}`, caller.outboundPort!);
    return r.status !== 200 && r;
  }, { what: 'the caller refused after suspension' });
  assert.equal(refused.status, 502);
  const refusal = await planner.process.waitFor('refused', (e) => e.reason === 'DenyListed');
  assert.equal(refusal.peer, id('caller'));
  assert.ok(!app.process.events.some((e) => e.event === 'request' && e.path === `/after-suspension-${attempt}`));
});
