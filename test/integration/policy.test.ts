// Inbound policy: the operator compiles spec.policy into each identity's
// policy.json ConfigMap, recompiles it when the peers it names appear,
// change or leave, and reports how many peers it resolves to.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { TestEnv } from '../support/env.ts';
import { setUp, tearDown } from '../support/suite.ts';
import { eventually } from '../support/operator.ts';
import { api, isReady } from '../support/objects.ts';
import type { Operator } from '../../src/operator.ts';

let env: TestEnv;
let op: Operator;
let a: ReturnType<typeof api>;

before(async () => {
  ({ env, op, a } = await setUp({}));
});
after(() => tearDown({ env, op }));

const policyOf = (ns: string, name: string) => a.getPolicy(ns, name);

test('policy.json follows the agents the policy names as they join and leave', async () => {
  const ns = await env.namespace('agents');
  const ops = await env.namespace('ops');
  const id = (n: string, name: string) => `spiffe://cluster.local/ns/${n}/agent/${name}`;
  await a.createIdentity(ns, 'planner', { policy: { allow: [{ agent: { name: 'orchestrator' } }, { agent: { name: 'auditor', namespace: ops } }, { selector: { matchLabels: { role: 'reviewer' } } }] } });
  await a.createIdentity(ns, 'orchestrator');
  await a.createIdentity(ns, 'bystander');

  const first = await eventually(async () => { const d = await policyOf(ns, 'planner'); return d?.allow.length === 1 && d; }, { what: 'policy with the orchestrator' });
  assert.equal(first.mode, 'AllowList');
  assert.equal(first.spiffeID, id(ns, 'planner'));
  assert.deepEqual(first.allow, [{ spiffeID: id(ns, 'orchestrator'), rule: 'allow[0]: agent ' + `${ns}/orchestrator` }]);
  await eventually(async () => (await a.getIdentity(ns, 'planner')).status?.policyPeers === 1, { what: 'status.policyPeers 1' });

  // Joining: an auditor in another namespace, and a reviewer picked by label.
  await a.createIdentity(ops, 'auditor');
  await a.createIdentity(ns, 'reviewer-1');
  await a.patchIdentity(ns, 'reviewer-1', { metadata: { labels: { role: 'reviewer' } } });
  const grown = await eventually(async () => { const d = await policyOf(ns, 'planner'); return d?.allow.length === 3 && d; }, { what: 'policy with three peers' });
  assert.deepEqual(grown.allow.map((p) => p.spiffeID).sort(), [id(ns, 'orchestrator'), id(ns, 'reviewer-1'), id(ops, 'auditor')].sort());
  assert.ok(!grown.allow.some((p) => p.spiffeID === id(ns, 'bystander')), 'an unnamed agent is not allowed');
  await eventually(async () => (await a.getIdentity(ns, 'planner')).status?.policyPeers === 3, { what: 'status.policyPeers 3' });

  // Leaving: the orchestrator is deleted, the reviewer loses its label.
  await a.deleteIdentity(ns, 'orchestrator');
  await a.patchIdentity(ns, 'reviewer-1', { metadata: { labels: { role: null } } });
  const shrunk = await eventually(async () => { const d = await policyOf(ns, 'planner'); return d?.allow.length === 1 && d; }, { what: 'policy down to the auditor' });
  assert.deepEqual(shrunk.allow.map((p) => p.spiffeID), [id(ops, 'auditor')]);

  // Without a policy: any identity of the trust domain.
  const open = await eventually(async () => policyOf(ns, 'bystander'), { what: 'bystander policy.json' });
  assert.equal(open.mode, 'TrustDomain');
  assert.deepEqual(open.allow, []);
  assert.equal((await a.getIdentity(ns, 'bystander')).status?.policyPeers, undefined);
});

test('a revoked certificate reaches the deny list inside every policy.json of the trust domain', async () => {
  const ns = await env.namespace('deny');
  await a.createIdentity(ns, 'server');
  await a.createIdentity(ns, 'rogue');
  await eventually(async () => isReady(await a.getIdentity(ns, 'rogue')), { what: 'rogue Ready' });
  const serial = (await a.getSecret(ns, 'rogue-identity')).metadata.annotations!['agentidentity.dev/serial-number'];
  await a.patchIdentity(ns, 'rogue', { spec: { suspended: true } });
  const doc = await eventually(async () => { const d = await policyOf(ns, 'server'); return d?.denyList.some((e) => e.serialNumber === serial) && d; }, { what: 'serial in server policy.json' });
  assert.equal(doc.denyList.find((e) => e.serialNumber === serial)!.reason, 'Suspended');
});

test('egress: spec.policy.egress.allow reaches policy.json with the proxy\'s host map; an inbound-only policy gets no map; inbound stays open without allow', async () => {
  const ns = await env.namespace('egress');
  const id = (name: string) => `spiffe://cluster.local/ns/${ns}/agent/${name}`;
  await a.createIdentity(ns, 'caller', { policy: { egress: { allow: [{ agent: { name: 'search' } }] } } });
  await a.createIdentity(ns, 'search', { dnsNames: [`api.${ns}.svc`] });
  await a.createIdentity(ns, 'other');

  const doc = await eventually(async () => {
    const d = await policyOf(ns, 'caller');
    return d?.egress?.allow.length === 1 && d;
  }, { what: 'caller policy.json with egress' });
  assert.equal(doc.mode, 'TrustDomain', 'no allow: inbound open to the trust domain');
  assert.equal(doc.egress!.mode, 'AllowList');
  assert.deepEqual(doc.egress!.allow, [{ spiffeID: id('search'), rule: `egress.allow[0]: agent ${ns}/search` }]);
  // An egress policy is the proxy's to enforce, so its document maps hosts to identities (proxy-operator.test.ts)…
  assert.ok(doc.egress!.destinations.some((d) => d.host === `api.${ns}.svc` && d.spiffeID === id('search')), JSON.stringify(doc.egress!.destinations));
  // …and an inbound-only policy's does not: it would grow with the trust domain in every holder's document.
  await a.createIdentity(ns, 'inbound', { policy: { allow: [{ agent: { name: 'search' } }] } });
  const inbound = await eventually(async () => {
    const d = await policyOf(ns, 'inbound');
    return d?.allow.length === 1 && d;
  }, { what: 'inbound policy.json' });
  assert.deepEqual(inbound.egress?.destinations ?? [], []);
  assert.equal((await a.getIdentity(ns, 'caller')).status?.policyPeers, undefined, 'policyPeers counts inbound peers only');

  // The API server refuses a malformed egress rule with its own message.
  await assert.rejects(a.createIdentity(ns, 'bad', { policy: { egress: { allow: [{ agent: { name: 'x' }, spiffeID: 'spiffe://td/x' }] } } }),
    /each egress\.allow rule names exactly one of agent, selector/);
});
