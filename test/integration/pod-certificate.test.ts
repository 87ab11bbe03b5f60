// Pod-certificate delivery end to end, everything real except the node: a
// control plane with the Node authorizer and NodeRestriction, the operator
// (signer, identity and trust reconcilers) in-process, the shipped webhook
// injecting pods, and the stand-in kubelet (test/support/pod-kubelet.ts)
// asking for the pod's certificate as node n1. The SVID it gets is checked as
// go-spiffe would, loaded by the SDK, used for mTLS with a Secret-delivered
// agent, refreshed with a new key, refused when the trust bundle ConfigMap is
// a tenant's, and deny-listed when its identity is suspended.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { createNode, startTestEnv, type TestEnv, type TestNode } from '../support/env.ts';
import { eventually, OPERATOR_NAMESPACE, runOperator } from '../support/operator.ts';
import { DEFAULT_TRUST_DOMAIN } from '../support/suite.ts';
import { api, isReady } from '../support/objects.ts';
import { createPod, podManifest, startShippedWebhook, type ShippedWebhook } from '../support/webhook.ts';
import { makeTenant } from '../support/tenant.ts';
import { mountIdentity, type Mount } from '../support/kubelet.ts';
import { podCertificateVolumeOf, startPodKubelet, type PodCertificateOutcome, type PodKubelet } from '../support/pod-kubelet.ts';
import type { Operator } from '../../src/operator.ts';
import type { DenyList } from '../../src/api/documents.ts';
import type { PodCertificateRequest } from '../../src/api/types.ts';
import { FINALIZER_POD_CERTIFICATE } from '../../src/api/group.ts';
import { x509 } from '../../src/pki/crypto.ts';
import { parseCertificates, sanValues } from '../../src/pki/parse.ts';
import { serialNumberOf } from '../../src/pki/serial.ts';
import { verifyChain } from '../../src/pki/verify.ts';
import { connect, createServer, loadIdentity, peerIdentity, type Identity, type PeerIdentity, type PeerRefusedError } from '../../src/sdk/index.ts';

const PCR = { group: 'certificates.k8s.io', version: 'v1', plural: 'podcertificaterequests' } as const;
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
type Issued = Extract<PodCertificateOutcome, { type: 'Issued' }>;

let env: TestEnv;
let op: Operator;
let a: ReturnType<typeof api>;
let webhook: ShippedWebhook;
let n1: TestNode;
let base: string;
let ns: string;
let kubelet: PodKubelet | undefined;
let planner: Identity | undefined;
let orchestrator: Identity | undefined;
let mount: Mount | undefined;
let first: Issued;
let latest: Issued;
// The stand-in re-reads the Date its refreshAt hook returned on every poll: the renewal test pulls it to now.
const refreshGate = new Date(8.64e15);

before(async () => {
  env = await startTestEnv({ nodeAuthorizer: true });
  a = api(env.kc);
  await a.createTrustDomain('default', DEFAULT_TRUST_DOMAIN);
  op = await runOperator(env.kc);
  n1 = await createNode(env, 'n1');
  base = await mkdtemp(join(tmpdir(), 'pod-certificate-'));
  ns = await env.namespace('podcert');
  webhook = await startShippedWebhook(env);
  // The API server picks up the configurations (and their caBundle) from its own watch: until then the call fails.
  await eventually(async () => {
    const r = await createPod(env.kc, ns, podManifest(`warmup-${Date.now()}`, { agent: 'nobody' }));
    return !r.admitted && r.message.includes('has no AgentIdentity "nobody"');
  }, { what: 'the API server calls the webhook', timeoutMs: 30_000, intervalMs: 250 });
});

after(async () => {
  await kubelet?.stop();
  planner?.close();
  orchestrator?.close();
  mount?.stop();
  await webhook?.stop();
  await op?.stop();
  await env?.stop();
  if (base) await rm(base, { recursive: true, force: true });
});

/** A pod for `agent` bound to n1, as a workload would create it: the webhook adds the identity volume. */
const agentPod = (name: string, agent: string) =>
  podManifest(name, { agent, serviceAccountName: agent, spec: { nodeName: 'n1', automountServiceAccountToken: false } });

const readyWith = async (namespace: string, name: string) =>
  eventually(async () => { const i = await a.getIdentity(namespace, name); return isReady(i) && i; }, { what: `${namespace}/${name} Ready` });

const bundleIn = async (namespace: string) => (await a.core.readNamespacedConfigMap({ namespace, name: 'trust-bundle-default' })).data ?? {};

/** A real mTLS connection between two SDK identities: what each side saw of the other. */
async function handshake(server: Identity, client: Identity, expect: string): Promise<{ atServer: PeerIdentity; atClient: PeerIdentity }> {
  let atServer: PeerIdentity | undefined;
  const srv = createServer(server, {}, (socket) => { atServer = peerIdentity(socket); socket.end('hello\n'); });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  try {
    const socket = await connect(client, '127.0.0.1', (srv.address() as AddressInfo).port, { authorize: expect });
    const [data] = await once(socket, 'data') as [Buffer];
    assert.equal(String(data), 'hello\n', 'the server admitted the client');
    socket.destroy();
    return { atServer: atServer!, atClient: peerIdentity(socket)! };
  } finally {
    srv.close();
  }
}

/** Why `server` refuses `client` (a PeerRefusedError's reason), or undefined when it admits it. */
async function refusal(server: Identity, client: Identity): Promise<string | undefined> {
  const srv = createServer(server, {}, (socket) => socket.end('hello\n'));
  const refused = once(srv, 'refused') as Promise<[PeerRefusedError]>;
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  try {
    const reason = refused.then(([err]) => err.reason);
    // The server may hang up before the client's connect settles.
    const socket = await connect(client, '127.0.0.1', (srv.address() as AddressInfo).port, { authorize: server.spiffeID }).catch(() => undefined);
    if (!socket) return await reason;
    socket.on('error', () => undefined);
    const outcome = await Promise.race([once(socket, 'data').then(() => undefined), reason]);
    socket.destroy();
    return outcome;
  } finally {
    srv.close();
  }
}

test('a pod on n1 gets an X.509-SVID through a PodCertificateRequest, for its own key, and no key reaches the API', async (t) => {
  await a.createIdentity(ns, 'planner', { delivery: 'PodCertificate', duration: '24h' });
  const identity = await readyWith(ns, 'planner');
  assert.equal(identity.status!.conditions!.find((c) => c.type === 'Ready')!.reason, 'PodCertificates');
  const spiffeID = identity.status!.spiffeID!;
  assert.equal(spiffeID, `spiffe://cluster.local/ns/${ns}/agent/planner`);

  const admitted = await createPod(env.kc, ns, agentPod('planner-0', 'planner'));
  assert.ok(admitted.admitted, `admitted: ${admitted.admitted ? '' : admitted.message}`);
  assert.ok(podCertificateVolumeOf(admitted.pod as never), 'the webhook injected the podCertificate projection');

  const started = Date.now();
  let answers = 0;
  kubelet = await startPodKubelet({
    kc: n1.kc, namespace: ns, pod: 'planner-0', dir: join(base, 'planner'), pollMs: 100,
    // The first certificate is refreshed when the renewal test says; later ones at beginRefreshAt (an hour and more away).
    refreshAt: (at) => (++answers === 1 ? refreshGate : at),
  });
  const outcome = await kubelet.outcome(0);
  t.diagnostic(`kubelet start → files written: ${Date.now() - started} ms`);
  assert.equal(outcome.type, 'Issued', outcome.type !== 'Issued' ? `${outcome.reason}: ${outcome.message}` : '');
  first = outcome as Issued;

  // go-spiffe's X509-SVID rules.
  const chain = parseCertificates(first.certificateChain);
  const leaf = chain[0]!;
  const uris = sanValues(leaf, 'url');
  assert.deepEqual(uris, [spiffeID], 'exactly one URI SAN: the identity\'s SPIFFE ID');
  assert.equal(leaf.getExtension(x509.BasicConstraintsExtension)?.ca ?? false, false, 'CA:false');
  const ku = leaf.getExtension(x509.KeyUsagesExtension)!;
  assert.ok(ku.critical, 'KU critical');
  assert.ok((ku.usages & x509.KeyUsageFlags.digitalSignature) !== 0, 'KU digitalSignature');
  assert.equal(ku.usages & (x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign), 0, 'no CA key usages');
  assert.deepEqual([...leaf.getExtension(x509.ExtendedKeyUsageExtension)!.usages].sort(), [x509.ExtendedKeyUsage.clientAuth, x509.ExtendedKeyUsage.serverAuth].sort());
  assert.equal(Buffer.from(leaf.publicKey.rawData).toString('base64'), first.publicKeySpki, 'the key the kubelet made');
  assert.equal(first.request.spec.nodeName, 'n1');

  // The chain verifies against the bundle the operator published in the pod's namespace.
  const verified = await verifyChain(chain, parseCertificates((await bundleIn(ns))['ca.crt']!), new Date());
  assert.deepEqual(verified, { ok: true });

  // No private key of this identity in the API: no Secret in its namespace holds one.
  const secrets = (await a.core.listNamespacedSecret({ namespace: ns })).items;
  const withKeys = secrets.filter((s) => s.data?.['tls.key'] !== undefined
    || Object.values(s.data ?? {}).some((v) => Buffer.from(v, 'base64').toString('latin1').includes('PRIVATE KEY')));
  assert.deepEqual(withKeys.map((s) => s.metadata!.name), []);
  assert.equal((await a.getIdentity(ns, 'planner')).status!.conditions!.find((c) => c.type === 'Ready')!.reason, 'PodCertificates');

  // Told three ways: the PCR's condition (above), an Event on the identity, a metric.
  const events = await eventually(async () => {
    const list = (await a.core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.kind=AgentIdentity,involvedObject.name=planner' })).items;
    return list.filter((e) => e.reason === 'PodCertificateIssued').length > 0 && list;
  }, { what: 'a PodCertificateIssued Event' });
  assert.match(events.find((e) => e.reason === 'PodCertificateIssued')!.message!, new RegExp(`PodCertificateRequest ${first.request.metadata.name}: issued ${spiffeID} serial ${serialNumberOf(leaf)} to pod ${ns}/planner-0 on node n1`));
  const metrics = await op.metrics.text();
  assert.match(metrics, /agentidentity_pod_certificates_total\{trust_domain="default",result="issued",reason="Issued"\} 1\n/);
  const seconds = /agentidentity_pod_certificate_issuance_duration_seconds_sum\{trust_domain="default"\} ([\d.e-]+)/.exec(metrics)?.[1];
  t.diagnostic(`signer: issuance took ${(Number(seconds) * 1000).toFixed(1)} ms (record, sign, status write)`);

  // Both deliveries interoperate: the SDK loads the kubelet's files and does mTLS with a Secret-delivered agent.
  const other = await env.namespace('secret');
  await a.createIdentity(other, 'orchestrator', { duration: '1h' });
  const orch = await readyWith(other, 'orchestrator');
  mount = await mountIdentity(env.kc, other, 'orchestrator', join(base, 'orchestrator'));
  orchestrator = await loadIdentity({ dir: mount.dir, watch: false });
  planner = await loadIdentity({ dir: join(base, 'planner'), spiffeID });
  assert.equal(planner.svid.serialNumber, serialNumberOf(leaf));

  const toPlanner = await handshake(planner, orchestrator, spiffeID);
  assert.equal(toPlanner.atServer.spiffeID.toString(), orch.status!.spiffeID);
  assert.equal(toPlanner.atClient.serialNumber, serialNumberOf(leaf), 'the client saw the pod certificate');
  const toOrchestrator = await handshake(orchestrator, planner, orch.status!.spiffeID!);
  assert.equal(toOrchestrator.atServer.spiffeID.toString(), spiffeID, 'the Secret agent admitted the pod-certificate agent');
  assert.equal(toOrchestrator.atServer.serialNumber, serialNumberOf(leaf));
});

test('renewal: a refresh brings a new key and a new SVID, valid before the old one expires; the SDK swaps to it', async (t) => {
  assert.ok(first && kubelet && planner, 'needs the first test');
  const identity = await a.getIdentity(ns, 'planner');
  // beginRefreshAt: the Secret leaves' rule (2/3 through the lifetime, less a jitter of at most 5 %, capped at 1 h), inside the API's window.
  const lifetime = first.notAfter.getTime() - first.notBefore.getTime();
  assert.equal(lifetime, DAY);
  const at = first.beginRefreshAt.getTime();
  assert.ok(at >= first.notBefore.getTime() + 10 * MINUTE && at <= first.notAfter.getTime() - 10 * MINUTE, 'within [notBefore+10m, notAfter−10m]');
  const twoThirds = first.notBefore.getTime() + (2 * lifetime) / 3;
  const jitter = Math.min(0.05 * lifetime, 60 * MINUTE);
  assert.ok(at <= twoThirds + MINUTE && at >= twoThirds - jitter - MINUTE, `beginRefreshAt ${first.beginRefreshAt.toISOString()} is 2/3 through less jitter (${new Date(twoThirds).toISOString()})`);
  t.diagnostic(`beginRefreshAt at ${((100 * (at - first.notBefore.getTime())) / lifetime).toFixed(2)} % of the lifetime (jitter ${((twoThirds - at) / MINUTE).toFixed(1)} min)`);
  assert.equal(identity.status?.conditions?.find((c) => c.type === 'Ready')?.reason, 'PodCertificates');

  // The API's floor is 1 h, so waiting for beginRefreshAt is out of the question: the stand-in refreshes early (allowed: it is a hint).
  const updated = once(planner, 'update');
  const started = Date.now();
  refreshGate.setTime(Date.now());
  const renewed = await kubelet.outcome(1);
  assert.equal(renewed.type, 'Issued', renewed.type !== 'Issued' ? `${renewed.reason}: ${renewed.message}` : '');
  const second = renewed as Issued;
  t.diagnostic(`refresh → new files: ${Date.now() - started} ms`);
  assert.equal(kubelet.requests.length, 2, 'one new request');
  assert.notEqual(second.request.metadata.name, first.request.metadata.name);
  assert.notEqual(second.publicKeySpki, first.publicKeySpki, 'a new key');

  const [reloaded] = await updated as [Identity];
  const newLeaf = parseCertificates(second.certificateChain)[0]!;
  assert.equal(reloaded.svid.serialNumber, serialNumberOf(newLeaf), 'the SDK took the new SVID');
  assert.notEqual(serialNumberOf(newLeaf), serialNumberOf(parseCertificates(first.certificateChain)[0]!), 'a new serial');
  assert.equal(Buffer.from(reloaded.svid.leaf.publicKey.rawData).toString('base64'), second.publicKeySpki, 'for the new key');

  const now = new Date();
  assert.ok(first.notAfter.getTime() > now.getTime(), 'the old SVID has not expired');
  assert.ok(second.notBefore.getTime() <= now.getTime(), 'the new SVID is already valid');
  assert.deepEqual(await verifyChain(parseCertificates(second.certificateChain), parseCertificates((await bundleIn(ns))['ca.crt']!), now), { ok: true });
  const r = await handshake(orchestrator!, planner, orchestrator!.spiffeID);
  assert.equal(r.atServer.serialNumber, serialNumberOf(newLeaf), 'the Secret agent sees the renewed SVID');
  latest = second;
});

test('a tenant\'s trust-bundle ConfigMap refuses pod-certificate pods (BundleConfigMapConflict) until the operator publishes its own', async () => {
  const squatted = await env.namespace('squat');
  const tenant = await makeTenant(env.kc, squatted);
  const attacker = api(tenant.kc);
  // Before the operator has a reason to publish here (no identity yet), the tenant takes the bundle's name.
  await attacker.core.createNamespacedConfigMap({ namespace: squatted, body: { metadata: { name: 'trust-bundle-default' }, data: { 'ca.crt': 'the tenant\'s roots' } } });
  await attacker.createIdentity(squatted, 'coder', { delivery: 'PodCertificate', duration: '24h' });
  await readyWith(squatted, 'coder');

  const refused = await createPod(tenant.kc, squatted, agentPod('coder-0', 'coder'));
  assert.equal(refused.admitted, false, 'a pod that would trust the tenant\'s roots is refused');
  if (refused.admitted) return;
  assert.equal(refused.code, 403);
  assert.equal(refused.message, `admission webhook "bind.agentidentity.dev" denied the request: ConfigMap ${squatted}/trust-bundle-default is not the operator's trust bundle (it is not controlled by its TrustDomain), and the pod would trust the roots in it; delete it — the operator will publish the real one`);

  await attacker.core.deleteNamespacedConfigMap({ namespace: squatted, name: 'trust-bundle-default' });
  const { metadata: { uid } } = await a.getTrustDomain('default');
  // Nothing announces the squat's deletion (it carries none of our labels): the trust reconciler's backoff retries find it gone.
  await eventually(async () => {
    const cm = await a.core.readNamespacedConfigMap({ namespace: squatted, name: 'trust-bundle-default' }).catch(() => undefined);
    return cm?.metadata?.ownerReferences?.some((o) => o.controller && o.uid === uid);
  }, { timeoutMs: 60_000, what: 'the operator publishes its own bundle' });
  const admitted = await createPod(tenant.kc, squatted, agentPod('coder-0', 'coder'));
  assert.ok(admitted.admitted, `the same pod is admitted: ${admitted.admitted ? '' : admitted.message}`);
  const bundle = admitted.pod.spec.volumes?.find((v) => v.name === 'agent-identity')?.projected?.sources?.find((s) => s.configMap?.name === 'trust-bundle-default');
  assert.ok(bundle, 'it projects the operator\'s bundle');
});

test('suspending the identity deny-lists its live pod certificates; the ledger finalizer keeps their requests after a delete', async () => {
  assert.ok(first && latest && kubelet, 'needs the first two tests');
  await kubelet.stop();
  kubelet = undefined;
  const serials = [first, latest].map((o) => serialNumberOf(parseCertificates(o.certificateChain)[0]!)).sort();
  await a.patchIdentity(ns, 'planner', { spec: { suspended: true } });

  const listed = async (namespace: string) => {
    const json = (await bundleIn(namespace))['denylist.json'];
    return json ? (JSON.parse(json) as DenyList).entries.map((e) => e.serialNumber) : [];
  };
  for (const where of [OPERATOR_NAMESPACE, ns]) {
    const entries = await eventually(async () => { const e = await listed(where); return serials.every((s) => e.includes(s)) && e; }, { what: `both serials deny-listed in ${where}` });
    assert.deepEqual(entries.filter((s) => serials.includes(s)).sort(), serials);
  }

  // A Secret agent of the trust domain now refuses the pod-certificate agent, whose SVID is still unexpired.
  const refusedAs = await eventually(async () => {
    await mount!.synced();
    await orchestrator!.reload();
    return serials.every((x) => orchestrator!.policy.denyList?.some((e) => e.serialNumber === x)) && refusal(orchestrator!, planner!);
  }, { what: 'the Secret agent\'s policy.json deny-lists the pod certificates' });
  assert.equal(refusedAs, 'DenyListed');

  // The API's cleaner (or anyone) deleting a request does not drop it from the ledger while its certificate is valid.
  const custom = env.kc.makeApiClient(CustomObjectsApi);
  const name = latest.request.metadata.name!;
  await custom.deleteNamespacedCustomObject({ ...PCR, namespace: ns, name });
  const kept = await custom.getNamespacedCustomObject({ ...PCR, namespace: ns, name }) as PodCertificateRequest;
  assert.ok(kept.metadata.deletionTimestamp, 'being deleted');
  assert.ok(kept.metadata.finalizers?.includes(FINALIZER_POD_CERTIFICATE), 'held by the ledger finalizer');
  await op.idle();
  const still = await custom.getNamespacedCustomObject({ ...PCR, namespace: ns, name }) as PodCertificateRequest;
  assert.deepEqual(still.metadata.finalizers, kept.metadata.finalizers, 'the operator keeps it until notAfter');
  assert.equal(still.status?.certificateChain, latest.certificateChain);
});
