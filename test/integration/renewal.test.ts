// Leaf renewal on a real API server with short lifetimes: renewal happens
// before expiry so the Secret always holds a valid certificate; identities
// created together do not renew together; manual renewal through the CLI;
// a failing identity backs off and says so without holding back others.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { TestEnv } from '../support/env.ts';
import { setUp, tearDown } from '../support/suite.ts';
import { eventually } from '../support/operator.ts';
import { runCli } from '../support/cli.ts';
import { api, isReady, secretText } from '../support/objects.ts';
import { parseCertificates } from '../../src/pki/parse.ts';
import type { Operator } from '../../src/operator.ts';

let env: TestEnv;
let op: Operator;
let a: ReturnType<typeof api>;

before(async () => {
  ({ env, op, a } = await setUp({}));
});
after(() => tearDown({ env, op }));

const cli = (...args: string[]) => runCli(env.kubeconfigPath, ...args);

test('renewal happens before expiry: at every poll the Secret holds a certificate valid at that instant', async (t) => {
  const ns = await env.namespace('renew');
  await a.createIdentity(ns, 'short', { duration: '6s' });
  await eventually(async () => isReady(await a.getIdentity(ns, 'short')), { what: 'Ready' });
  const serials = new Set<string>();
  let polls = 0;
  const end = Date.now() + 16_000;
  while (Date.now() < end) {
    const s = await a.getSecret(ns, 'short-identity');
    const leaf = parseCertificates(secretText(s, 'tls.crt'))[0]!;
    const now = new Date();
    assert.ok(leaf.notBefore <= now && now < leaf.notAfter, `poll ${polls}: certificate ${leaf.serialNumber} not valid at ${now.toISOString()} (${leaf.notBefore.toISOString()} – ${leaf.notAfter.toISOString()})`);
    serials.add(leaf.serialNumber);
    polls++;
    await new Promise((r) => setTimeout(r, 200));
  }
  t.diagnostic(`${polls} polls over 16 s saw ${serials.size} certificates, every one valid when read`);
  assert.ok(serials.size >= 3, `a 6 s certificate renews every ~4 s: saw ${serials.size} in 16 s`);
  assert.ok(serials.size <= 8, `and not in a loop: saw ${serials.size} in 16 s`);
  assert.equal((await a.getIdentity(ns, 'short')).status!.lastIssuanceReason, 'Renewing');
});

test('200 identities created in the same second do not all renew in the same second', async (t) => {
  const ns = await env.namespace('spread');
  const N = 200;
  await Promise.all(Array.from({ length: N }, (_, i) => a.createIdentity(ns, `agent-${i}`, { duration: '1h' })));
  const items = await eventually(async () => { const l = (await a.listIdentities(ns)).items; return l.filter(isReady).length === N && l; }, { timeoutMs: 120_000, what: `${N} Ready` });
  const bySecond = new Map<number, number>();
  for (const i of items) {
    const s = Math.floor(new Date(i.status!.renewalTime!).getTime() / 1000);
    bySecond.set(s, (bySecond.get(s) ?? 0) + 1);
  }
  const times = [...bySecond.keys()].sort((x, y) => x - y);
  const busiest = Math.max(...bySecond.values());
  t.diagnostic(`${N} identities renew over ${times.length} distinct seconds spanning ${times.at(-1)! - times[0]!} s; busiest second has ${busiest}`);
  assert.ok(times.length >= N / 2, `renewals spread over ${times.length} distinct seconds`);
  assert.ok(busiest <= 10, `at most 10 renewals in any one second, saw ${busiest}`);
});

test('the CLI renews one identity, all of them, or those matching a selector', async () => {
  const ns = await env.namespace('cli');
  await a.createIdentity(ns, 'one');
  await a.createIdentity(ns, 'two');
  await a.core.listNamespace(); // warm connection
  const serial = async (n: string) => (await a.getIdentity(ns, n)).status?.serialNumber;
  await eventually(async () => isReady(await a.getIdentity(ns, 'one')) && isReady(await a.getIdentity(ns, 'two')), { what: 'both Ready' });
  const [s1, s2] = [await serial('one'), await serial('two')];

  const r = await cli('renew', 'one', '-n', ns);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`renewal requested for ${ns}/one`));
  const renewed = await eventually(async () => { const i = await a.getIdentity(ns, 'one'); return i.status?.serialNumber !== s1 && isReady(i) && i; }, { what: 'one renewed' });
  assert.equal(renewed.status!.lastIssuanceReason, 'RenewalRequested');
  assert.equal(await serial('two'), s2, 'only the named identity renewed');

  await a.patchIdentity(ns, 'two', { metadata: { labels: { tier: 'gold' } } });
  const bySelector = await cli('renew', '-n', ns, '-l', 'tier=gold', '-o', 'json');
  assert.equal(bySelector.code, 0, bySelector.stderr);
  assert.deepEqual(JSON.parse(bySelector.stdout).identities, [{ namespace: ns, name: 'two' }]);
  await eventually(async () => (await serial('two')) !== s2, { what: 'two renewed' });

  const [t1, t2] = [await serial('one'), await serial('two')];
  const all = await cli('renew', '--all', '-n', ns);
  assert.equal(all.code, 0, all.stderr);
  await eventually(async () => (await serial('one')) !== t1 && (await serial('two')) !== t2, { what: 'both renewed by --all' });

  const status = await cli('status', '-n', ns);
  assert.match(status.stdout, /NAMESPACE\s+NAME\s+READY\s+REASON\s+SPIFFE ID\s+EXPIRES\s+RENEWS/);
  assert.match(status.stdout, new RegExp(`${ns}\\s+one\\s+True\\s+Issued\\s+spiffe://cluster.local/ns/${ns}/agent/one\\s+in `));

  const bad = await cli('renew');
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /renew needs NAME -n NAMESPACE, --all, or -l SELECTOR/);
});

test('a failing identity backs off, reports attempts, and does not hold back others', async () => {
  const ns = await env.namespace('fail');
  await a.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'blocked-identity' }, stringData: { x: 'y' } } });
  await a.createIdentity(ns, 'blocked');
  await a.createIdentity(ns, 'fine');
  await eventually(async () => isReady(await a.getIdentity(ns, 'fine')), { what: 'the healthy identity Ready' });
  const i = await eventually(async () => { const x = await a.getIdentity(ns, 'blocked'); return (x.status?.failedIssuanceAttempts ?? 0) >= 3 && x; }, { timeoutMs: 30_000, what: '3 failed attempts' });
  assert.ok(i.status!.lastFailureTime, 'lastFailureTime is set');
  const ready = i.status!.conditions!.find((c) => c.type === 'Ready')!;
  assert.equal(ready.status, 'False');
  assert.equal(ready.reason, 'SecretConflict');
  // Backoff: 1 s, 2 s, 4 s ... so the attempts are few, not one per event.
  // A window, not a wait: in 2 s a flat 500 ms retry would add 4 attempts (7 > 6), backoff at most 1.
  await new Promise((r) => setTimeout(r, 2000));
  const later = (await a.getIdentity(ns, 'blocked')).status!.failedIssuanceAttempts!;
  assert.ok(later <= 6, `backing off: ${later} attempts so far`);
  const errors = (await op.metrics.reconcileErrors.get()).values.find((v) => v.labels.reason === 'SecretConflict');
  assert.ok((errors?.value ?? 0) >= 3);

  await a.core.deleteNamespacedSecret({ namespace: ns, name: 'blocked-identity' });
  const fixed = await eventually(async () => { const x = await a.getIdentity(ns, 'blocked'); return isReady(x) && x; }, { timeoutMs: 60_000, what: 'blocked recovers' });
  assert.equal(fixed.status!.failedIssuanceAttempts, 0);
});
