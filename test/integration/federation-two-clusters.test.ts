// Two control planes, each with its own operator, bundle endpoint and TrustDomain
// (cluster-a.test, cluster-b.test), federated both ways through their bundle
// endpoints (https_spiffe): each fetches the other's bundle, and a root rotation
// on A reaches B's copy with a higher sequence. Delivery to agents and mTLS
// across come with the next step of issue 21.
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

interface Cluster { name: string; td: string; env: TestEnv; op: Operator; endpoint: BundleEndpoint; a: ReturnType<typeof api> }
const OPERATOR = { federationRefreshMinMs: 1000, federationRefreshMaxMs: 5000, propagationDelayMs: 3000, reissueWindowMs: 1000, rotationGraceMs: 1500, rotationPollMs: 300 };
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

test('two clusters fetch each other\'s bundle through their bundle endpoints, and a root rotation on one reaches the other', async (t) => {
  await Promise.all([federate(A, B), federate(B, A)]);
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
