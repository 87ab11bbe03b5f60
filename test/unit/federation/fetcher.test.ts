// The fetcher's reconcile over in-memory fakes: what it writes, and that a
// second pass before the next refresh writes nothing and fetches nothing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import type { ClusterFederatedTrustDomain, ClusterFederatedTrustDomainStatus, ConfigMap, TrustDomain } from '../../../src/api/types.ts';
import { Metrics } from '../../../src/controller/metrics.ts';
import { createRoot } from '../../../src/pki/ca.ts';
import { parseCertificates } from '../../../src/pki/parse.ts';
import { encodeBundleDocument } from '../../../src/federation/document.ts';
import { bundleFetcher } from '../../../src/federation/fetcher.ts';
import type { FetchRequest } from '../../../src/federation/fetch.ts';

const NS = 'ops';

async function setup(opts: { initial?: string; locals?: TrustDomain[] } = {}) {
  const root = await createRoot({ trustDomain: 'partner.example', algorithm: 'ECDSA', validityMs: 86_400_000, now: new Date() });
  const roots = parseCertificates(root.certificatePem);
  const o: ClusterFederatedTrustDomain = {
    apiVersion: 'agentidentity.dev/v1alpha1', kind: 'ClusterFederatedTrustDomain',
    metadata: { name: 'partner', uid: 'u1', generation: 1 },
    spec: { trustDomain: 'partner.example', bundleEndpointURL: 'https://partner.example/bundle', bundleEndpointProfile: { type: 'https_spiffe', endpointSPIFFEID: 'spiffe://partner.example/spire/server' }, trustDomainBundle: opts.initial ?? root.certificatePem },
  };
  const configMaps = new Map<string, ConfigMap>();
  const writes: string[] = [];
  const fetches: FetchRequest[] = [];
  let clock = new Date('2030-01-01T00:00:00Z');
  const events: string[] = [];
  const metrics = new Metrics();
  let deleted = false;
  const f = bundleFetcher({
    api: {
      createConfigMap: async (cm) => { writes.push(`create ${cm.metadata.name}`); configMaps.set(cm.metadata.name!, { ...cm, metadata: { ...cm.metadata, resourceVersion: '1' } }); return cm; },
      replaceConfigMap: async (cm) => { writes.push(`replace ${cm.metadata.name}`); configMaps.set(cm.metadata.name!, cm); return cm; },
      patchFederatedTrustDomainStatus: async (_n, status: ClusterFederatedTrustDomainStatus) => {
        writes.push('status');
        o.status = JSON.parse(JSON.stringify({ ...o.status, ...status }, (_k, v) => (v === null ? undefined : v)));
        return o;
      },
    },
    federatedTrustDomains: { get: () => (deleted ? undefined : o) },
    trustDomains: { list: () => opts.locals ?? [] },
    configMaps: { get: (name, ns) => (ns === NS ? configMaps.get(name) : undefined) },
    operatorNamespace: NS, bounds: { minMs: 1000, maxMs: 60_000 },
    fetch: async (r) => { fetches.push(r); return Buffer.from(encodeBundleDocument({ roots, sequence: 5, refreshHintSeconds: 30 })); },
    events: { record: (_t, _type, reason) => events.push(reason) },
    metrics, log: pino({ level: 'silent' }), now: () => clock,
  });
  return { o, f, writes, fetches, events, configMaps, metrics, remove: () => { deleted = true; }, advance: (ms: number) => { clock = new Date(clock.getTime() + ms); } };
}

describe('bundleFetcher', () => {
  it('fetches with the initial bundle, stores the accepted one, and does nothing more until the refresh hint', async () => {
    const s = await setup();
    assert.deepEqual(await s.f.reconcile('partner'), { requeueAfter: 30_000 });
    assert.equal(s.fetches.length, 1);
    assert.equal(s.fetches[0]!.roots.length, 1, 'the endpoint is authenticated with the initial bundle');
    assert.deepEqual(s.writes, ['create federated-bundle-partner', 'status']);
    assert.equal(s.o.status!.sequence, 5);
    assert.deepEqual(s.events, [], 'the Roots fetched are the initial ones: no BundleUpdated');
    s.writes.length = 0;
    s.advance(10_000);
    assert.deepEqual(await s.f.reconcile('partner'), { requeueAfter: 20_000 });
    assert.deepEqual(s.writes, [], 'a second pass writes nothing');
    assert.equal(s.fetches.length, 1, 'and fetches nothing');
    s.advance(20_000);
    await s.f.reconcile('partner');
    assert.equal(s.fetches.length, 2, 'due again at the hint');
    assert.deepEqual(s.writes, ['status'], 'the same document: only the times move');
    const gauge = async () => (await s.metrics.federationLastRefresh.get()).values.length;
    assert.equal(await gauge(), 1);
    s.remove();
    await s.f.reconcile('partner');
    assert.equal(await gauge(), 0, 'the gauge goes with the object');
  });

  it('fetches again at once when the stored bundle is gone', async () => {
    const s = await setup();
    await s.f.reconcile('partner');
    s.configMaps.clear();
    await s.f.reconcile('partner');
    assert.equal(s.fetches.length, 2);
    assert.ok(s.configMaps.has('federated-bundle-partner'));
  });

  it('an unusable initial bundle for https_spiffe: nothing to authenticate with, nothing fetched', async () => {
    const s = await setup({ initial: 'not a bundle' });
    assert.deepEqual(await s.f.reconcile('partner'), { requeueAfter: 1000 });
    assert.equal(s.fetches.length, 0);
    const ready = s.o.status!.conditions!.find((c) => c.type === 'Ready')!;
    assert.equal(ready.reason, 'InitialBundleInvalid');
    assert.equal(s.o.status!.conditions!.find((c) => c.type === 'Refreshed')!.reason, 'NoBundleToAuthenticate');
    assert.deepEqual(s.events, ['NoBundleToAuthenticate']);
  });

  it('never fetches a bundle for a local trust domain', async () => {
    const local = { apiVersion: 'agentidentity.dev/v1alpha1', kind: 'TrustDomain', metadata: { name: 'default' }, spec: { trustDomain: 'partner.example', ca: { selfSigned: {} } } } as TrustDomain;
    const s = await setup({ locals: [local] });
    assert.deepEqual(await s.f.reconcile('partner'), {});
    assert.equal(s.fetches.length, 0);
    assert.equal(s.o.status!.conditions!.find((c) => c.type === 'Ready')!.reason, 'LocalTrustDomain');
    s.writes.length = 0;
    await s.f.reconcile('partner');
    assert.deepEqual(s.writes, [], 'reported once');
    assert.deepEqual(s.events, ['LocalTrustDomain']);
  });
});
