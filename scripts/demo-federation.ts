// `make demo-federation`: two local control planes, cluster-a.test and
// cluster-b.test, each with its own operator serving its TrustDomain's bundle
// at a bundle endpoint (https_spiffe). Each fetches the other's bundle through
// a ClusterFederatedTrustDomain and delivers it to its agents
// (federated-bundles.json); an SDK agent in each calls the other over mTLS,
// both ways, while cluster B rotates its root; a cluster-a.test certificate
// signed by cluster B's CA is refused by both. Prints what happens; cleans up
// after itself, also on Ctrl-C (docs/federation.md).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { startControlPlane } from '../test/support/controlplane.ts';
import { installCRDs } from '../test/support/env.ts';
import { api, isReady } from '../test/support/objects.ts';
import { eventually } from '../test/support/operator.ts';
import { mountIdentity } from '../test/support/kubelet.ts';
import { freePort } from '../test/support/proxied-pod.ts';
import { repeatCalls, tallyLine } from '../test/support/traffic.ts';
import { ANNOTATION_ROTATE_REQUESTED_AT, CLUSTER_FEDERATED_TRUST_DOMAIN, GROUP, VERSION } from '../src/api/group.ts';
import type { ClusterFederatedTrustDomain } from '../src/api/types.ts';
import { connect, createServer, type Identity, loadIdentity, peerIdentity } from '../src/sdk/index.ts';
import { generateKeyPair, issueLeaf, loadCA, privateKeyToPem, SpiffeID } from '../src/pki/index.ts';

const ROOT = resolve(import.meta.dirname, '..');
const NS = 'agent-identity-system';
let n = 0;
const step = (s: string) => console.log(`\n[${++n}] ${s}`);
const info = (s: string) => console.log(`    ${s}`);

const dir = mkdtempSync(join(tmpdir(), 'aio-demo-federation-'));
const operators: ChildProcess[] = [];
const stops: Array<() => unknown> = [];
let succeeded = false;
process.on('exit', () => {
  for (const op of operators) if (op.exitCode === null && op.signalCode === null) op.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
  if (!succeeded && operators.length) console.error(`operator logs were in ${dir}-*.log`);
  else for (const c of ['a', 'b']) rmSync(`${dir}-${c}.log`, { force: true });
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(128 + constants.signals[sig]));

interface Cluster { name: string; td: string; kc: KubeConfig; a: ReturnType<typeof api>; bundlePort: number }

/** A control plane with the CRDs, its TrustDomain (federating with `partner`) and its operator serving the bundle endpoint. */
async function cluster(c: 'a' | 'b', partner: string): Promise<Cluster> {
  const cp = await startControlPlane({ dir: join(dir, `cp-${c}`) });
  stops.push(() => cp.stop());
  await installCRDs(cp.bins.kubectl, cp.kubeconfigPath);
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  const a = api(kc);
  await a.core.createNamespace({ body: { metadata: { name: NS } } });
  const td = `cluster-${c}.test`;
  await a.createTrustDomain('default', { trustDomain: td, ca: { selfSigned: {} }, federatesWith: [partner], federation: { bundleEndpoint: { profile: { type: 'https_spiffe' }, refreshHint: '2s' } } });
  const bundlePort = await freePort();
  const log = openSync(`${dir}-${c}.log`, 'a');
  const op = spawn(process.execPath, [join(ROOT, 'src', 'main.ts'), `--kubeconfig=${cp.kubeconfigPath}`, '--http-port=0',
    `--bundle-endpoint-port=${bundlePort}`, '--bundle-endpoint-host=127.0.0.1', '--federation-refresh-min=1s', '--federation-refresh-max=10s',
    '--rotation-propagation-delay=8s', '--rotation-reissue-window=3s', '--rotation-grace=2s', '--rotation-poll=500ms'], { stdio: ['ignore', log, log] });
  operators.push(op);
  stops.push(async () => { op.kill('SIGTERM'); await new Promise((r) => op.once('exit', r)); });
  await eventually(async () => isReady(await a.getTrustDomain('default')), { what: `${td} Ready`, timeoutMs: 60_000 });
  info(`${td}: API server ${cp.server}, operator pid ${op.pid}, bundle endpoint https://127.0.0.1:${bundlePort}/bundles/${td}`);
  return { name: `cluster-${c}`, td, kc, a, bundlePort };
}

/** `at` trusts `of`: the bootstrap bundle is `of`'s ca.crt, handed over out of band (here: read from its API). */
async function federate(at: Cluster, of: Cluster): Promise<void> {
  const initial = (await of.a.core.readNamespacedConfigMap({ namespace: NS, name: 'trust-bundle-default' })).data!['ca.crt']!;
  await at.kc.makeApiClient(CustomObjectsApi).createClusterCustomObject({ group: GROUP, version: VERSION, plural: CLUSTER_FEDERATED_TRUST_DOMAIN.plural, body: {
    apiVersion: `${GROUP}/${VERSION}`, kind: 'ClusterFederatedTrustDomain', metadata: { name: of.name },
    spec: {
      trustDomain: of.td, bundleEndpointURL: `https://127.0.0.1:${of.bundlePort}/bundles/${of.td}`, trustDomainBundle: initial,
      bundleEndpointProfile: { type: 'https_spiffe', endpointSPIFFEID: `spiffe://${of.td}/agent-identity-operator/bundle-endpoint` },
    },
  } });
  const o = await eventually(async () => {
    const got = await at.kc.makeApiClient(CustomObjectsApi).getClusterCustomObject({ group: GROUP, version: VERSION, plural: CLUSTER_FEDERATED_TRUST_DOMAIN.plural, name: of.name }) as ClusterFederatedTrustDomain;
    return got.status?.conditions?.some((c) => c.type === 'Refreshed' && c.status === 'True') && got;
  }, { what: `${at.td} to fetch ${of.td}'s bundle`, timeoutMs: 60_000 });
  info(`${at.td} fetched ${of.td}'s bundle: sequence ${o.status!.sequence}, Roots ${o.status!.roots!.map((r) => `${r.fingerprint.slice(0, 19)}…`).join(', ')}`);
}

/** An SDK agent: its identity issued and mounted as the webhook would, serving mTLS. */
async function agent(c: Cluster, name: string, policy: object) {
  await c.a.core.createNamespace({ body: { metadata: { name: 'agents' } } });
  await c.a.createIdentity('agents', name, { duration: '1h', policy });
  await eventually(async () => isReady(await c.a.getIdentity('agents', name)), { what: `${name} Ready`, timeoutMs: 60_000 });
  const mount = await mountIdentity(c.kc, 'agents', name, join(dir, `${c.name}-${name}`), 300);
  stops.push(() => mount.stop());
  const identity = await loadIdentity({ dir: mount.dir, pollIntervalMs: 300 });
  stops.push(() => identity.close());
  const server = createServer(identity, {}, (s) => s.end(`hello ${peerIdentity(s)!.spiffeID}, admitted by "${peerIdentity(s)!.rule}"\n`));
  server.on('refused', (err: Error) => info(`${name} refused a caller: ${err.message}`));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  stops.push(() => new Promise((r) => server.close(r)));
  return { name, identity, port: (server.address() as { port: number }).port, id: identity.spiffeID };
}
type Agent = Awaited<ReturnType<typeof agent>>;

const call = async (from: Identity, to: Agent) => {
  const s = await connect(from, '127.0.0.1', to.port, { authorize: to.id });
  return new Promise<string>((res) => { let d = ''; s.on('data', (x) => (d += x)); s.on('close', () => res(d.trim())); s.on('error', () => res(d.trim())); });
};

try {
  const t0 = Date.now();
  step('Two control planes, each with the CRDs, a TrustDomain with a bundle endpoint (https_spiffe), and its own operator');
  const [A, B] = await Promise.all([cluster('a', 'cluster-b.test'), cluster('b', 'cluster-a.test')]);

  step('Federating both ways: a ClusterFederatedTrustDomain in each names the other\'s endpoint and bootstrap bundle');
  await Promise.all([federate(A, B), federate(B, A)]);

  step('An agent in each: alice (cluster A) admits all of cluster-b.test; bob (cluster B) admits alice by SPIFFE ID');
  const [alice, bob] = await Promise.all([
    agent(A, 'alice', { allow: [{ trustDomain: 'cluster-b.test' }] }),
    agent(B, 'bob', { allow: [{ spiffeID: 'spiffe://cluster-a.test/ns/agents/agent/alice' }] }),
  ]);
  for (const [x, partner] of [[alice, B], [bob, A]] as const) {
    await eventually(async () => x.identity.bundles.forTrustDomain(partner.td), { what: `${x.name} to get ${partner.td}'s Roots`, timeoutMs: 60_000 });
    info(`${x.name} (${x.id}) trusts ${x.identity.bundles.trustDomains.join(' and ')}: ca.crt for its own, federated-bundles.json for ${partner.td}`);
  }

  step('mTLS across the clusters, both ways (each peer verified against its own trust domain\'s Bundle)');
  info(`alice → bob: "${await call(alice.identity, bob)}"`);
  info(`bob → alice: "${await call(bob.identity, alice)}"`);

  step('An impostor: a certificate for alice\'s own SPIFFE ID, signed by cluster B\'s real CA');
  const ca = await B.a.core.readNamespacedSecret({ namespace: NS, name: 'default-ca' });
  const text = (k: string) => Buffer.from(ca.data![k]!, 'base64').toString();
  const key = await generateKeyPair('ECDSA', 256);
  const forged = await issueLeaf(await loadCA(text('intermediate.crt'), text('intermediate.key')), { spiffeID: SpiffeID.parse(alice.id), dnsNames: [], publicKey: key.publicKey, durationMs: 3_600_000, now: new Date() });
  const keyPem = await privateKeyToPem(key);
  for (const to of [alice, bob]) {
    await new Promise<void>((res) => {
      const s = tlsConnect({ host: '127.0.0.1', port: to.port, cert: forged.certificatePem, key: keyPem, rejectUnauthorized: false });
      s.on('data', () => undefined).on('close', () => res()).on('error', () => res());
    });
  }
  await new Promise((r) => setTimeout(r, 300));

  step('Cluster B rotates its root while alice and bob call each other every 250 ms');
  const loops = [repeatCalls(() => call(alice.identity, bob), { expect: 'hello' }), repeatCalls(() => call(bob.identity, alice), { expect: 'hello' })];
  stops.push(() => Promise.all(loops.map((l) => l.stop())));
  const bobSerial = bob.identity.svid.serialNumber;
  await B.kc.makeApiClient(CustomObjectsApi).patchClusterCustomObject({ group: GROUP, version: VERSION, plural: 'trustdomains', name: 'default', body: { metadata: { annotations: { [ANNOTATION_ROTATE_REQUESTED_AT]: new Date().toISOString() } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  const started = Date.now();
  await eventually(async () => alice.identity.bundles.forTrustDomain(B.td)!.roots.length === 2, { what: 'alice to hold both of B\'s Roots', timeoutMs: 60_000, intervalMs: 100 });
  info(`alice holds B's new Root beside the old one ${((Date.now() - started) / 1000).toFixed(1)} s after the rotation began (refresh hint 2 s)`);
  await eventually(async () => bob.identity.svid.serialNumber !== bobSerial, { what: 'bob to get a Leaf under B\'s new Root', timeoutMs: 90_000 });
  info(`bob's Leaf moved to the new Root (serial ${bob.identity.svid.serialNumber.slice(0, 12)}…); alice accepts it, she already had the Root`);
  await eventually(async () => alice.identity.bundles.forTrustDomain(B.td)!.roots.length === 1 && (await B.a.getTrustDomain('default')).status?.roots?.length === 1, { what: 'B\'s old Root to retire everywhere', timeoutMs: 90_000 });
  info('B retired its old Root; alice dropped it too');
  await Promise.all(loops.map((l) => l.stop()));
  info(`alice → bob: ${tallyLine(loops[0]!.tally)}`);
  info(`bob → alice: ${tallyLine(loops[1]!.tally)}`);

  step('Cleaning up');
  for (const s of stops.reverse()) await Promise.resolve().then(s).catch(() => undefined);
  info(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  if (loops.some((l) => l.tally.failed.length)) process.exitCode = 1;
  else succeeded = true;
} catch (err) {
  console.error(`demo failed: ${(err as Error).message}`);
  for (const s of stops.reverse()) await Promise.resolve().then(s).catch(() => undefined);
  process.exitCode = 1;
}
