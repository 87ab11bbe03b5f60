// Ready means serving: a replica is Ready, and its webhook port open, only
// once the webhook serves a certificate the configurations' caBundle
// verifies; on SIGTERM it leaves the Service first and drains. Real operator
// processes, the shipped configurations pointed at a local stand-in for the
// webhook Service (test/support/balancer.ts), and the API server itself
// calling the webhook for every AgentIdentity created.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { startTestEnv, type TestEnv } from '../support/env.ts';
import { spawnOperator, eventually, ensureNamespace, OPERATOR_NAMESPACE } from '../support/operator.ts';
import { api } from '../support/objects.ts';
import { caBundles, installWebhookConfigurations } from '../support/webhook.ts';
import { startBalancer, type Balancer } from '../support/balancer.ts';
import { freePort } from '../support/ports.ts';
import { DEFAULT_TRUST_DOMAIN } from '../support/suite.ts';
import { createWebhookCA, issueServingCertificate, loadWebhookCA, servingNames, servingSecretOf } from '../../src/webhook-certificates/certificates.ts';
import { WEBHOOK_TLS_SECRET } from '../../src/api/names.ts';

let env: TestEnv;
let a: ReturnType<typeof api>;
let lb: Balancer;
const replicas = new Map<string, Replica>();
// The default lease and renew deadline (15 s, 10 s): a 3 s deadline made a leader on the loaded CI machine give up
// its Lease and exit 1 mid-test. Nothing here waits for a Lease to expire (a replica that stops releases it), and a
// short retry period keeps the hand-over quick.
const FLAGS = ['--leader-elect', '--leader-election-lease-duration=15s', '--leader-election-renew-deadline=10s', '--leader-election-retry-period=500ms', '--webhook-host=127.0.0.1', '--log-level=info'];

interface Replica { name: string; webhookPort: number; healthPort: number; proc: ReturnType<typeof spawnOperator> }

/** A new pod: its own ports, an endpoint of the stand-in Service that starts not ready. */
async function startReplica(name: string): Promise<Replica> {
  const webhookPort = await freePort();
  const healthPort = await freePort();
  const proc = spawnOperator(env.kubeconfigPath, [...FLAGS, `--webhook-port=${webhookPort}`, `--http-port=${healthPort}`], { POD_NAME: name });
  const r = { name, webhookPort, healthPort, proc };
  replicas.set(name, r);
  lb.add({ name, port: webhookPort, healthPort });
  return r;
}

const readyz = async (r: Replica) => {
  const res = await fetch(`http://127.0.0.1:${r.healthPort}/readyz`);
  return { status: res.status, body: await res.text() };
};

/** What a client that trusts only the current caBundle gets from the webhook port. */
async function dial(port: number): Promise<'refused' | 'verified' | 'untrusted'> {
  const attempt = async () => {
    const ca = (await caBundles(env.kc))[0] ?? '';
    return new Promise<'refused' | 'verified' | 'untrusted'>((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port, ca: ca || [], timeout: 2000 }, () => { s.destroy(); resolve('verified'); });
      s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED' ? 'refused' : 'untrusted'));
      s.once('timeout', () => { s.destroy(); resolve('untrusted'); });
    });
  };
  // The caBundle read before the dial may just have been superseded: a second look settles it.
  const first = await attempt();
  return first === 'untrusted' ? attempt() : first;
}

before(async () => {
  env = await startTestEnv();
  a = api(env.kc);
  await ensureNamespace(env.kc, OPERATOR_NAMESPACE);
  await a.createTrustDomain('default', DEFAULT_TRUST_DOMAIN);
  lb = await startBalancer({ periodMs: 1000 });
  // As shipped (no caBundle yet), each webhook calling the Service stand-in.
  await installWebhookConfigurations(env.kc, lb.port);
});

after(async () => {
  for (const r of replicas.values()) await r.proc.kill();
  await lb?.close();
  await env?.stop();
});

test('a fresh replica is not ready, and its webhook port refuses connections, until the caBundle verifies what it serves', async () => {
  // Another replica holds the Lease: this one is a follower, so nothing issues the webhook's certificate yet.
  const leases = env.kc.makeApiClient(CoordinationV1Api);
  const now = new Date().toISOString().replace(/\.\d+Z$/, '.000000Z');
  const held = await env.kubectl(['create', '-f', '-'], JSON.stringify({
    apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'agent-identity-operator', namespace: OPERATOR_NAMESPACE },
    spec: { holderIdentity: 'elsewhere', leaseDurationSeconds: 3600, renewTime: now, acquireTime: now },
  }));
  assert.equal(held.code, 0, held.stderr);
  const r = await startReplica('fresh');

  // 1. No serving certificate at all.
  await eventually(async () => /waiting for the serving certificate Secret/.test(r.proc.output()) && (await readyz(r)).status, { what: 'the replica up and waiting' });
  const waiting = await readyz(r);
  assert.equal(waiting.status, 503);
  assert.match(waiting.body, /no serving certificate/);
  assert.equal(await dial(r.webhookPort), 'refused', 'the webhook port is closed without a certificate');

  // 2. A certificate the caBundle does not verify (its CA is not in it): loaded, yet still not ready and not listening.
  const foreignCA = await loadWebhookCA(await createWebhookCA(new Date(), 3600_000));
  const foreign = await issueServingCertificate(foreignCA, servingNames('agent-identity-operator-webhook', OPERATOR_NAMESPACE, [], ['127.0.0.1']), new Date(), 3600_000);
  await a.core.createNamespacedSecret({ namespace: OPERATOR_NAMESPACE, body: servingSecretOf(OPERATOR_NAMESPACE, WEBHOOK_TLS_SECRET, foreign) as never });
  const untrusted = await eventually(async () => { const z = await readyz(r); return /caBundle is empty/.test(z.body) && z; }, { what: 'the foreign certificate judged' });
  assert.equal(untrusted.status, 503);
  assert.match(r.proc.output(), new RegExp(`"serialNumber":"${foreign.serialNumber}"[^\\n]*serving certificate loaded`));
  assert.equal(await dial(r.webhookPort), 'refused', 'the webhook port stays closed while the caBundle does not verify its certificate');

  // 3. The Lease frees up: this replica leads, its manager publishes a CA and re-issues; from then on it serves and is ready.
  await leases.deleteNamespacedLease({ namespace: OPERATOR_NAMESPACE, name: 'agent-identity-operator' });
  const samples: Array<{ ready: boolean; port: 'refused' | 'verified' | 'untrusted' }> = [];
  await eventually(async () => {
    const ready = (await readyz(r)).status === 200;
    const port = await dial(r.webhookPort);
    samples.push({ ready, port });
    return ready && port === 'verified';
  }, { timeoutMs: 60_000, intervalMs: 50, what: 'ready and serving a verified certificate' });
  assert.deepEqual(samples.filter((s) => s.port === 'untrusted'), [], 'the port never served a certificate the caBundle did not verify');
  assert.deepEqual(samples.filter((s) => s.ready && s.port !== 'verified'), [], 'ready only while serving a verified certificate');
  assert.ok(samples.length >= 2 && samples[0]!.port === 'refused', `refused until then (${samples.length} samples)`);

  assert.equal(await r.proc.terminate(), 0);
  lb.remove(r.name);
  replicas.delete(r.name);
});

test('two replicas, a rolling update of both while AgentIdentities are created in a loop: no creation is refused', async (t) => {
  const ns = await env.namespace('serving');
  const first = [await startReplica('old-a'), await startReplica('old-b')];
  await eventually(async () => lb.ready().length === 2, { timeoutMs: 60_000, what: 'both replicas ready' });
  // The API server picks the configurations (and their caBundle) up from its own watch.
  await eventually(async () => { await a.createIdentity(ns, `warmup-${Date.now()}`); return true; }, { timeoutMs: 30_000, intervalMs: 250, what: 'the API server calling the webhook' });

  const refusals: string[] = [];
  let created = 0;
  let looping = true;
  // However the test ends: a loop left running after the control plane stopped would spin on refused connections.
  t.after(() => { looping = false; });
  const loop = (async () => {
    for (let i = 0; looping; i++) {
      try {
        await a.createIdentity(ns, `agent-${i}`);
        created++;
      } catch (err) {
        const body = (err as { body?: unknown }).body;
        refusals.push(`agent-${i}: ${typeof body === 'string' ? body : JSON.stringify(body ?? (err as Error).message)}`);
      }
    }
  })();
  const progress = async (what: string) => { const from = created + refusals.length; await eventually(async () => created + refusals.length >= from + 10, { timeoutMs: 30_000, what }); };

  // As a Deployment with maxSurge 1, maxUnavailable 0 does it: a new pod, Ready, then the old one goes.
  const timeline: string[] = [];
  for (const [i, old] of first.entries()) {
    const next = await startReplica(`new-${i}`);
    await eventually(async () => lb.ready().includes(next.name), { timeoutMs: 60_000, what: `${next.name} ready` });
    await progress(`creations with ${next.name} in the Service`);
    const leader = (await env.kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace: OPERATOR_NAMESPACE, name: 'agent-identity-operator' })).spec?.holderIdentity;
    const code = await old.proc.terminate();
    timeline.push(`${old.name}${leader === old.name ? ' (leader)' : ''} exited ${code}`);
    assert.equal(code, 0, `${old.name} shut down cleanly; its log ends:\n${old.proc.output().split('\n').slice(-15).join('\n')}`);
    lb.remove(old.name);
    await progress(`creations after ${old.name} left`);
  }
  looping = false;
  await loop;

  t.diagnostic(`${created} AgentIdentities created during the update; ${refusals.length} refused; ${timeline.join(', ')}; connections per replica ${JSON.stringify(lb.routed())}`);
  assert.deepEqual(refusals, [], 'no AgentIdentity creation was refused');
  assert.ok(created >= 40, `the loop kept creating throughout (${created})`);
  assert.ok(Object.keys(lb.routed()).length >= 2, 'admission calls moved from one replica to another');
  assert.ok(timeline.some((l) => l.includes('(leader)')), `the leader was among the replicas replaced: ${timeline.join(', ')}`);
});

test('a taken webhook port is refused at start-up by its flag, though the webhook listens only once its certificate is trusted', async () => {
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
  const port = (taken.address() as { port: number }).port;
  const p = spawnOperator(env.kubeconfigPath, ['--webhook-host=127.0.0.1', `--webhook-port=${port}`]);
  try {
    const code = await Promise.race([p.exited, new Promise((r) => setTimeout(r, 20_000, 'still running after 20 s'))]);
    assert.equal(code, 1);
    assert.equal(p.output(), `agent-identity-operator: port ${port} is already in use (--webhook-port / AGENT_IDENTITY_WEBHOOK_PORT)\n`);
  } finally {
    await p.kill();
    taken.close();
  }
});
