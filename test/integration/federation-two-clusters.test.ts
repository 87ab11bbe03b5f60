// Two control planes, each with its own operator, bundle endpoint and TrustDomain
// (cluster-a.test, cluster-b.test), federated both ways through their bundle
// endpoints (https_spiffe): each fetches the other's bundle, and a root rotation
// on A reaches B's copy with a higher sequence. Then agents: each cluster's
// partner Roots reach its agents (federated-bundles.json), SDK agents call each
// other both ways, a certificate for cluster-a.test signed by B's CA is refused
// by both sides, and B's root rotation under traffic costs 0 failed handshakes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { startTestEnv, type TestEnv } from '../support/env.ts';
import { eventually, runOperator, OPERATOR_NAMESPACE } from '../support/operator.ts';
import { api } from '../support/objects.ts';
import { ANNOTATION_ROTATE_REQUESTED_AT, CLUSTER_FEDERATED_TRUST_DOMAIN, GROUP, VERSION } from '../../src/api/group.ts';
import type { ClusterFederatedTrustDomain, ConfigMap } from '../../src/api/types.ts';
import type { Operator } from '../../src/operator.ts';
import { startBundleEndpoint, type BundleEndpoint } from '../../src/federation/endpoint.ts';
import { parseBundleDocument } from '../../src/federation/document.ts';
import { createLogger } from '../../src/log.ts';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { mountIdentity, type Mount } from '../support/kubelet.ts';
import { connect, createServer, type Identity, loadIdentity, PeerRefusedError, peerIdentity, type AgentServer } from '../../src/sdk/index.ts';
import { generateKeyPair, issueLeaf, loadCA, privateKeyToPem, SpiffeID } from '../../src/pki/index.ts';
import http from 'node:http';
import { startProxy, type RunningProxy } from '../../src/proxy/index.ts';
import { proxyConfig } from '../../src/proxy/config.ts';
import { PEER_HEADER } from '../../src/proxy/headers.ts';

interface Cluster { name: string; td: string; env: TestEnv; op: Operator; endpoint: BundleEndpoint; a: ReturnType<typeof api> }
// A rotation waits the refresh hint (1 s) plus propagationDelayMs: the partner's way to its agents (coalescing, the kubelet's sync).
const OPERATOR = { federationRefreshMinMs: 1000, federationRefreshMaxMs: 5000, propagationDelayMs: 8000, reissueWindowMs: 1000, rotationGraceMs: 1500, rotationPollMs: 300 };
let A: Cluster;
let B: Cluster;

async function cluster(name: string): Promise<Cluster> {
  const env = await startTestEnv();
  const a = api(env.kc);
  const td = `${name}.test`;
  await a.createTrustDomain('default', { trustDomain: td, ca: { selfSigned: {} }, federatesWith: [name === 'cluster-a' ? 'cluster-b.test' : 'cluster-a.test'], federation: { bundleEndpoint: { profile: { type: 'https_spiffe' }, refreshHint: '1s' } } });
  const op = await runOperator(env.kc, OPERATOR);
  const endpoint = await startBundleEndpoint({ kubeConfig: env.kc, namespace: OPERATOR_NAMESPACE, host: '127.0.0.1', port: 0, pollMs: 200, logger: createLogger('silent', 'json') });
  return { name, td, env, op, endpoint, a };
}

before(async () => {
  [A, B] = await Promise.all([cluster('cluster-a'), cluster('cluster-b')]);
});
after(async () => {
  for (const c of [A, B]) {
    await c?.endpoint.close();
    await c?.op.stop();
    await c?.env.stop();
  }
});

const cftd = { group: GROUP, version: VERSION, plural: CLUSTER_FEDERATED_TRUST_DOMAIN.plural };
const getFederated = (c: Cluster, name: string) => c.env.kc.makeApiClient(CustomObjectsApi).getClusterCustomObject({ ...cftd, name }) as Promise<ClusterFederatedTrustDomain>;
const configMap = (c: Cluster, name: string) => c.a.core.readNamespacedConfigMap({ namespace: OPERATOR_NAMESPACE, name }) as Promise<ConfigMap>;
const rootsOf = async (c: Cluster) => (await c.a.getTrustDomain('default')).status?.roots?.map((r) => r.fingerprint).sort() ?? [];

/** `at` fetches `of`'s bundle from its endpoint, bootstrapped with `of`'s bundle taken out of band. */
async function federate(at: Cluster, of: Cluster): Promise<void> {
  await eventually(async () => of.endpoint.served().includes(of.td), { what: `${of.name}'s endpoint to serve`, timeoutMs: 60_000 });
  const initial = (await configMap(of, 'trust-bundle-default')).data!['ca.crt']!;
  await at.env.kc.makeApiClient(CustomObjectsApi).createClusterCustomObject({ ...cftd, body: {
    apiVersion: `${GROUP}/${VERSION}`, kind: 'ClusterFederatedTrustDomain', metadata: { name: of.name },
    spec: {
      trustDomain: of.td, bundleEndpointURL: `https://127.0.0.1:${of.endpoint.port}/bundles/${of.td}`,
      bundleEndpointProfile: { type: 'https_spiffe', endpointSPIFFEID: `spiffe://${of.td}/agent-identity-operator/bundle-endpoint` }, trustDomainBundle: initial,
    },
  } });
}

const heldRoots = async (at: Cluster, of: Cluster) => (await getFederated(at, of.name)).status?.roots?.map((r) => r.fingerprint).sort() ?? [];

let federated: Promise<void> | undefined;
/** Both ways, once for the file. */
const federateBoth = () => (federated ??= Promise.all([federate(A, B), federate(B, A)]).then(() => undefined));

test('two clusters fetch each other\'s bundle through their bundle endpoints, and a root rotation on one reaches the other', async (t) => {
  await federateBoth();
  for (const [at, of] of [[A, B], [B, A]] as const) {
    await eventually(async () => {
      const o = await getFederated(at, of.name);
      return o.status?.conditions?.some((c) => c.type === 'Refreshed' && c.status === 'True') && (await heldRoots(at, of)).join() === (await rootsOf(of)).join();
    }, { what: `${at.name} to hold ${of.name}'s Roots`, timeoutMs: 60_000 });
    assert.notDeepEqual(await heldRoots(at, of), await rootsOf(at), 'a foreign bundle, not our own');
  }

  const before = (await getFederated(B, A.name)).status!.sequence!;
  const startedAt = Date.now();
  await A.env.kc.makeApiClient(CustomObjectsApi).patchClusterCustomObject({ group: GROUP, version: VERSION, plural: 'trustdomains', name: 'default', body: { metadata: { annotations: { [ANNOTATION_ROTATE_REQUESTED_AT]: new Date().toISOString() } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  // A publishes the incoming Root first (PublishingRoot): the new document has both.
  await eventually(async () => parseBundleDocument((await configMap(A, 'spiffe-bundle-default')).data!['bundle.spiffe.json']!).roots.length === 2, { what: 'A to publish the incoming Root', timeoutMs: 60_000 });
  const publishedAt = Date.now();
  await eventually(async () => (await heldRoots(B, A)).length === 2, { what: 'B to hold both of A\'s Roots', timeoutMs: 60_000 });
  const reachedAt = Date.now();
  const status = (await getFederated(B, A.name)).status!;
  assert.ok(status.sequence! > before, `B holds a higher sequence: ${status.sequence} > ${before}`);
  t.diagnostic(`A published the incoming Root ${publishedAt - startedAt} ms after the request; B held it ${reachedAt - publishedAt} ms later (refresh hint 1 s, bounds 1-5 s)`);
  // Generous: one refresh at the maximum bound plus the endpoint's 200 ms poll, the fetch and the test's own polling.
  assert.ok(reachedAt - publishedAt < 20_000, `reached B within ${reachedAt - publishedAt} ms`);
  // And when the rotation ends, the retired Root leaves B's copy too.
  await eventually(async () => (await heldRoots(B, A)).join() === (await rootsOf(A)).join() && (await rootsOf(A)).length === 1, { what: 'B to follow A to a single new Root', timeoutMs: 90_000 });
});

interface Agent { identity: Identity; server: AgentServer; port: number; mount: Mount; id: string; refusals: string[] }

async function agent(c: Cluster, namespace: string, name: string, allow: string, dir: string): Promise<Agent> {
  await c.a.createIdentity(namespace, name, { policy: { allow: [{ spiffeID: allow }] } });
  await eventually(async () => (await c.a.getIdentity(namespace, name)).status?.serialNumber, { what: `${c.name}'s ${name} to be issued`, timeoutMs: 60_000 });
  const mount = await mountIdentity(c.env.kc, namespace, name, dir, 200);
  const identity = await loadIdentity({ dir, pollIntervalMs: 200 });
  const server = createServer(identity, {}, (s) => {
    s.on('error', () => undefined);
    s.end(`hello ${peerIdentity(s)!.spiffeID}\n`);
  });
  const refusals: string[] = [];
  server.on('refused', (err: Error) => refusals.push(err.message));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { identity, server, port: (server.address() as AddressInfo).port, mount, id: identity.spiffeID, refusals };
}

/** One mTLS call from `from` to `to`: the greeting, or why there was none (a server that refused the client closes without one). */
async function call(from: Agent, to: Agent): Promise<string> {
  const socket = await connect(from.identity, '127.0.0.1', to.port, { authorize: to.id });
  socket.on('error', () => undefined);
  const refused = () => `closed without a greeting (refused by ${to.id}: ${to.refusals.at(-1) ?? 'unknown'})`;
  const greeting = await new Promise<string>((resolve) => {
    let data = '';
    // A server that refused us may have hung up before connect() resolved.
    if (socket.destroyed) return resolve(refused());
    socket.on('data', (d) => (data += String(d)));
    socket.on('close', () => resolve(data.trim() || refused()));
  });
  socket.destroy();
  return greeting;
}

test('agents of the two clusters call each other over mTLS, an impostor is refused by both sides, and a partner\'s root rotation under traffic fails no handshake', async (t) => {
  await federateBoth();
  const base = await mkdtemp(join(tmpdir(), 'federation-agents-'));
  const [nsA, nsB] = await Promise.all([A.env.namespace('agents'), B.env.namespace('agents')]);
  const aliceID = `spiffe://cluster-a.test/ns/${nsA}/agent/alice`;
  const bobID = `spiffe://cluster-b.test/ns/${nsB}/agent/bob`;
  const [alice, bob] = await Promise.all([agent(A, nsA, 'alice', bobID, join(base, 'alice')), agent(B, nsB, 'bob', aliceID, join(base, 'bob'))]);
  t.after(async () => {
    for (const x of [alice, bob]) {
      x.mount.stop();
      x.identity.close();
      x.server.close();
    }
    await rm(base, { recursive: true, force: true });
  });

  // Each agent's files name the partner's Roots, and the SDK took them in without a new Leaf.
  for (const [x, partner] of [[alice, B], [bob, A]] as const) {
    await eventually(async () => x.identity.bundles.forTrustDomain(partner.td)?.roots.length, { what: `${x.id} to hold ${partner.td}'s Roots`, timeoutMs: 60_000 });
    const file = JSON.parse(await readFile(join(base, x === alice ? 'alice' : 'bob', 'federated-bundles.json'), 'utf8')) as { bundles: Record<string, string> };
    assert.deepEqual(Object.keys(file.bundles), [partner.td]);
  }
  assert.equal(await call(bob, alice), `hello ${bobID}`);
  assert.equal(await call(alice, bob), `hello ${aliceID}`);

  // An impostor: a Leaf for alice's own SPIFFE ID, signed by cluster B's real Intermediate.
  const caSecret = await B.a.core.readNamespacedSecret({ namespace: OPERATOR_NAMESPACE, name: 'default-ca' });
  const text = (k: string) => Buffer.from(caSecret.data![k]!, 'base64').toString('utf8');
  const bCA = await loadCA(text('intermediate.crt'), text('intermediate.key'));
  const key = await generateKeyPair('ECDSA', 256);
  const forged = await issueLeaf(bCA, { spiffeID: SpiffeID.parse(aliceID), dnsNames: [], publicKey: key.publicKey, durationMs: 3_600_000, now: new Date() });
  const impostor = { cert: forged.certificatePem, key: await privateKeyToPem(key) };
  for (const x of [alice, bob]) {
    // As a client: the server refuses it by its chain (cluster-a.test's Bundle never signed it), before any policy.
    const refused = once(x.server, 'refused') as Promise<[PeerRefusedError]>;
    const s = tls.connect({ host: '127.0.0.1', port: x.port, ...impostor, rejectUnauthorized: false });
    s.on('error', () => undefined);
    const [err] = await refused;
    s.destroy();
    assert.equal(err.reason, 'UntrustedChain', `${x.id} refused the impostor client by its chain: ${err.message}`);
  }
  const fake = tls.createServer(impostor, (s) => s.on('error', () => undefined));
  fake.listen(0, '127.0.0.1');
  await once(fake, 'listening');
  t.after(() => fake.close());
  for (const x of [alice, bob]) {
    // As a server claiming alice: both refuse it.
    await assert.rejects(connect(x.identity, '127.0.0.1', (fake.address() as AddressInfo).port, { authorize: aliceID }), (e: PeerRefusedError) => e.reason === 'UntrustedChain');
  }

  // B rotates its Root while both agents keep calling each other.
  let calls = 0;
  const failures: string[] = [];
  let running = true;
  const traffic = (async () => {
    while (running) {
      for (const [from, to] of [[alice, bob], [bob, alice]] as const) {
        calls++;
        await call(from, to).then((greeting) => {
          if (greeting !== `hello ${from.id}`) failures.push(`${from.id} -> ${to.id}: ${greeting}`);
        }, (err: Error) => failures.push(`${from.id} -> ${to.id}: ${err.message}`));
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const bobSerial = bob.identity.svid.serialNumber;
  const bRoots = await rootsOf(B);
  await B.env.kc.makeApiClient(CustomObjectsApi).patchClusterCustomObject({ group: GROUP, version: VERSION, plural: 'trustdomains', name: 'default', body: { metadata: { annotations: { [ANNOTATION_ROTATE_REQUESTED_AT]: new Date().toISOString() } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  await eventually(async () => parseBundleDocument((await configMap(B, 'spiffe-bundle-default')).data!['bundle.spiffe.json']!).roots.length === 2, { what: 'B to publish the incoming Root', timeoutMs: 60_000, intervalMs: 50 });
  const publishedAt = Date.now();
  await eventually(async () => alice.identity.bundles.forTrustDomain('cluster-b.test')!.roots.length === 2, { what: 'alice to hold both of B\'s Roots', timeoutMs: 60_000, intervalMs: 50 });
  const aliceHeldAt = Date.now();
  // Bob's Leaf moves to the new Root, and A's copy follows B to a single new Root.
  await eventually(async () => bob.identity.svid.serialNumber !== bobSerial, { what: 'bob to get a Leaf under the new Root', timeoutMs: 90_000 });
  await eventually(async () => {
    const roots = await rootsOf(B);
    return roots.length === 1 && roots[0] !== bRoots[0] && alice.identity.bundles.forTrustDomain('cluster-b.test')!.roots.length === 1;
  }, { what: 'alice to follow B to a single new Root', timeoutMs: 90_000 });
  // A few more rounds under the final state.
  const settled = calls;
  await eventually(async () => calls > settled + 10, { what: 'more calls after the rotation' });
  running = false;
  await traffic;
  t.diagnostic(`B published its incoming Root; alice's SDK held it ${aliceHeldAt - publishedAt} ms later (refresh hint 1 s; then the trust reconciler's coalescing and the kubelet's sync); ${calls} calls across the rotation, ${failures.length} failed`);
  assert.deepEqual(failures, [], 'no failed handshake across the rotation');
  assert.ok(calls > 20, `traffic ran throughout (${calls} calls)`);
  // Generous: a regression (fetching stuck at the maximum bound, or delivery waiting on a resync) would cross it.
  assert.ok(aliceHeldAt - publishedAt < 20_000, `B's incoming Root reached alice within ${aliceHeldAt - publishedAt} ms`);
});

interface Proxied { proxy: RunningProxy; app: http.Server; mount: Mount; identity: Identity }

/** An agent whose app (plain HTTP, answering with the caller the proxy names) sits behind the identity proxy, both sides. */
async function proxied(c: Cluster, namespace: string, name: string, policy: object, dir: string, resolve: string): Promise<Proxied> {
  await c.a.createIdentity(namespace, name, { policy });
  await eventually(async () => (await c.a.getIdentity(namespace, name)).status?.serialNumber, { what: `${c.name}'s ${name} to be issued`, timeoutMs: 60_000 });
  const mount = await mountIdentity(c.env.kc, namespace, name, dir, 200);
  const identity = await loadIdentity({ dir, pollIntervalMs: 200 });
  const app = http.createServer((req, res) => res.end(`${name} answers ${req.headers[PEER_HEADER]}`));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
  const proxy = await startProxy(identity, proxyConfig(['--inbound-port', '0', '--inbound-address', '127.0.0.1', '--app-port', String((app.address() as AddressInfo).port), '--mode', 'http',
    '--outbound-port', '0', '--resolve', `${resolve}=127.0.0.1`], {}));
  return { proxy, app, mount, identity };
}

/** The app's call through its outbound proxy: plain http:// to the partner's host, mTLS on the way. */
function viaProxy(from: Proxied, url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: from.proxy.outbound!.port, path: url, headers: { host: new URL(url).host } }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d)).on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject).end();
  });
}

test('apps behind the identity proxy call each other across the clusters, both ways', async (t) => {
  await federateBoth();
  const base = await mkdtemp(join(tmpdir(), 'federation-proxies-'));
  const [nsA, nsB] = await Promise.all([A.env.namespace('proxied'), B.env.namespace('proxied')]);
  const carolID = `spiffe://cluster-a.test/ns/${nsA}/agent/carol`;
  const daveID = `spiffe://cluster-b.test/ns/${nsB}/agent/dave`;
  // carol admits all of cluster-b.test and may call dave at dave.cluster-b.test; dave the reverse, by SPIFFE ID.
  const [carol, dave] = await Promise.all([
    proxied(A, nsA, 'carol', { allow: [{ trustDomain: 'cluster-b.test' }], egress: { allow: [{ spiffeID: daveID, hosts: ['dave.cluster-b.test'] }] } }, join(base, 'carol'), 'dave.cluster-b.test'),
    proxied(B, nsB, 'dave', { allow: [{ spiffeID: carolID }], egress: { allow: [{ spiffeID: carolID, hosts: ['carol.cluster-a.test'] }] } }, join(base, 'dave'), 'carol.cluster-a.test'),
  ]);
  t.after(async () => {
    for (const x of [carol, dave]) {
      await x.proxy.close(0);
      x.app.close();
      x.mount.stop();
      x.identity.close();
    }
    await rm(base, { recursive: true, force: true });
  });
  for (const [x, partner] of [[carol, B], [dave, A]] as const) {
    await eventually(async () => x.identity.bundles.forTrustDomain(partner.td), { what: `${x.identity.spiffeID} to hold ${partner.td}'s Roots`, timeoutMs: 60_000 });
    // The proxy's policy: the egress host claim for the partner's agent has arrived.
    await eventually(async () => x.identity.policy.egress?.destinations.some((d) => d.host.endsWith(partner.td)), { what: 'the egress host claim', timeoutMs: 60_000 });
  }
  assert.deepEqual(await viaProxy(carol, `http://dave.cluster-b.test:${dave.proxy.inbound!.port}/`), { status: 200, body: `dave answers ${carolID}` });
  assert.deepEqual(await viaProxy(dave, `http://carol.cluster-a.test:${carol.proxy.inbound!.port}/`), { status: 200, body: `carol answers ${daveID}` });
  // A host that names nobody is refused before any connection, and a claim does not widen egress.
  const stranger = await viaProxy(carol, `http://eve.cluster-b.test:${dave.proxy.inbound!.port}/`);
  assert.equal(stranger.status, 403);
});
