// What one event costs the identity controller, counted on fakes at N=100 and
// N=10,000 identities: the keys it queues and every cache read it makes must
// be the same at both sizes (issue 20: per-identity work that does not grow
// with N). Counts, not timings, so a slow machine cannot fail it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { DEFAULT_SPIFFE_ID_TEMPLATE } from '../../../src/api/defaults.ts';
import type { AgentIdentity, AgentIdentitySpec, ConfigMap, Namespace, Secret, TrustDomain } from '../../../src/api/types.ts';
import { Metrics } from '../../../src/controller/metrics.ts';
import { candidatePeers, policyDependencies } from '../../../src/identity/dependencies.ts';
import { PolicyHolders } from '../../../src/identity/policy-holders.ts';
import { identityReconciler } from '../../../src/identity/reconciler.ts';
import { identitiesOfServiceAccount, identityIndexes, secretKeyOf } from '../../../src/identity/watches.ts';
import { createIntermediate, createRoot, loadCA } from '../../../src/pki/ca.ts';
import { fingerprintOf } from '../../../src/pki/parse.ts';
import { certificatesToPem } from '../../../src/pki/pem.ts';
import { ledgerOf } from '../../../src/signer/ledger.ts';
import { TrustStore } from '../../../src/trust/store.ts';
import { Emitter } from '../../support/emitter.ts';

const SIZES = [100, 10_000] as const;
const NAMESPACES = 10;
const NOW = new Date('2030-06-01T12:00:00.000Z');


const nsOf = (i: number) => `ns-${i % NAMESPACES}`;
const namespace = (name: string, labels: Record<string, string> = {}): Namespace => ({ metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } } });

function identity(name: string, ns: string, spec: Partial<AgentIdentitySpec> = {}, labels: Record<string, string> = {}): AgentIdentity {
  return {
    apiVersion: 'agentidentity.dev/v1alpha1', kind: 'AgentIdentity',
    metadata: { name, namespace: ns, uid: `uid-${ns}-${name}`, generation: 1, resourceVersion: '1', creationTimestamp: '2030-06-01T00:00:00Z', labels },
    spec: { serviceAccountName: name, ...spec },
  };
}

/**
 * N identities over 10 namespaces, each holding a 2-peer policy (agent i names
 * agents i+10 and i+20, in its namespace), plus a fixed handful of holders of
 * every other rule shape: selectors in their own namespace, namespaceSelector
 * rules, and proxied identities (the host map).
 */
function population(n: number): AgentIdentity[] {
  const out: AgentIdentity[] = [];
  for (let i = 0; i < n; i++) {
    out.push(identity(`agent-${i}`, nsOf(i), { policy: { allow: [{ agent: { name: `agent-${i + 10}` } }, { agent: { name: `agent-${i + 20}` } }] } }));
  }
  for (let k = 0; k < 3; k++) out.push(identity(`selector-${k}`, 'ns-0', { policy: { allow: [{ selector: { matchLabels: { role: 'auditor' } } }] } }));
  for (let k = 0; k < 2; k++) out.push(identity(`cross-${k}`, 'ns-1', { policy: { allow: [{ selector: { matchLabels: { role: 'auditor' } }, namespaceSelector: { matchLabels: { team: 'x' } } }] } }));
  for (let k = 0; k < 2; k++) out.push(identity(`proxied-${k}`, 'ns-2', { proxy: { port: 8443, appPort: 8080 } }));
  return out;
}

/** Every read a fake cache answers, and how many objects those reads handed out. */
class Reads {
  calls: Record<string, number> = {};
  objects = 0;
  count<T>(what: string, result: T): T {
    this.calls[what] = (this.calls[what] ?? 0) + 1;
    if (Array.isArray(result)) this.objects += result.length;
    else if (result !== undefined) this.objects += 1;
    return result;
  }
}

/** A cache over a list, as the informer serves it (by namespace and name), counting every read. */
function identityCache(all: AgentIdentity[], reads: Reads) {
  const byNs = new Map<string, Map<string, AgentIdentity>>();
  for (const i of all) {
    if (!byNs.has(i.metadata.namespace!)) byNs.set(i.metadata.namespace!, new Map());
    byNs.get(i.metadata.namespace!)!.set(i.metadata.name!, i);
  }
  return {
    get: (name: string, ns?: string) => reads.count('identities.get', byNs.get(ns ?? '')?.get(name)),
    list: (ns?: string) => reads.count(ns ? 'identities.list(namespace)' : 'identities.list()', ns ? [...byNs.get(ns)?.values() ?? []] : all),
  };
}

const namespaceList = () => Array.from({ length: NAMESPACES }, (_, k) => namespace(`ns-${k}`, k === 3 ? { team: 'x' } : {}));

describe('per-event cost, N=100 vs N=10,000', () => {
  it('an identity or namespace event queues only the policy holders it concerns, the same keys at both sizes', () => {
    const costAt = (n: number) => {
      const identities = new Emitter<AgentIdentity>();
      const namespaces = new Emitter<Namespace>();
      const known = new Map(namespaceList().map((ns) => [ns.metadata.name!, ns]));
      const reads = new Reads();
      const holders = new PolicyHolders(identities, { subscribe: (l) => namespaces.subscribe(l), get: (name) => reads.count('namespaces.get', known.get(name)) });
      for (const i of population(n)) identities.emit({ type: 'change', obj: i });
      const queued: string[] = [];
      holders.subscribe((e) => queued.push(e.obj));
      const measure = (event: () => void) => {
        queued.length = 0;
        reads.calls = {};
        event();
        return { queued: [...queued].sort(), reads: { ...reads.calls } };
      };
      const newcomer = identity(`agent-${n}`, nsOf(n));
      const peer = population(n)[50]!;
      const relabelled = { ...peer, metadata: { ...peer.metadata, labels: { role: 'auditor' } } };
      return {
        // Named by agents n-10 and n-20, and listed by the 2 proxied identities' host maps.
        create: measure(() => identities.emit({ type: 'change', obj: newcomer })),
        // ns-0's selector holders now match it too; its dnsNames did not move, so no host map.
        relabel: measure(() => identities.emit({ type: 'change', obj: relabelled })),
        issued: measure(() => identities.emit({ type: 'change', obj: { ...newcomer, status: { spiffeID: `spiffe://cluster.local/ns/${nsOf(n)}/agent/agent-${n}` } } })),
        delete: measure(() => identities.emit({ type: 'delete', obj: newcomer })),
        // The namespaceSelector {team: x} now picks ns-4.
        namespace: measure(() => namespaces.emit({ type: 'change', obj: namespace('ns-4', { team: 'x' }), old: namespace('ns-4') })),
        // The periodic resync re-delivers what the cache holds: nothing moved.
        resync: measure(() => identities.emit({ type: 'resync', obj: relabelled })),
      };
    };
    const small = costAt(SIZES[0]);
    const large = costAt(SIZES[1]);
    assert.deepEqual(small.create.queued, ['ns-0/agent-80', 'ns-0/agent-90', 'ns-2/proxied-0', 'ns-2/proxied-1']);
    assert.deepEqual(small.relabel.queued, ['ns-0/agent-30', 'ns-0/agent-40', 'ns-0/selector-0', 'ns-0/selector-1', 'ns-0/selector-2']);
    assert.deepEqual(small.namespace.queued, ['ns-1/cross-0', 'ns-1/cross-1']);
    assert.deepEqual(small.resync.queued, []);
    for (const event of Object.keys(small) as Array<keyof typeof small>) {
      assert.equal(large[event].queued.length, small[event].queued.length, `${event}: keys queued at N=10,000 vs N=100`);
      assert.deepEqual(large[event].reads, small[event].reads, `${event}: cache reads at N=10,000 vs N=100`);
    }
  });

  it('a holder reads only the peers its rules can name: two agent rules are two look-ups at any N', () => {
    const costAt = (n: number) => {
      const all = population(n);
      const reads = new Reads();
      const caches = { identities: identityCache(all, reads), namespaces: { list: () => reads.count('namespaces.list', namespaceList()) } };
      const peers = candidatePeers(policyDependencies(all[0]!)!, 'ns-0', caches);
      return { peers: peers.map((p) => p.metadata.name).sort(), calls: reads.calls, objects: reads.objects };
    };
    const small = costAt(SIZES[0]);
    assert.deepEqual(small.peers, ['agent-10', 'agent-20']);
    assert.deepEqual(small.calls, { 'identities.get': 2 });
    assert.deepEqual(costAt(SIZES[1]), small);
  });

  it('a ServiceAccount event maps through the index to the identities that name it, at any N', () => {
    const costAt = (n: number) => {
      const identities = new Emitter<AgentIdentity>();
      const indexes = identityIndexes(identities);
      for (const i of population(n)) identities.emit({ type: 'change', obj: i });
      return [...identitiesOfServiceAccount(indexes)({ metadata: { name: 'agent-7', namespace: 'ns-7' } })];
    };
    assert.deepEqual(costAt(SIZES[0]), ['ns-7/agent-7']);
    assert.deepEqual(costAt(SIZES[1]), ['ns-7/agent-7']);
  });

  it('reconciling a holder to its first certificate reads the same cache objects at N=100 and N=10,000', async () => {
    const opts = { trustDomain: 'cluster.local', algorithm: 'ECDSA' as const, now: NOW };
    const rootPem = await createRoot({ ...opts, validityMs: 365 * 86_400_000 });
    const root = await loadCA(rootPem.certificatePem, rootPem.privateKeyPem);
    const intPem = await createIntermediate(root, { ...opts, validityMs: 90 * 86_400_000 });
    const signer = await loadCA(intPem.certificatePem, intPem.privateKeyPem);
    const store = new TrustStore();
    store.set({
      name: 'default', trustDomain: 'cluster.local', spiffeIDTemplate: DEFAULT_SPIFFE_ID_TEMPLATE, signer, bundle: [root.certificate],
      bundlePem: certificatesToPem([root.certificate]), caFingerprint: await fingerprintOf(signer.certificate),
      activeRootFingerprint: await fingerprintOf(root.certificate), retiringRootFingerprints: new Set(),
    });
    const trustDomain: TrustDomain = { apiVersion: 'agentidentity.dev/v1alpha1', kind: 'TrustDomain', metadata: { name: 'default' }, spec: { trustDomain: 'cluster.local', ca: { selfSigned: {} } } };

    const costAt = async (n: number) => {
      const all = population(n);
      const reads = new Reads();
      const writes: string[] = [];
      const secrets = new Map<string, Secret>();
      const configMaps = new Map<string, ConfigMap>();
      const bySecret = new Map<string, AgentIdentity[]>();
      for (const i of all) bySecret.set(secretKeyOf(i), [...bySecret.get(secretKeyOf(i)) ?? [], i]);
      const put = <T extends Secret | ConfigMap>(map: Map<string, T>, kind: string) => async (o: T) => {
        writes.push(`create ${kind}`);
        map.set(`${o.metadata.namespace}/${o.metadata.name}`, o);
        return o;
      };
      const fail = async (): Promise<never> => { throw new Error('not expected'); };
      const r = identityReconciler({
        api: {
          getSecret: fail, createSecret: put(secrets, 'Secret'), replaceSecret: fail, deleteSecret: fail,
          getConfigMap: fail, createConfigMap: put(configMaps, 'ConfigMap'), replaceConfigMap: fail,
          getNetworkPolicy: fail, createNetworkPolicy: fail, replaceNetworkPolicy: fail, deleteNetworkPolicy: fail,
          patchIdentityStatus: async () => { writes.push('patch status'); },
          patchIdentityMetadata: fail,
        },
        identities: identityCache(all, reads),
        claims: { of: (key) => reads.count('claims.of', bySecret.get(key) ?? []) },
        configMaps: { get: (name, ns) => reads.count('configMaps.get', configMaps.get(`${ns}/${name}`)) },
        networkPolicies: { get: () => reads.count('networkPolicies.get', undefined) },
        namespaces: { get: (name) => reads.count('namespaces.get', namespaceList().find((x) => x.metadata.name === name)), list: () => reads.count('namespaces.list', namespaceList()) },
        serviceAccounts: { get: () => reads.count('serviceAccounts.get', {}) },
        podCertificates: ledgerOf({ list: () => reads.count('podCertificateRequests.list', []) }),
        signing: true, store, operatorNamespace: 'ops', minDurationMs: 60_000,
        trustDomains: { get: (name) => reads.count('trustDomains.get', name === 'default' ? trustDomain : undefined) },
        secrets: { get: (name, ns) => reads.count('secrets.get', secrets.get(`${ns}/${name}`)) },
        events: { record: () => undefined }, metrics: new Metrics(), log: pino({ level: 'silent' }), now: () => NOW,
      });
      const holder = all[0]!;
      // The finalizer is set by the API server at creation (the chart's admission policy).
      holder.metadata.finalizers = ['agentidentity.dev/revoke'];
      await r.reconcile(`ns-0/${holder.metadata.name}`);
      return { writes, calls: reads.calls, objects: reads.objects };
    };
    const small = await costAt(SIZES[0]);
    assert.deepEqual(small.writes, ['create Secret', 'patch status'], 'policy.json rides the Secret');
    assert.equal(small.calls['identities.list()'], undefined, 'no reconcile lists every identity');
    assert.deepEqual(await costAt(SIZES[1]), small);
  });
});
