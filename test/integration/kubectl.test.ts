// The CRDs as a person meets them through the real kubectl: every usual
// spelling of each kind, the shared category, the printer columns, and
// `kubectl delete` of an identity being a clean end rather than an error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setUp, tearDown, type Suite } from '../support/suite.ts';
import { eventually } from '../support/operator.ts';
import { isReady } from '../support/objects.ts';
import type { AgentIdentity, TrustDomain } from '../../src/api/types.ts';

let s: Suite;
let ns: string;
before(async () => { s = await setUp({}); ns = await s.env.namespace('agents'); });
after(() => tearDown(s));

async function kubectl(...args: string[]): Promise<string> {
  const r = await s.env.kubectl(args);
  assert.equal(r.code, 0, `kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** A kubectl table as rows of {HEADER: value}; columns are separated by two or more spaces. */
function table(out: string): Array<Record<string, string>> {
  const [header, ...rows] = out.trimEnd().split('\n').map((l) => l.trim().split(/\s{2,}/));
  return rows.map((r) => Object.fromEntries(header!.map((h, i) => [h, r[i] ?? ''])));
}

const IDENTITY_SPELLINGS = ['agentidentity', 'agentidentities', 'aid', 'agentid', 'agentidentity.agentidentity.dev', 'agentidentities.agentidentity.dev'];
const TRUST_DOMAIN_SPELLINGS = ['trustdomain', 'trustdomains', 'td', 'trustdomain.agentidentity.dev'];

test('every spelling of AgentIdentity works with a name, -o json and kubectl wait', async () => {
  await s.a.createIdentity(ns, 'planner');
  for (const kind of IDENTITY_SPELLINGS) {
    await kubectl('wait', '--for=condition=Ready', '--timeout=60s', '-n', ns, `${kind}/planner`);
    assert.equal(table(await kubectl('get', kind, 'planner', '-n', ns))[0]!.NAME, 'planner', `kubectl get ${kind} planner`);
    const o = JSON.parse(await kubectl('get', kind, 'planner', '-n', ns, '-o', 'json')) as AgentIdentity;
    assert.equal(o.kind, 'AgentIdentity', `kubectl get ${kind} planner -o json`);
    assert.equal(o.metadata.name, 'planner');
  }
});

test('every spelling of TrustDomain works with a name, -o json and kubectl wait', async () => {
  for (const kind of TRUST_DOMAIN_SPELLINGS) {
    await kubectl('wait', '--for=condition=Ready', '--timeout=60s', `${kind}/default`);
    assert.equal(table(await kubectl('get', kind, 'default'))[0]!.NAME, 'default', `kubectl get ${kind} default`);
    const o = JSON.parse(await kubectl('get', kind, 'default', '-o', 'json')) as TrustDomain;
    assert.equal(o.kind, 'TrustDomain', `kubectl get ${kind} default -o json`);
  }
});

test('the agent-identity category lists both kinds', async () => {
  await eventually(async () => isReady(await s.a.getIdentity(ns, 'planner')), { what: 'planner Ready' });
  const names = (await kubectl('get', 'agent-identity', '-A', '-o', 'name')).trim().split('\n').sort();
  assert.deepEqual(names, ['agentidentity.agentidentity.dev/planner', 'trustdomain.agentidentity.dev/default']);
});

test('printer columns show timestamps: the identity\'s notAfter and renewal time, the Active root\'s notAfter', async () => {
  const identity = await eventually(async () => { const i = await s.a.getIdentity(ns, 'planner'); return isReady(i) && i; }, { what: 'planner Ready' });
  const [row] = table(await kubectl('get', 'agentidentities', '-n', ns));
  assert.equal(row!.READY, 'True');
  assert.equal(row!['SPIFFE ID'], identity.status!.spiffeID);
  assert.equal(row!.EXPIRES, identity.status!.notAfter);
  assert.equal(row!.RENEWS, identity.status!.renewalTime);

  const td = await s.a.getTrustDomain('default');
  const root = td.status!.roots!.find((r) => r.state === 'Active')!;
  assert.notEqual(root.notAfter, td.status!.intermediate!.notAfter, 'the root and the intermediate expire at different times, so the column tells them apart');
  const [tdRow] = table(await kubectl('get', 'trustdomains'));
  assert.equal(tdRow!['CA EXPIRES'], root.notAfter);
});

test('kubectl delete of an identity is a clean end: no Warning event, no reconcile error', async () => {
  const errors = async () => (await s.op.metrics.reconcileErrors.get()).values.reduce((n, v) => n + v.value, 0);
  const before = await errors();
  await s.a.createIdentity(ns, 'leaving');
  await kubectl('wait', '--for=condition=Ready', '--timeout=60s', '-n', ns, 'agentidentity/leaving');
  await kubectl('delete', '-n', ns, 'agentidentity/leaving', '--timeout=60s');
  await eventually(async () => s.a.getIdentity(ns, 'leaving').then(() => false, (e: { code?: number }) => e.code === 404), { what: 'identity gone' });
  // The garbage collector finds owners of a new CRD kind only at its next discovery pass (up to ~30 s in).
  await eventually(async () => s.a.getSecret(ns, 'leaving-identity').then(() => false, (e: { code?: number }) => e.code === 404), { what: 'Secret garbage-collected', timeoutMs: 120_000 });
  await s.op.idle();
  const warnings = (await s.a.core.listNamespacedEvent({ namespace: ns })).items
    .filter((e) => e.involvedObject.name === 'leaving' && e.type === 'Warning').map((e) => `${e.reason}: ${e.message}`);
  assert.deepEqual(warnings, []);
  assert.equal(await errors(), before, 'no reconcile error was counted');
});
