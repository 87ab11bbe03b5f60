// Federation, serve and fetch (issue 21, items 1 and 2), against a real API
// server: TrustDomain cluster-a.test serves its bundle on the operator's bundle
// endpoint (https_spiffe, and https_web beside it), fetched as a partner would;
// a ClusterFederatedTrustDomain for a local trust domain is refused (fetching
// across two control planes: federation-two-clusters.test.ts). Then a fake HTTPS server stands for a hostile or broken
// partner: garbage, 50 MB, a slow drip, a lower sequence, the wrong SPIFFE ID and
// a certificate from another CA each leave the last good bundle in place, and
// each is reported as a condition, an event and a metric.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, get, type Server } from 'node:https';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { TestEnv } from '../support/env.ts';
import { setUp, tearDown } from '../support/suite.ts';
import { eventually, runOperator, OPERATOR_NAMESPACE } from '../support/operator.ts';
import { api } from '../support/objects.ts';
import { ANNOTATION_ROTATE_REQUESTED_AT, CLUSTER_FEDERATED_TRUST_DOMAIN, GROUP, VERSION } from '../../src/api/group.ts';
import type { ClusterFederatedTrustDomain, ClusterFederatedTrustDomainSpec, ConfigMap } from '../../src/api/types.ts';
import type { Operator } from '../../src/operator.ts';
import { createRoot, loadCA, type CA } from '../../src/pki/ca.ts';
import { generateKeyPair, privateKeyToPem } from '../../src/pki/keys.ts';
import { issueLeaf, issueServingLeaf } from '../../src/pki/leaf.ts';
import { fingerprintOf, parseCertificates } from '../../src/pki/parse.ts';
import { SpiffeID } from '../../src/pki/spiffeid.ts';
import { startBundleEndpoint, type BundleEndpoint } from '../../src/federation/endpoint.ts';
import { encodeBundleDocument, parseBundleDocument } from '../../src/federation/document.ts';
import { fetchBundleDocument } from '../../src/federation/fetch.ts';
import { createLogger } from '../../src/log.ts';

let env: TestEnv;
let op: Operator;
let a: ReturnType<typeof api>;
let endpoint: BundleEndpoint;
const OPERATOR = { federationRefreshMinMs: 1000, federationRefreshMaxMs: 3000, propagationDelayMs: 1500, reissueWindowMs: 1000, rotationGraceMs: 1500, rotationPollMs: 300 };
const ENDPOINT_ID = 'spiffe://cluster-a.test/agent-identity-operator/bundle-endpoint';

before(async () => {
  ({ env, op, a } = await setUp({ trustDomain: null, operator: OPERATOR }));
  endpoint = await startBundleEndpoint({ kubeConfig: env.kc, namespace: OPERATOR_NAMESPACE, host: '127.0.0.1', port: 0, pollMs: 200, logger: createLogger('silent', 'json') });
});
after(async () => {
  await endpoint?.close();
  await tearDown({ env, op });
});

const custom = () => env.kc.makeApiClient(CustomObjectsApi);
const cftd = { group: GROUP, version: VERSION, plural: CLUSTER_FEDERATED_TRUST_DOMAIN.plural };
const createFederated = (name: string, spec: ClusterFederatedTrustDomainSpec) =>
  custom().createClusterCustomObject({ ...cftd, body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'ClusterFederatedTrustDomain', metadata: { name }, spec } });
const getFederated = (name: string) => custom().getClusterCustomObject({ ...cftd, name }) as Promise<ClusterFederatedTrustDomain>;
const configMap = (name: string) => a.core.readNamespacedConfigMap({ namespace: OPERATOR_NAMESPACE, name }) as Promise<ConfigMap>;
const condition = (o: ClusterFederatedTrustDomain, type: string) => o.status?.conditions?.find((c) => c.type === type);
const events = async (name: string) =>
  (await a.core.listNamespacedEvent({ namespace: 'default', fieldSelector: `involvedObject.kind=ClusterFederatedTrustDomain,involvedObject.name=${name}` })).items;
const refreshes = async (trustDomain: string, result: string) =>
  (await op.metrics.federationRefreshes.get()).values.find((v) => v.labels.trust_domain === trustDomain && v.labels.result === result)?.value ?? 0;
const servedURL = (td: string) => `https://127.0.0.1:${endpoint.port}/bundles/${td}`;
const fingerprints = async (pem: string) => Promise.all(parseCertificates(pem).map((c) => fingerprintOf(c)));

test('a TrustDomain serves its bundle over https_spiffe with a sequence that survives a restart and rises with a rotation; a partner bundle for a local trust domain is refused', async (t) => {
  await a.createTrustDomain('a', { trustDomain: 'cluster-a.test', ca: { selfSigned: {} }, federation: { bundleEndpoint: { profile: { type: 'https_spiffe' }, refreshHint: '10s' } } });
  await a.createTrustDomain('b', { trustDomain: 'cluster-b.test', ca: { selfSigned: {} }, federatesWith: ['cluster-a.test'] });
  await eventually(async () => endpoint.served().includes('cluster-a.test'), { what: 'the endpoint to serve cluster-a.test', timeoutMs: 30_000 });

  // What a partner does on first contact: take the bundle out of band (here the local bundle ConfigMap) and fetch.
  const initialPem = (await configMap('trust-bundle-a')).data!['ca.crt']!;
  const roots = parseCertificates(initialPem);
  const served = parseBundleDocument(await fetchBundleDocument({ url: servedURL('cluster-a.test'), profile: { type: 'https_spiffe', endpointSPIFFEID: ENDPOINT_ID }, roots, timeoutMs: 5000 }));
  assert.deepEqual(await Promise.all(served.roots.map((r) => fingerprintOf(r))), await fingerprints(initialPem));
  assert.equal(served.refreshHintSeconds, 10);
  const firstSequence = served.sequence!;
  assert.ok(firstSequence > 0);
  // Another SPIFFE ID is refused by the same client: the endpoint is authenticated by its SVID alone.
  await assert.rejects(fetchBundleDocument({ url: servedURL('cluster-a.test'), profile: { type: 'https_spiffe', endpointSPIFFEID: 'spiffe://cluster-a.test/other' }, roots, timeoutMs: 5000 }), { reason: 'WrongSPIFFEID' });
  const notFound = await fetchBundleDocument({ url: servedURL('nobody.test'), profile: { type: 'https_spiffe', endpointSPIFFEID: ENDPOINT_ID }, roots, timeoutMs: 5000 }).catch((e) => e);
  assert.equal(notFound.reason, 'HTTPError');

  // This cluster's own trust domain is never taken from a partner: a ClusterFederatedTrustDomain naming it is refused, not fetched.
  await createFederated('cluster-a', {
    trustDomain: 'cluster-a.test', bundleEndpointURL: servedURL('cluster-a.test'),
    bundleEndpointProfile: { type: 'https_spiffe', endpointSPIFFEID: ENDPOINT_ID }, trustDomainBundle: initialPem,
  });
  await eventually(async () => condition(await getFederated('cluster-a'), 'Ready')?.reason === 'LocalTrustDomain', { what: 'Ready False LocalTrustDomain' });
  const local = await getFederated('cluster-a');
  assert.equal(condition(local, 'Ready')?.status, 'False');
  assert.equal(local.status?.lastAttempt, undefined, 'never fetched');
  await eventually(async () => (await events('cluster-a')).some((e) => e.reason === 'LocalTrustDomain' && e.type === 'Warning'), { what: 'a LocalTrustDomain event' });
  assert.ok(await refreshes('cluster-a.test', 'LocalTrustDomain') >= 1);
  await assert.rejects(configMap('federated-bundle-cluster-a'), 'no bundle stored for it');

  // The sequence is the persisted one: a restarted operator publishes the same document.
  const before = await configMap('spiffe-bundle-a');
  await op.stop();
  op = await runOperator(env.kc, OPERATOR);
  // The restarted leader has looked at TrustDomain a (the work queue counts each reconcile), and wrote nothing.
  await eventually(async () => ((await op.metrics.reconciles.get()).values.filter((v) => v.labels.controller === 'bundleendpoint').reduce((n, v) => n + v.value, 0)) >= 2, { what: 'the restarted publisher to reconcile' });
  const afterRestart = await configMap('spiffe-bundle-a');
  assert.equal(afterRestart.metadata.resourceVersion, before.metadata.resourceVersion, 'the document was not rewritten');
  assert.equal(parseBundleDocument(afterRestart.data!['bundle.spiffe.json']!).sequence, firstSequence, 'same Roots after a restart: same sequence');

  // Root rotation on cluster-a: the endpoint serves the incoming Root beside the old one, with a higher sequence.
  // We fetch as a partner holding only the old Root would: the new Root signs (and the endpoint's SVID moves
  // to it) only after the propagation delay plus the 10 s hint, so the endpoint still verifies until then.
  await custom().patchClusterCustomObject({ group: GROUP, version: VERSION, plural: 'trustdomains', name: 'a', body: { metadata: { annotations: { [ANNOTATION_ROTATE_REQUESTED_AT]: new Date().toISOString() } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  const status = await eventually(async () => {
    const doc = parseBundleDocument(await fetchBundleDocument({ url: servedURL('cluster-a.test'), profile: { type: 'https_spiffe', endpointSPIFFEID: ENDPOINT_ID }, roots, timeoutMs: 5000 }));
    return doc.roots.length === 2 && doc;
  }, { what: 'both Roots served during the rotation', timeoutMs: 60_000 });
  assert.ok(status.sequence! > firstSequence, `sequence ${status.sequence} > ${firstSequence}`);
  const td = await a.getTrustDomain('a');
  assert.deepEqual(new Set(await Promise.all(status.roots.map((r) => fingerprintOf(r)))), new Set(td.status!.roots!.map((r) => r.fingerprint)));
  t.diagnostic(`sequence ${firstSequence} -> ${status.sequence}`);
});

/** GET over TLS with our own trust settings; resolves to the status, body and the certificate's SANs. */
function fetchWith(url: string, o: { ca: string; servername?: string }): Promise<{ status: number; body: string; san: string }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { ca: o.ca, agent: false, ...(o.servername ? { servername: o.servername } : {}) }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body, san: (res.socket as import('node:tls').TLSSocket).getPeerCertificate().subjectaltname ?? '' }));
    });
    req.on('error', reject);
  });
}

test('an https_web TrustDomain serves the certificate the admin brings, chosen by SNI beside an https_spiffe one', async () => {
  const web = await createRoot({ trustDomain: 'web.test', algorithm: 'ECDSA', validityMs: 86_400_000, now: new Date() });
  const webCA = await loadCA(web.certificatePem, web.privateKeyPem);
  const key = await generateKeyPair('ECDSA', 256);
  const serving = await issueServingLeaf(webCA, { commonName: 'bundle.web.test', dnsNames: ['bundle.web.test'], ipAddresses: [], publicKey: key.publicKey, durationMs: 3_600_000, now: new Date() });
  const b64 = (x: string) => Buffer.from(x).toString('base64');
  await a.createTrustDomain('web', { trustDomain: 'web.test', ca: { selfSigned: {} }, federation: { bundleEndpoint: { profile: { type: 'https_web', secretName: 'bundle-web-tls' }, dnsNames: ['bundle.web.test'] } } });
  await eventually(async () => endpoint.served().includes('web.test'), { what: 'the endpoint to serve web.test', timeoutMs: 30_000 });
  // Until the admin's Secret exists, a handshake asking for its name gets the default (first) certificate, which does not verify.
  await assert.rejects(fetchWith(servedURL('web.test'), { ca: web.certificatePem, servername: 'bundle.web.test' }));
  // The missing Secret is reported: a Warning event on the TrustDomain and a reconcile error metric.
  await eventually(async () => (await a.trustDomainEvents('web')).some((e) => e.reason === 'BundleEndpointSecretMissing' && /bundle-web-tls/.test(e.message ?? '')), { what: 'a BundleEndpointSecretMissing event' });
  assert.ok(((await op.metrics.reconcileErrors.get()).values.find((v) => v.labels.controller === 'bundleendpoint' && v.labels.reason === 'BundleEndpointSecretMissing')?.value ?? 0) >= 1);
  await a.core.createNamespacedSecret({ namespace: OPERATOR_NAMESPACE, body: { metadata: { name: 'bundle-web-tls' }, type: 'kubernetes.io/tls', data: { 'tls.crt': b64(serving.certificatePem), 'tls.key': b64(await privateKeyToPem(key)) } } });
  const got = await eventually(async () => fetchWith(servedURL('web.test'), { ca: web.certificatePem, servername: 'bundle.web.test' }).catch(() => undefined), { what: 'the admin\'s certificate served for bundle.web.test' });
  assert.equal(got.status, 200);
  assert.match(got.san, /DNS:bundle\.web\.test/);
  const doc = parseBundleDocument(got.body);
  assert.deepEqual(await Promise.all(doc.roots.map((r) => fingerprintOf(r))), (await a.getTrustDomain('web')).status!.roots!.map((r) => r.fingerprint));
  // No SNI (an IP address): the first TrustDomain by name, a, answers with its SVID, which https_spiffe accepts.
  const aPem = (await configMap('trust-bundle-a')).data!['ca.crt']!;
  const viaSpiffe = await fetchBundleDocument({ url: servedURL('cluster-a.test'), profile: { type: 'https_spiffe', endpointSPIFFEID: ENDPOINT_ID }, roots: parseCertificates(aPem), timeoutMs: 5000 });
  assert.ok(parseBundleDocument(viaSpiffe).roots.length >= 1);
});

/** A partner we control: its own CA, an endpoint SVID, and a behaviour to switch. */
async function fakePartner() {
  const td = 'partner.example';
  const material = await createRoot({ trustDomain: td, algorithm: 'ECDSA', validityMs: 86_400_000, now: new Date() });
  const ca: CA = await loadCA(material.certificatePem, material.privateKeyPem);
  const svid = async (signer: CA, path: string) => {
    const key = await generateKeyPair('ECDSA', 256);
    const leaf = await issueLeaf(signer, { spiffeID: SpiffeID.fromParts(td, path), dnsNames: [], publicKey: key.publicKey, durationMs: 3_600_000, now: new Date() });
    return { cert: leaf.certificatePem, key: await privateKeyToPem(key) };
  };
  const other = await createRoot({ trustDomain: td, algorithm: 'ECDSA', validityMs: 86_400_000, now: new Date() });
  const tls = {
    right: await svid(ca, '/spire/server'),
    wrongID: await svid(ca, '/not/the/server'),
    otherCA: await svid(await loadCA(other.certificatePem, other.privateKeyPem), '/spire/server'),
  };
  let mode: 'good' | 'garbage' | 'huge' | 'slow' | 'lower' = 'good';
  let sequence = 10;
  const roots = parseCertificates(material.certificatePem);
  const server: Server = createServer({ ...tls.right }, (_req, res) => {
    if (mode === 'garbage') return void res.writeHead(200).end('<html>definitely not a bundle</html>');
    if (mode === 'huge') {
      // 50 MB, chunked (no content-length), so only the streaming cap can stop it.
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(1 << 20, 0x20);
      let sent = 0;
      const pump = () => { while (sent < 50 && res.write(chunk)) sent++; if (sent < 50) res.once('drain', () => { sent++; pump(); }); else res.end(); };
      res.on('close', () => { sent = 50; });
      return void pump();
    }
    if (mode === 'slow') {
      res.writeHead(200, { 'content-type': 'application/json' });
      const drip = setInterval(() => res.write(' '), 500);
      res.on('close', () => clearInterval(drip));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(encodeBundleDocument({ roots, sequence: mode === 'lower' ? sequence - 1 : sequence, refreshHintSeconds: 1 }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    td, pem: material.certificatePem,
    url: `https://127.0.0.1:${(server.address() as { port: number }).port}/bundle`,
    set(m: typeof mode, identity: keyof typeof tls = 'right') { mode = m; server.setSecureContext({ ...tls[identity] }); },
    get sequence() { return sequence; },
    set sequence(n: number) { sequence = n; },
    close: () => { server.closeAllConnections(); return new Promise<void>((r) => server.close(() => r())); },
  };
}

test('a hostile or broken partner endpoint leaves the last good bundle in place, reported as a condition, an event and a metric', async (t) => {
  const partner = await fakePartner();
  t.after(() => partner.close());
  await createFederated('partner', {
    trustDomain: partner.td, bundleEndpointURL: partner.url,
    bundleEndpointProfile: { type: 'https_spiffe', endpointSPIFFEID: 'spiffe://partner.example/spire/server' }, trustDomainBundle: partner.pem,
  });
  await eventually(async () => (await getFederated('partner')).status?.sequence === 10, { what: 'the good bundle accepted', timeoutMs: 30_000 });
  const good = (await configMap('federated-bundle-partner')).data!['bundle.spiffe.json'];
  const goodRoots = (await getFederated('partner')).status!.roots;

  const cases = [
    { mode: 'garbage', reason: 'BundleUnparsable' },
    { mode: 'huge', reason: 'BundleTooLarge' },
    { mode: 'lower', reason: 'SequenceWentBackwards' },
    { mode: 'good', identity: 'wrongID', reason: 'WrongSPIFFEID' },
    { mode: 'good', identity: 'otherCA', reason: 'TLSError' },
    { mode: 'slow', reason: 'FetchTimeout' },
  ] as const;
  for (const c of cases) {
    const since = Date.now();
    const counted = await refreshes(partner.td, c.reason);
    partner.set(c.mode, 'identity' in c ? c.identity : 'right');
    await eventually(async () => {
      const o = await getFederated('partner');
      const refreshed = condition(o, 'Refreshed');
      return refreshed?.status === 'False' && refreshed.reason === c.reason && new Date(o.status!.lastAttempt!).getTime() >= since - 1000;
    }, { what: `Refreshed False ${c.reason}`, timeoutMs: 40_000 });
    const o = await getFederated('partner');
    assert.equal(condition(o, 'Ready')?.status, 'True', `${c.reason}: a bundle is still held`);
    assert.equal(o.status!.sequence, 10, `${c.reason}: the sequence held is the good one`);
    assert.deepEqual(o.status!.roots, goodRoots);
    assert.equal((await configMap('federated-bundle-partner')).data!['bundle.spiffe.json'], good, `${c.reason}: the stored bundle is the last good one`);
    assert.ok(await refreshes(partner.td, c.reason) > counted, `${c.reason}: counted in agentidentity_federation_refreshes_total`);
    await eventually(async () => (await events('partner')).some((e) => e.reason === c.reason && e.type === 'Warning'), { what: `a Warning event ${c.reason}` });
    t.diagnostic(`${c.reason}: ${condition(o, 'Refreshed')!.message}`);
  }

  // Healthy again with a higher sequence: accepted.
  partner.sequence = 11;
  partner.set('good');
  await eventually(async () => (await getFederated('partner')).status?.sequence === 11, { what: 'the next good bundle accepted', timeoutMs: 30_000 });
  assert.equal(condition(await getFederated('partner'), 'Refreshed')?.reason, 'BundleAccepted');
});

test('the API refuses an https_spiffe ClusterFederatedTrustDomain without the SPIFFE ID or initial bundle, and a TrustDomain that federates with itself', async () => {
  const base = { trustDomain: 'x.example', bundleEndpointURL: 'https://x.example/bundle' };
  await assert.rejects(createFederated('no-id', { ...base, bundleEndpointProfile: { type: 'https_spiffe' }, trustDomainBundle: 'x' }), /endpointSPIFFEID is required/);
  await assert.rejects(createFederated('no-bundle', { ...base, bundleEndpointProfile: { type: 'https_spiffe', endpointSPIFFEID: 'spiffe://x.example/s' } }), /give the first one in\s+trustDomainBundle|trustDomainBundle/);
  await assert.rejects(createFederated('http', { ...base, bundleEndpointURL: 'http://x.example/bundle', bundleEndpointProfile: { type: 'https_web' } }), /https:\/\/ URL/);
  await assert.rejects(a.createTrustDomain('self', { trustDomain: 'self.test', ca: { selfSigned: {} }, federatesWith: ['self.test'] }), /always trusts its own roots/);
  await assert.rejects(a.createTrustDomain('web', { trustDomain: 'web.test', ca: { selfSigned: {} }, federation: { bundleEndpoint: { profile: { type: 'https_web' } } } }), /secretName is required for https_web/);
});
