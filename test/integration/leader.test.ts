// High availability: two operator replicas on one Lease. Only the holder
// reconciles; when it is killed the other takes over within the lease time,
// and no identity is issued twice: every Secret holds one certificate serial
// for its whole history, as watched from before the first issuance.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { CoordinationV1Api, Watch } from '@kubernetes/client-node';
import { GROUP, VERSION, AGENT_IDENTITY } from '../../src/api/group.ts';
import type { AgentIdentity, Secret } from '../../src/api/types.ts';
import { startTestEnv, type TestEnv } from '../support/env.ts';
import { spawnOperator, eventually, ensureNamespace, OPERATOR_NAMESPACE } from '../support/operator.ts';
import { api, isReady, secretText } from '../support/objects.ts';

let env: TestEnv;
let a: ReturnType<typeof api>;
const replicas: Record<string, ReturnType<typeof spawnOperator>> = {};
const FLAGS = ['--leader-elect', '--leader-election-lease-duration=4s', '--leader-election-renew-deadline=3s', '--leader-election-retry-period=500ms'];

before(async () => { env = await startTestEnv(); a = api(env.kc); await ensureNamespace(env.kc, OPERATOR_NAMESPACE); });
after(async () => { for (const r of Object.values(replicas)) await r.kill(); await env?.stop(); });

/** One form for a serial, whoever wrote it: lowercase hex without leading zeros. */
const serial = (hex: string) => BigInt(`0x${hex}`).toString(16);

/**
 * Every version of the namespace's Secrets and AgentIdentities from now on:
 * per identity, the distinct serials its Secret's certificate and its
 * status.serialNumber have held, in order. A watch sees every write (an
 * Event may be dropped or folded into another), so a second issuance cannot
 * go unseen. A watch that ends (a new CRD's watch cache answers 429 while it
 * starts) resumes from the last resourceVersion it saw, so nothing is missed;
 * one that cannot (410 Gone) fails the check.
 */
async function serialHistory(ns: string) {
  const secrets = new Map<string, string[]>();
  const statuses = new Map<string, string[]>();
  const add = (m: Map<string, string[]>, name: string, s: string) => {
    const seen = m.get(name) ?? [];
    if (seen.at(-1) !== s) m.set(name, [...seen, s]);
  };
  let lost: unknown;
  let stopped = false;
  const aborts = new Set<AbortController>();
  const follow = <T extends { metadata?: { resourceVersion?: string } }>(path: string, resourceVersion: string, onObject: (o: T) => void) => {
    let rv = resourceVersion;
    // Unreferenced: a test that failed mid-way must not be kept alive by its history.
    const restart = () => { if (!stopped && !lost) setTimeout(start, 200).unref(); };
    const start = (): void => void new Watch(env.kc).watch(path, { resourceVersion: rv }, (type, o: T) => {
      if (type === 'ERROR') { lost ??= new Error(`${path}: ${JSON.stringify(o)}`); return; }
      rv = o.metadata?.resourceVersion ?? rv;
      if (type !== 'DELETED' && type !== 'BOOKMARK') onObject(o);
    }, restart).then((c) => { aborts.add(c); if (stopped) c.abort(); }, restart);
    start();
  };
  // Lists too may answer 429 while a CRD's storage initializes.
  const rvOf = (list: () => Promise<{ metadata?: { resourceVersion?: string } }>) =>
    eventually(async () => (await list()).metadata?.resourceVersion, { what: `a resourceVersion to watch ${ns} from` });
  follow<Secret>(`/api/v1/namespaces/${ns}/secrets`, await rvOf(() => a.core.listNamespacedSecret({ namespace: ns })), (s) => {
    const pem = secretText(s, 'tls.crt');
    if (pem) add(secrets, s.metadata.name!.replace(/-identity$/, ''), serial(new X509Certificate(pem).serialNumber));
  });
  follow<AgentIdentity>(`/apis/${GROUP}/${VERSION}/namespaces/${ns}/${AGENT_IDENTITY.plural}`, await rvOf(() => a.listIdentities(ns) as Promise<{ metadata?: { resourceVersion?: string } }>), (i) => {
    if (i.status?.serialNumber) add(statuses, i.metadata.name!, serial(i.status.serialNumber));
  });
  return {
    secrets, statuses,
    check: () => { if (lost) throw new Error(`the history has a gap: ${String(lost)}`); },
    stop: () => { stopped = true; for (const c of aborts) c.abort(); },
  };
}

test('the follower takes over within the lease time when the leader dies, and nothing is issued twice', async (t) => {
  await a.createTrustDomain('default', { trustDomain: 'cluster.local', ca: { selfSigned: {} } });
  const ns = await env.namespace('ha');
  const history = await serialHistory(ns);
  t.after(() => history.stop());
  for (const id of ['replica-a', 'replica-b']) replicas[id] = spawnOperator(env.kubeconfigPath, FLAGS, { POD_NAME: id });
  const leases = env.kc.makeApiClient(CoordinationV1Api);
  const holder = async () => (await leases.readNamespacedLease({ namespace: OPERATOR_NAMESPACE, name: 'agent-identity-operator' })).spec?.holderIdentity;
  const leader = await eventually(async () => holder(), { what: 'a leader' });
  const follower = leader === 'replica-a' ? 'replica-b' : 'replica-a';

  const names = [...[0, 1, 2, 3, 4].map((i) => `before-${i}`), ...[0, 1, 2].map((i) => `after-${i}`)];
  for (const n of names.slice(0, 5)) await a.createIdentity(ns, n);
  await eventually(async () => (await a.listIdentities(ns)).items.filter(isReady).length === 5, { what: '5 Ready' });
  assert.match(replicas[leader]!.output(), /became leader/);
  assert.doesNotMatch(replicas[follower]!.output(), /became leader|issued certificate/, 'the follower did not reconcile');

  const killedAt = Date.now();
  await replicas[leader]!.kill();
  await eventually(async () => (await holder()) === follower, { timeoutMs: 20_000, intervalMs: 100, what: 'the follower to take the lease' });
  const takeover = Date.now() - killedAt;
  t.diagnostic(`takeover ${takeover} ms after SIGKILL (lease 4 s, retry 0.5 s)`);
  assert.ok(takeover < 4000 + 2000, `took over within the lease time plus a retry: ${takeover} ms`);

  for (const n of names.slice(5)) await a.createIdentity(ns, n);
  await eventually(async () => (await a.listIdentities(ns)).items.filter(isReady).length === 8, { timeoutMs: 30_000, what: '8 Ready under the new leader' });
  // A spec edit after the takeover (a renewal time moves; the certificate stays valid) that
  // the new leader acknowledges in observedGeneration: it has reconciled every identity since,
  // the five it inherited included, so a second issuance would have happened by now.
  const edited = new Map<string, number>();
  for (const n of names) edited.set(n, (await a.patchIdentity(ns, n, { spec: { renewBeforePercentage: 50 } })).metadata.generation!);
  const reconciled = await eventually(async () => {
    const items = (await a.listIdentities(ns)).items;
    return items.length === 8 && items.every((i) => isReady(i) && (i.status?.observedGeneration ?? 0) >= edited.get(i.metadata.name!)!) && items;
  }, { timeoutMs: 30_000, what: 'the new leader to reconcile all 8 after the edit' });
  assert.match(replicas[follower]!.output(), /became leader/);

  history.check();
  for (const i of reconciled) {
    const n = i.metadata.name!;
    const current = serial(new X509Certificate(secretText(await a.getSecret(ns, `${n}-identity`), 'tls.crt')).serialNumber);
    assert.deepEqual(history.secrets.get(n), [current], `${n}: its Secret held one certificate serial, ever`);
    assert.deepEqual(history.statuses.get(n), [current], `${n}: its status named that serial, and no other`);
    assert.equal(serial(i.status!.serialNumber!), current);
  }
});
