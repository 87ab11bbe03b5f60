// The identity reconciler's decisions, table-tested over small in-memory
// fakes of its deps (the model: cert-manager's trigger_controller_test.go).
// The CA is real (src/pki), so issuance is real; there is no control plane.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { ANNOTATION_NOT_AFTER, ANNOTATION_ROOT_FINGERPRINT, ANNOTATION_SERIAL, BUNDLE_DENYLIST, SECRET_KEY } from '../../../src/api/group.ts';
import { DEFAULT_SPIFFE_ID_TEMPLATE } from '../../../src/api/defaults.ts';
import { secretKeyOf } from '../../../src/identity/watches.ts';
import type { AgentIdentity, AgentIdentitySpec, ConfigMap, Namespace, NetworkPolicy, PodCertificateRequest, Secret, TrustDomain } from '../../../src/api/types.ts';
import { rotationReissueTime } from '../../../src/ca/rotation.ts';
import type { Result } from '../../../src/controller/queue.ts';
import { identityReconciler, type IdentityReconcilerDeps } from '../../../src/identity/reconciler.ts';
import { unitHash } from '../../../src/identity/renewal.ts';
import { AppPortResults } from '../../../src/identity/app-port-probe.ts';
import { KubeError } from '../../../src/kube/errors.ts';
import { Metrics } from '../../../src/controller/metrics.ts';
import { type CA, createIntermediate, createRoot, loadCA } from '../../../src/pki/ca.ts';
import { fingerprintOf, parseCertificates } from '../../../src/pki/parse.ts';
import { certificatesToPem } from '../../../src/pki/pem.ts';
import { serialNumberOf } from '../../../src/pki/serial.ts';
import { verifyChain } from '../../../src/pki/verify.ts';
import { bundleConfigMapName } from '../../../src/api/defaults.ts';
import { TrustStore, type TrustDomainState } from '../../../src/trust/store.ts';
import { ledgerRequest } from '../trust/fakes.ts';
import { ledgerOf } from '../../../src/signer/ledger.ts';

const NOW = new Date('2030-06-01T12:00:00.000Z');
const DAY = 86_400_000;
const NS = 'agents';
const OPERATOR_NS = 'agent-identity-system';
const SECRET = 'planner-identity';
const KEY = `${NS}/planner`;

/** One CA generation: a Root and the Intermediate that signs leaves. */
interface Generation { root: CA; signer: CA }

async function generation(): Promise<Generation> {
  const opts = { trustDomain: 'cluster.local', algorithm: 'ECDSA' as const, now: NOW };
  const rootPem = await createRoot({ ...opts, validityMs: 365 * DAY });
  const root = await loadCA(rootPem.certificatePem, rootPem.privateKeyPem);
  const intPem = await createIntermediate(root, { ...opts, validityMs: 90 * DAY });
  return { root, signer: await loadCA(intPem.certificatePem, intPem.privateKeyPem) };
}

/** What the trust reconciler would store: `active` signs; `retiring` roots stay in the bundle while leaves move off them. */
async function trustDomainState(active: Generation, retiring?: Generation, rotation?: TrustDomainState['rotation']): Promise<TrustDomainState> {
  const bundle = [...(retiring ? [retiring.root.certificate] : []), active.root.certificate];
  return {
    name: 'default', trustDomain: 'cluster.local', spiffeIDTemplate: DEFAULT_SPIFFE_ID_TEMPLATE,
    signer: active.signer, bundle, bundlePem: certificatesToPem(bundle),
    caFingerprint: await fingerprintOf(active.signer.certificate),
    activeRootFingerprint: await fingerprintOf(active.root.certificate),
    retiringRootFingerprints: new Set(retiring ? [await fingerprintOf(retiring.root.certificate)] : []),
    rotation,
  };
}

const TRUST_DOMAIN: TrustDomain = {
  apiVersion: 'agentidentity.dev/v1alpha1', kind: 'TrustDomain', metadata: { name: 'default' },
  spec: { trustDomain: 'cluster.local', ca: { selfSigned: {} } },
};

function agentIdentity(spec: Partial<AgentIdentitySpec> = {}): AgentIdentity {
  return {
    apiVersion: 'agentidentity.dev/v1alpha1', kind: 'AgentIdentity',
    metadata: { name: 'planner', namespace: NS, uid: 'uid-planner', generation: 1, resourceVersion: '1', creationTimestamp: '2030-06-01T00:00:00Z' },
    spec: { serviceAccountName: 'planner', dnsNames: ['planner.agents.svc'], ...spec },
  };
}

const notFound = () => new KubeError(404, 'NotFound', 'not found');
const json = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

/** An in-memory cluster: the informer caches and the API are the same maps, and every write is logged. */
class FakeCluster {
  readonly identities = new Map<string, AgentIdentity>();
  readonly secrets = new Map<string, Secret>();
  readonly configMaps = new Map<string, ConfigMap>();
  readonly networkPolicies = new Map<string, NetworkPolicy>();
  /** Whether the operator may watch NetworkPolicies. */
  watchesNetworkPolicies = true;
  /** The app-port probes (app-port-probe.ts); unset: the operator may not watch pods. */
  appPorts?: AppPortResults = new AppPortResults();
  readonly serviceAccounts = new Set<string>([`${NS}/planner`]);
  /** The signer's PodCertificateRequests (its ledger). */
  readonly podCertificateRequests: PodCertificateRequest[] = [];
  readonly store = new TrustStore();
  /** One registry for the cluster's life: the failure policy keeps a key's transient-error streak per registry. */
  readonly metrics = new Metrics();
  readonly writes: string[] = [];
  readonly events: Array<{ type: string; reason: string; message: string }> = [];
  now = NOW;
  /** Whether the API server serves PodCertificateRequests to the operator. */
  signing = true;
  /** The serial the identity held before the reconcile under test. */
  serialBefore?: string;
  private version = 1;

  identity(): AgentIdentity {
    return this.identities.get(KEY)!;
  }

  secret(): Secret | undefined {
    return this.secrets.get(`${NS}/${SECRET}`);
  }

  setIdentity(i: AgentIdentity): void {
    this.identities.set(`${i.metadata.namespace}/${i.metadata.name}`, i);
  }

  /** Writes to objects of this kind, e.g. `create Secret agents/planner-identity`. */
  writesTo(kind: string): string[] {
    return this.writes.filter((w) => w.split(' ')[1] === kind);
  }

  private put<T extends Secret | ConfigMap | NetworkPolicy>(map: Map<string, T>, verb: string, obj: T): T {
    const at = `${obj.metadata.namespace}/${obj.metadata.name}`;
    if (verb === 'create' && map.has(at)) throw new KubeError(409, 'AlreadyExists', `${at} already exists`);
    if (verb === 'replace' && !map.has(at)) throw notFound();
    this.writes.push(`${verb} ${obj.kind} ${at}`);
    const stored = json({ ...obj, metadata: { ...obj.metadata, resourceVersion: String(++this.version), uid: map.get(at)?.metadata.uid ?? `uid-${obj.metadata.name}` } });
    map.set(at, stored);
    return stored;
  }

  private patchIdentity(namespace: string, name: string, change: (i: AgentIdentity) => AgentIdentity): void {
    const i = this.identities.get(`${namespace}/${name}`);
    if (!i) throw notFound();
    this.identities.set(`${namespace}/${name}`, json(change(i)));
  }

  deps(): IdentityReconcilerDeps {
    const get = <T>(map: Map<string, T>) => (name: string, namespace?: string) => map.get(`${namespace}/${name}`);
    const namespace: Namespace = { metadata: { name: NS, labels: { 'kubernetes.io/metadata.name': NS } } };
    return {
      trustDomains: { get: (name) => (name === 'default' ? TRUST_DOMAIN : undefined) },
      secrets: { get: get(this.secrets) },
      store: this.store,
      signing: this.signing,
      events: { record: (_target, type, reason, message) => { this.events.push({ type, reason, message }); } },
      metrics: this.metrics,
      log: pino({ level: 'silent' }),
      now: () => this.now,
      api: {
        getSecret: async (ns, name) => this.secrets.get(`${ns}/${name}`) ?? Promise.reject(notFound()),
        createSecret: async (s) => this.put(this.secrets, 'create', s),
        replaceSecret: async (s) => this.put(this.secrets, 'replace', s),
        deleteSecret: async (ns, name) => {
          if (!this.secrets.delete(`${ns}/${name}`)) throw notFound();
          this.writes.push(`delete Secret ${ns}/${name}`);
        },
        getConfigMap: async (ns, name) => this.configMaps.get(`${ns}/${name}`) ?? Promise.reject(notFound()),
        createConfigMap: async (cm) => this.put(this.configMaps, 'create', cm),
        replaceConfigMap: async (cm) => this.put(this.configMaps, 'replace', cm),
        getNetworkPolicy: async (ns, name) => this.networkPolicies.get(`${ns}/${name}`) ?? Promise.reject(notFound()),
        createNetworkPolicy: async (np) => this.put(this.networkPolicies, 'create', np),
        replaceNetworkPolicy: async (np) => this.put(this.networkPolicies, 'replace', np),
        deleteNetworkPolicy: async (ns, name, uid) => {
          const np = this.networkPolicies.get(`${ns}/${name}`);
          if (!np) throw notFound();
          if (uid && np.metadata.uid !== uid) throw new KubeError(409, 'Conflict', 'Precondition failed: UID in precondition');
          this.networkPolicies.delete(`${ns}/${name}`);
          this.writes.push(`delete NetworkPolicy ${ns}/${name}`);
        },
        patchIdentityStatus: async (ns, name, patch) => {
          this.writes.push(`patch AgentIdentityStatus ${ns}/${name}`);
          this.patchIdentity(ns, name, (i) => {
            const status: Record<string, unknown> = { ...i.status };
            for (const [k, v] of Object.entries(patch)) if (v === null) delete status[k]; else status[k] = v;
            return { ...i, status };
          });
        },
        patchIdentityMetadata: async (ns, name, { finalizers }) => {
          this.writes.push(`patch AgentIdentity ${ns}/${name}`);
          this.patchIdentity(ns, name, (i) => ({ ...i, metadata: { ...i.metadata, finalizers } }));
        },
      },
      identities: { get: get(this.identities), list: () => [...this.identities.values()] },
      claims: { of: (key) => [...this.identities.values()].filter((i) => secretKeyOf(i) === key) },
      configMaps: { get: get(this.configMaps) },
      ...(this.watchesNetworkPolicies ? { networkPolicies: { get: get(this.networkPolicies) } } : {}),
      ...(this.appPorts ? { appPorts: this.appPorts } : {}),
      namespaces: { get: (name) => (name === NS ? namespace : undefined), list: () => [namespace] },
      serviceAccounts: { get: (name, ns) => (this.serviceAccounts.has(`${ns}/${name}`) ? {} : undefined) },
      podCertificates: ledgerOf({ list: () => this.podCertificateRequests }),
      operatorNamespace: OPERATOR_NS,
      minDurationMs: 60_000,
    };
  }

  /** One reconcile of the identity, through its error policy as the queue runs it; the writes and events it made, and what it returned or threw. */
  async reconcile(): Promise<{ result?: Result; error?: Error & { reason?: string } }> {
    this.writes.length = 0;
    this.events.length = 0;
    const r = identityReconciler(this.deps());
    try {
      return { result: await r.reconcile(KEY).catch((err: unknown) => r.errorPolicy(KEY, err)) };
    } catch (error) {
      return { error: error as Error };
    }
  }
}

const ready = (i: AgentIdentity) => i.status?.conditions?.find((c) => c.type === 'Ready');
const isReadyTrue = (i: AgentIdentity) => ready(i)?.status === 'True';
const dataOf = (s: Secret, k: string) => Buffer.from(s.data![k]!, 'base64').toString('utf8');

/** A cluster whose identity already holds a certificate from `gen`, issued at NOW. */
async function issued(gen: Generation, spec: Partial<AgentIdentitySpec> = {}): Promise<FakeCluster> {
  const c = new FakeCluster();
  c.store.set(await trustDomainState(gen));
  c.setIdentity(agentIdentity(spec));
  const { error } = await c.reconcile();
  assert.equal(error, undefined);
  return c;
}

interface Case {
  name: string;
  /** The cluster before the reconcile under test. */
  given(gen: Generation): Promise<FakeCluster>;
  then(c: FakeCluster, out: Awaited<ReturnType<FakeCluster['reconcile']>>, gen: Generation): void | Promise<void>;
}

const cases: Case[] = [
  {
    name: 'a new identity: one Secret created, status Ready',
    async given(gen) {
      const c = new FakeCluster();
      c.store.set(await trustDomainState(gen));
      c.setIdentity(agentIdentity());
      return c;
    },
    async then(c, { result, error }, gen) {
      assert.equal(error, undefined);
      // Two API writes per issuance (issue 20): the Secret, with policy.json in it, and the status. The finalizer
      // patch before them is the API server's to make at creation (the chart's admission policy); this fake has none.
      assert.deepEqual(c.writes, [`patch AgentIdentity ${NS}/planner`, `create Secret ${NS}/${SECRET}`, `patch AgentIdentityStatus ${NS}/planner`]);
      assert.equal(JSON.parse(dataOf(c.secret()!, 'policy.json')).spiffeID, 'spiffe://cluster.local/ns/agents/agent/planner');
      const i = c.identity();
      assert.equal(ready(i)?.status, 'True');
      assert.equal(ready(i)?.reason, 'Issued');
      assert.equal(i.status?.lastIssuanceReason, 'SecretDoesNotExist');
      assert.equal(i.status?.spiffeID, 'spiffe://cluster.local/ns/agents/agent/planner');
      assert.equal(i.status?.serialNumber, c.secret()!.metadata.annotations?.[ANNOTATION_SERIAL]);
      // Re-checked at its renewal time (which the status shows to the second).
      assert.equal(Math.floor((NOW.getTime() + result!.requeueAfter!) / 1000) * 1000, Date.parse(i.status!.renewalTime!));
      // The Secret holds a real leaf that chains to the bundle, and a key.
      const chain = parseCertificates(dataOf(c.secret()!, 'tls.crt'));
      assert.equal((await verifyChain(chain, [gen.root.certificate], NOW)).ok, true);
      assert.match(dataOf(c.secret()!, SECRET_KEY), /PRIVATE KEY/);
      assert.deepEqual(c.events, [], 'a first certificate is reported by the status alone: no Event write');
    },
  },
  {
    name: 'a Secret from before policy.json rode it gains it in one replace: no re-issue, no ConfigMap',
    async given(gen) {
      const c = await issued(gen);
      c.serialBefore = c.identity().status?.serialNumber;
      delete c.secret()!.data!['policy.json'];
      return c;
    },
    then(c, { error }) {
      assert.equal(error, undefined);
      assert.deepEqual(c.writes, [`replace Secret ${NS}/${SECRET}`]);
      assert.equal(c.secret()!.metadata.annotations?.[ANNOTATION_SERIAL], c.serialBefore, 'same certificate');
      assert.equal(JSON.parse(dataOf(c.secret()!, 'policy.json')).mode, 'TrustDomain');
    },
  },
  {
    name: 'the policy ConfigMap of an identity from before policy.json rode its Secret is kept current (pods admitted then mount it); one that is not its own is left alone',
    async given(gen) {
      const c = await issued(gen, { policy: { allow: [{ spiffeID: 'spiffe://cluster.local/ns/agents/agent/auditor' }] } });
      const legacy = (uid: string, name: string): ConfigMap => ({
        apiVersion: 'v1', kind: 'ConfigMap',
        metadata: { name, namespace: NS, resourceVersion: '1', ownerReferences: [{ apiVersion: 'agentidentity.dev/v1alpha1', kind: 'AgentIdentity', name: 'planner', uid, controller: true }] },
        data: { 'policy.json': '{"stale":true}' },
      });
      c.configMaps.set(`${NS}/planner-identity-policy`, legacy('uid-planner', 'planner-identity-policy'));
      return c;
    },
    then(c, { error }) {
      assert.equal(error, undefined);
      assert.deepEqual(c.writes, [`replace ConfigMap ${NS}/planner-identity-policy`]);
      const cm = c.configMaps.get(`${NS}/planner-identity-policy`)!;
      assert.equal(cm.data!['policy.json'], dataOf(c.secret()!, 'policy.json'), 'the same policy.json as the Secret\'s');
      assert.ok(isReadyTrue(c.identity()));
    },
  },
  {
    name: 'Secret delivery: a ConfigMap of the policy\'s old name that is not the identity\'s is no pod\'s policy any more: neither written nor refused',
    async given(gen) {
      const c = new FakeCluster();
      c.store.set(await trustDomainState(gen));
      c.setIdentity(agentIdentity());
      c.configMaps.set(`${NS}/planner-identity-policy`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'planner-identity-policy', namespace: NS, uid: 'uid-squat' }, data: { 'policy.json': '{"allow":"everyone"}' } });
      return c;
    },
    then(c, { error }) {
      assert.equal(error, undefined);
      assert.deepEqual(c.writesTo('ConfigMap'), []);
      assert.ok(isReadyTrue(c.identity()));
    },
  },
  {
    name: 'nothing changed since the last reconcile: zero API writes',
    given: (gen) => issued(gen),
    then(c, { error }) {
      assert.equal(error, undefined);
      assert.deepEqual(c.writes, []);
      assert.deepEqual(c.events, []);
    },
  },
  {
    name: 'the Secret lost its key: re-issued with reason SecretIsMissingData',
    async given(gen) {
      const c = await issued(gen);
      const s = c.secret()!;
      delete s.data![SECRET_KEY];
      return c;
    },
    then(c, { error }) {
      assert.equal(error, undefined);
      assert.deepEqual(c.writesTo('Secret'), [`replace Secret ${NS}/${SECRET}`]);
      assert.equal(c.identity().status?.lastIssuanceReason, 'SecretIsMissingData');
      assert.match(dataOf(c.secret()!, SECRET_KEY), /PRIVATE KEY/);
      assert.match(c.events[0]!.message, /^the identity Secret is missing tls\.key; issued spiffe:\/\/.* \(replacing [0-9a-f]+\)/);
    },
  },
  {
    name: 'the renewal time is reached: re-issued with reason Renewing',
    async given(gen) {
      const c = await issued(gen);
      c.now = new Date(Date.parse(c.identity().status!.renewalTime!) + 1000);
      return c;
    },
    then(c, { error }) {
      assert.equal(error, undefined);
      assert.deepEqual(c.writesTo('Secret'), [`replace Secret ${NS}/${SECRET}`]);
      assert.equal(c.identity().status?.lastIssuanceReason, 'Renewing');
      assert.equal(Date.parse(c.identity().status!.notBefore!) <= c.now.getTime(), true, 'a new certificate, issued now');
    },
  },
  {
    name: 'the TrustDomain cannot issue: no Secret written, status TrustDomainNotReady',
    async given() {
      const c = new FakeCluster();
      c.store.fail('default', 'its CA Secret holds no usable key');
      c.setIdentity(agentIdentity());
      return c;
    },
    then(c, { result, error }) {
      assert.equal(error, undefined, 'not retried: the TrustDomain changing re-queues the identity');
      assert.deepEqual(result, { outcome: 'error' }, 'a failure that waits: counted as an error, no retry');
      assert.deepEqual(c.writesTo('Secret'), []);
      assert.equal(ready(c.identity())?.status, 'False');
      assert.equal(ready(c.identity())?.reason, 'TrustDomainNotReady');
      assert.match(ready(c.identity())!.message!, /its CA Secret holds no usable key/);
    },
  },
  {
    name: 'suspended: its certificate deny-listed and its own Secret deleted',
    async given(gen) {
      const c = await issued(gen);
      c.serialBefore = c.identity().status?.serialNumber;
      c.setIdentity({ ...c.identity(), spec: { ...c.identity().spec, suspended: true } });
      return c;
    },
    then(c, { error }) {
      assert.equal(error, undefined);
      assert.deepEqual(c.writesTo('Secret'), [`delete Secret ${NS}/${SECRET}`]);
      const home = c.configMaps.get(`${OPERATOR_NS}/${bundleConfigMapName('default')}`);
      assert.ok(home, 'the deny list has a home');
      const entries = (JSON.parse(home.data![BUNDLE_DENYLIST]!) as { entries: Array<{ serialNumber: string; reason: string }> }).entries;
      assert.deepEqual(entries.map((e) => [e.serialNumber, e.reason]), [[c.serialBefore, 'Suspended']], 'its serial is deny-listed');
      assert.equal(ready(c.identity())?.reason, 'Suspended');
    },
  },
  {
    name: 'suspended, and the Secret of that name is nobody\'s: neither deleted nor deny-listed',
    async given(gen) {
      const c = new FakeCluster();
      c.store.set(await trustDomainState(gen));
      c.setIdentity(agentIdentity({ suspended: true }));
      c.secrets.set(`${NS}/${SECRET}`, {
        apiVersion: 'v1', kind: 'Secret', metadata: { name: SECRET, namespace: NS, uid: 'uid-unowned', annotations: { [ANNOTATION_SERIAL]: 'ab', [ANNOTATION_NOT_AFTER]: '2031-01-01T00:00:00Z' } },
        data: { 'tls.crt': 'eA==' },
      });
      return c;
    },
    then(c, { error }) {
      assert.equal(error, undefined);
      assert.deepEqual(c.writesTo('Secret'), []);
      assert.deepEqual(c.writesTo('ConfigMap'), []);
      assert.ok(c.secret());
      assert.equal(ready(c.identity())?.reason, 'Suspended');
    },
  },
  {
    name: 'the Secret is another identity\'s (its owner UID differs): SecretOwnedByAnother, that Secret untouched',
    async given(gen) {
      const c = new FakeCluster();
      c.store.set(await trustDomainState(gen));
      c.setIdentity(agentIdentity());
      c.secrets.set(`${NS}/${SECRET}`, {
        apiVersion: 'v1', kind: 'Secret', metadata: {
          name: SECRET, namespace: NS, uid: 'uid-theirs', resourceVersion: '7',
          ownerReferences: [{ apiVersion: 'agentidentity.dev/v1alpha1', kind: 'AgentIdentity', name: 'planner', uid: 'uid-an-older-planner', controller: true }],
        },
        data: { 'tls.crt': 'eA==', 'tls.key': 'eA==' },
      });
      return c;
    },
    then(c, { error }) {
      assert.equal(error?.reason, 'SecretOwnedByAnother', 'retried with backoff');
      assert.deepEqual(c.writesTo('Secret'), []);
      assert.equal(c.secret()?.metadata.resourceVersion, '7');
      assert.equal(ready(c.identity())?.reason, 'SecretOwnedByAnother');
      assert.equal(c.identity().status?.serialNumber, undefined, 'nothing of that Secret is reported');
    },
  },
  {
    name: 'its ServiceAccount does not exist: ServiceAccountNotFound, nothing issued',
    async given(gen) {
      const c = new FakeCluster();
      c.store.set(await trustDomainState(gen));
      c.setIdentity(agentIdentity({ serviceAccountName: 'ghost' }));
      return c;
    },
    then(c, { result, error }) {
      assert.equal(error, undefined, 'not retried: creating the ServiceAccount is the change that helps');
      assert.deepEqual(result, { outcome: 'error' }, 'a failure that waits: counted as an error, no retry');
      assert.deepEqual(c.writesTo('Secret'), []);
      assert.equal(ready(c.identity())?.reason, 'ServiceAccountNotFound');
      assert.match(ready(c.identity())!.message!, /ServiceAccount "ghost" does not exist in namespace "agents"/);
    },
  },
  {
    name: 'PodCertificate delivery: no Secret, its policy ConfigMap, Ready with reason PodCertificates naming the signer',
    async given(gen) {
      const c = new FakeCluster();
      c.store.set(await trustDomainState(gen));
      c.setIdentity(agentIdentity({ delivery: 'PodCertificate' }));
      return c;
    },
    then(c, { error }) {
      assert.equal(error, undefined);
      assert.deepEqual(c.writesTo('Secret'), []);
      assert.deepEqual(c.writesTo('ConfigMap'), [`create ConfigMap ${NS}/planner-identity-policy`]);
      const i = c.identity();
      assert.equal(ready(i)?.status, 'True');
      assert.equal(ready(i)?.reason, 'PodCertificates');
      assert.match(ready(i)!.message, /signer agentidentity\.dev\/svid/);
      assert.equal(i.status?.spiffeID, 'spiffe://cluster.local/ns/agents/agent/planner');
      assert.equal(i.status?.serialNumber, undefined);
      assert.equal(i.status?.notAfter, undefined);
    },
  },
  {
    name: 'PodCertificate delivery, and a Secret of that name exists: left alone',
    async given(gen) {
      const c = new FakeCluster();
      c.store.set(await trustDomainState(gen));
      c.setIdentity(agentIdentity({ delivery: 'PodCertificate' }));
      c.secrets.set(`${NS}/${SECRET}`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: SECRET, namespace: NS, uid: 'uid-tenant' }, data: { 'tls.crt': 'eA==' } });
      return c;
    },
    then(c, { error }) {
      assert.equal(error, undefined);
      assert.deepEqual(c.writesTo('Secret'), []);
      assert.ok(c.secret());
      assert.equal(ready(c.identity())?.reason, 'PodCertificates');
    },
  },
  {
    name: 'PodCertificate delivery where the API server serves no PodCertificateRequests: Ready=False PodCertificatesUnavailable, nothing retried',
    async given(gen) {
      const c = new FakeCluster();
      c.signing = false;
      c.store.set(await trustDomainState(gen));
      c.setIdentity(agentIdentity({ delivery: 'PodCertificate' }));
      return c;
    },
    then(c, { error, result }) {
      assert.equal(error, undefined, 'waits for a change instead of backing off');
      assert.deepEqual(result, { outcome: 'error' }, 'a failure that waits: counted as an error, no retry');
      const r = ready(c.identity())!;
      assert.equal(r.status, 'False');
      assert.equal(r.reason, 'PodCertificatesUnavailable');
      assert.match(r.message, /Kubernetes 1\.37\+ is needed/);
      assert.ok(c.events.some((e) => e.type === 'Warning' && e.reason === 'PodCertificatesUnavailable'));
    },
  },
  {
    name: 'PodCertificate delivery suspended: every still-valid pod certificate in the ledger deny-listed, expired ones and other identities\' not',
    async given(gen) {
      const c = new FakeCluster();
      c.store.set(await trustDomainState(gen));
      c.setIdentity(agentIdentity({ delivery: 'PodCertificate', suspended: true }));
      const entry = (identity: string, now: Date) => ledgerRequest(gen.signer, { identity, namespace: NS, rootFingerprint: 'sha256:r', now, durationMs: DAY });
      c.podCertificateRequests.push(await entry('planner', NOW), await entry('planner', NOW), await entry('planner', new Date(NOW.getTime() - 2 * DAY)), await entry('coder', NOW));
      return c;
    },
    then(c, { error }) {
      assert.equal(error, undefined);
      assert.deepEqual(c.writesTo('Secret'), []);
      const home = c.configMaps.get(`${OPERATOR_NS}/${bundleConfigMapName('default')}`)!;
      const entries = (JSON.parse(home.data![BUNDLE_DENYLIST]!) as { entries: Array<{ serialNumber: string; reason: string; spiffeID: string }> }).entries;
      const want = c.podCertificateRequests.slice(0, 2).map((r) => serialNumberOf(parseCertificates(r.status!.certificateChain!)[0]!));
      assert.deepEqual(entries.map((e) => e.serialNumber).sort(), want.sort());
      assert.ok(entries.every((e) => e.reason === 'Suspended' && e.spiffeID === 'spiffe://cluster.local/ns/agents/agent/planner'));
      assert.equal(ready(c.identity())?.reason, 'Suspended');
      assert.match(c.events.at(-1)!.message, /revoked 2 pod certificate/);
    },
  },
];

test('a suspend that lands while the signer is answering a request waits for the answer, then deny-lists that certificate too', async () => {
  const g = await gen;
  const c = new FakeCluster();
  c.store.set(await trustDomainState(g));
  c.setIdentity(agentIdentity({ delivery: 'PodCertificate', suspended: true }));
  const issued = await ledgerRequest(g.signer, { identity: 'planner', namespace: NS, rootFingerprint: 'sha256:r', now: NOW, durationMs: DAY });
  // Recorded in the ledger (finalizer, labels), its certificate not written yet.
  c.podCertificateRequests.push({ ...issued, status: {} });

  const during = await c.reconcile();
  assert.equal(during.error, undefined);
  assert.ok((during.result?.requeueAfter ?? 0) > 0, 'looked at again shortly');
  assert.notEqual(ready(c.identity())?.reason, 'Suspended', 'not reported done while a certificate may still be signed');

  c.podCertificateRequests[0] = issued;
  const after = await c.reconcile();
  assert.equal(after.error, undefined);
  const home = c.configMaps.get(`${OPERATOR_NS}/${bundleConfigMapName('default')}`)!;
  const serials = (JSON.parse(home.data![BUNDLE_DENYLIST]!) as { entries: Array<{ serialNumber: string }> }).entries.map((e) => e.serialNumber);
  assert.deepEqual(serials, [serialNumberOf(parseCertificates(issued.status!.certificateChain!)[0]!)]);
  assert.equal(ready(c.identity())?.reason, 'Suspended');
});

const gen = generation();
for (const tc of cases) {
  test(tc.name, async () => {
    const g = await gen;
    const c = await tc.given(g);
    await tc.then(c, await c.reconcile(), g);
  });
}

test('a leaf on a retiring root is moved at its spread time during a rotation, with reason RootRotation', async () => {
  const old = await gen;
  const c = await issued(old);
  const serial = c.identity().status?.serialNumber;
  const next = await generation();
  const rotation = { phaseStartedAt: NOW, reissueWindowMs: 3_600_000 };
  c.store.set(await trustDomainState(next, old, rotation));
  const at = rotationReissueTime(NOW, rotation.reissueWindowMs, unitHash('uid-planner'));
  assert.ok(at.getTime() > NOW.getTime(), 'this UID spreads into the window');

  // Before its time: kept (the new bundle is written), and re-queued for that time.
  const before = await c.reconcile();
  assert.equal(before.error, undefined);
  assert.equal(c.identity().status?.serialNumber, serial);
  assert.equal(before.result?.requeueAfter, at.getTime() - NOW.getTime());

  c.now = at;
  const { error } = await c.reconcile();
  assert.equal(error, undefined);
  assert.deepEqual(c.writesTo('Secret'), [`replace Secret ${NS}/${SECRET}`]);
  assert.equal(c.identity().status?.lastIssuanceReason, 'RootRotation');
  assert.notEqual(c.identity().status?.serialNumber, serial);
  assert.equal(c.secret()!.metadata.annotations?.[ANNOTATION_ROOT_FINGERPRINT], await fingerprintOf(next.root.certificate));
  const chain = parseCertificates(dataOf(c.secret()!, 'tls.crt'));
  assert.equal((await verifyChain(chain, [next.root.certificate], at)).ok, true, 'the new leaf chains to the new root');
});

/** One reconcile through the error policy, with some API calls replaced (faults). */
async function reconcileWith(c: FakeCluster, api: Partial<IdentityReconcilerDeps['api']>): Promise<{ result?: Result; error?: Error & { reason?: string } }> {
  const deps = c.deps();
  const r = identityReconciler({ ...deps, api: { ...deps.api, ...api } });
  return r.reconcile(KEY).catch((err: unknown) => r.errorPolicy(KEY, err)).then((result) => ({ result }), (error: Error) => ({ error }));
}

test('its TrustDomain still loading: nothing written, and the queue counts a wait, not a success', async () => {
  const c = new FakeCluster();
  c.setIdentity(agentIdentity());
  const { result, error } = await c.reconcile();
  assert.equal(error, undefined);
  assert.equal(result?.outcome, 'wait');
  assert.deepEqual(c.writes, []);
});

test('a write conflict is settled as a requeue: no failure reported, no status written', async () => {
  const c = new FakeCluster();
  c.store.set(await trustDomainState(await gen));
  c.setIdentity(agentIdentity());
  const { result, error } = await reconcileWith(c, { createSecret: async () => { throw new KubeError(409, 'Conflict', 'the object has been modified'); } });
  assert.equal(error, undefined);
  assert.deepEqual(result, { requeueAfter: 500, outcome: 'requeue' });
  assert.deepEqual(c.events, []);
  assert.equal(c.identity().status, undefined);
});

test('a suspend waiting for the signer is counted as a wait', async () => {
  const g = await gen;
  const c = new FakeCluster();
  c.store.set(await trustDomainState(g));
  c.setIdentity(agentIdentity({ delivery: 'PodCertificate', suspended: true }));
  const recorded = await ledgerRequest(g.signer, { identity: 'planner', namespace: NS, rootFingerprint: 'sha256:r', now: NOW, durationMs: DAY });
  c.podCertificateRequests.push({ ...recorded, status: {} });
  const { result } = await c.reconcile();
  assert.equal(result?.outcome, 'wait');
});

test('an API error before the Secret is looked at leaves a certificate that still serves Ready; a refusal does not', async () => {
  const g = await gen;
  const c = await issued(g);
  const i = c.identity();
  // The finalizer is added on the next reconcile, and that write fails (an API server having a bad moment).
  c.setIdentity({ ...i, metadata: { ...i.metadata, finalizers: [] } });
  const unavailable = { patchIdentityMetadata: async () => { throw new KubeError(503, 'ServiceUnavailable', 'etcd leader changed'); } };
  const first = await reconcileWith(c, unavailable);
  assert.equal(first.error, undefined);
  assert.equal(first.result?.backoff, true, 'a transient error is retried with backoff');
  assert.notEqual(c.identity().status?.conditions?.find((x) => x.type === 'Issuing')?.reason, 'ServiceUnavailable', 'and not reported while it may pass');
  assert.deepEqual(c.events.filter((e) => e.type === 'Warning'), [], 'no Warning for it either');
  // It persists (5 attempts in a row): now reported, and the certificate that still verifies stays Ready.
  for (let n = 2; n < 5; n++) assert.equal((await reconcileWith(c, unavailable)).result?.backoff, true, `attempt ${n}`);
  const { error } = await reconcileWith(c, unavailable);
  assert.ok(error, 'retried with backoff');
  assert.equal(ready(c.identity())?.status, 'True', 'its certificate still verifies: agents keep using it');
  assert.equal(c.identity().status?.conditions?.find((x) => x.type === 'Issuing')?.reason, 'ServiceUnavailable');

  // Its ServiceAccount gone: the identity itself is refused, whatever its Secret holds.
  c.serviceAccounts.clear();
  const refused = await c.reconcile();
  assert.equal(refused.error, undefined, 'waits for a change');
  assert.equal(ready(c.identity())?.status, 'False');
  assert.equal(ready(c.identity())?.reason, 'ServiceAccountNotFound');
});

// --- spec.proxy: the NetworkPolicy that leaves the proxy's port the only way in

const PROXY = { port: 8443, appPort: 8080 };
const NETPOL = `${NS}/planner-identity-proxy`;

test('spec.proxy: the NetworkPolicy is created owned by the identity\'s UID, admitting its pods on the proxy port only; a second run writes nothing', async () => {
  const c = await issued(await gen, { proxy: PROXY });
  const np = c.networkPolicies.get(NETPOL)!;
  assert.deepEqual(np.spec, {
    podSelector: { matchLabels: { 'agentidentity.dev/agent': 'planner' } },
    policyTypes: ['Ingress'],
    ingress: [{ ports: [{ protocol: 'TCP', port: 8443 }] }],
  });
  assert.deepEqual(np.metadata.ownerReferences, [{ apiVersion: 'agentidentity.dev/v1alpha1', kind: 'AgentIdentity', name: 'planner', uid: 'uid-planner', controller: true, blockOwnerDeletion: true }]);
  assert.equal(np.metadata.labels?.['app.kubernetes.io/managed-by'], 'agent-identity-operator');
  assert.equal(np.metadata.labels?.['agentidentity.dev/identity'], 'planner', 'so its changes map back to the identity');
  assert.equal(ready(c.identity())?.status, 'True');
  const again = await c.reconcile();
  assert.equal(again.error, undefined);
  assert.deepEqual(c.writes, []);
});

test('spec.proxy: an edited NetworkPolicy is restored; a new port is followed', async () => {
  const c = await issued(await gen, { proxy: PROXY });
  const np = c.networkPolicies.get(NETPOL)!;
  c.networkPolicies.set(NETPOL, { ...np, spec: { ...np.spec, ingress: [{}] } });
  await c.reconcile();
  assert.deepEqual(c.writesTo('NetworkPolicy'), [`replace NetworkPolicy ${NETPOL}`]);
  assert.deepEqual(c.networkPolicies.get(NETPOL)!.spec.ingress, [{ ports: [{ protocol: 'TCP', port: 8443 }] }]);
  c.setIdentity({ ...c.identity(), spec: { ...c.identity().spec, proxy: { port: 9443, appPort: 8080 } } });
  await c.reconcile();
  assert.deepEqual(c.networkPolicies.get(NETPOL)!.spec.ingress, [{ ports: [{ protocol: 'TCP', port: 9443 }] }]);
});

test('spec.proxy removed: its NetworkPolicy is deleted; a policy of that name that is not its own is left alone', async () => {
  const c = await issued(await gen, { proxy: PROXY });
  const { proxy: _, ...spec } = c.identity().spec;
  c.setIdentity({ ...c.identity(), spec });
  await c.reconcile();
  assert.deepEqual(c.writesTo('NetworkPolicy'), [`delete NetworkPolicy ${NETPOL}`]);
  assert.equal(c.networkPolicies.has(NETPOL), false);

  c.networkPolicies.set(NETPOL, { metadata: { name: 'planner-identity-proxy', namespace: NS, uid: 'theirs', labels: { 'app.kubernetes.io/managed-by': 'agent-identity-operator' } }, spec: { podSelector: {} } });
  await c.reconcile();
  assert.deepEqual(c.writesTo('NetworkPolicy'), [], 'not controlled by the identity: not deleted');
});

test('spec.proxy and a NetworkPolicy of that name that is someone else\'s: never overwritten, NetworkPolicyConflict', async () => {
  const c = new FakeCluster();
  c.store.set(await trustDomainState(await gen));
  c.setIdentity(agentIdentity({ proxy: PROXY }));
  const squatter: NetworkPolicy = { metadata: { name: 'planner-identity-proxy', namespace: NS, uid: 'theirs' }, spec: { podSelector: {}, ingress: [{}] } };
  // Unlabelled, so not in the operator's cache: the create answers AlreadyExists and a read tells whose it is.
  const { error } = await reconcileWith(c, {
    createNetworkPolicy: async () => { throw new KubeError(409, 'AlreadyExists', 'exists'); },
    getNetworkPolicy: async () => squatter,
  });
  assert.ok(error, 'retried with backoff');
  assert.equal(ready(c.identity())?.status, 'False');
  assert.equal(ready(c.identity())?.reason, 'NetworkPolicyConflict');
  assert.equal(ready(c.identity())?.message, `NetworkPolicy ${NETPOL} exists and is not this identity's (no controller); the operator keeps the agent's pods reachable only on the proxy's port with a NetworkPolicy of that name: delete it`);
  assert.deepEqual(c.writesTo('NetworkPolicy'), []);
});

test('spec.proxy where the operator may not watch NetworkPolicies: NetworkPolicyUnavailable, the certificate still serves', async () => {
  const c = await issued(await gen);
  c.watchesNetworkPolicies = false;
  c.setIdentity({ ...c.identity(), spec: { ...c.identity().spec, proxy: PROXY } });
  const { error } = await c.reconcile();
  assert.equal(error, undefined, 'waits for a change (RBAC, a restart)');
  assert.equal(ready(c.identity())?.status, 'True', 'its certificate is fine');
  const issuing = c.identity().status?.conditions?.find((x) => x.type === 'Issuing');
  assert.equal(issuing?.reason, 'NetworkPolicyUnavailable');
  assert.match(issuing!.message, /grant the chart's RBAC for networkpolicies$/);
  assert.deepEqual(c.events.map((e) => e.reason), ['NetworkPolicyUnavailable']);
});

test('PodCertificate delivery with spec.proxy gets the NetworkPolicy too', async () => {
  const c = new FakeCluster();
  c.store.set(await trustDomainState(await gen));
  c.setIdentity(agentIdentity({ delivery: 'PodCertificate', proxy: PROXY }));
  const { error } = await c.reconcile();
  assert.equal(error, undefined);
  assert.ok(c.networkPolicies.has(NETPOL));
});

// --- spec.proxy: the app-port check's findings (app-port-probe.ts) reported on the identity

const appPort = (i: AgentIdentity) => i.status?.conditions?.find((x) => x.type === 'AppPortPrivate');
const probe = (pod: string, exposed: boolean, port = PROXY.appPort) => ({ pod: `${NS}/${pod}`, identity: KEY, address: `10.0.0.${pod.length}`, port, probeKey: `uid-${pod}/0`, exposed });

test('app port: exposed pods make AppPortPrivate False naming them and the fix, with one Warning; fixed, True with a Normal event; a second run writes nothing', async () => {
  const c = await issued(await gen, { proxy: PROXY });
  assert.equal(appPort(c.identity())?.status, 'Unknown', 'no pod probed yet');
  assert.equal(appPort(c.identity())?.reason, 'NotProbed');
  c.appPorts!.set(`${NS}/planner-a`, KEY, probe('planner-a', true));
  c.appPorts!.set(`${NS}/planner-b`, KEY, probe('planner-b', false));
  await c.reconcile();
  const exposed = appPort(c.identity())!;
  assert.equal(exposed.status, 'False');
  assert.equal(exposed.reason, 'AppPortExposed');
  assert.match(exposed.message, /^app port 8080 answers on the pod IP of 1 pod\(s\): agents\/planner-a \(10\.0\.0\.9:8080\);.*Bind the app to 127\.0\.0\.1 \(the webhook sets HOST=127\.0\.0\.1/);
  assert.deepEqual(c.events.map((e) => [e.type, e.reason]), [['Warning', 'AppPortExposed']]);
  assert.equal(ready(c.identity())?.status, 'True', 'the certificate is fine: Ready is not the app port\'s');
  await c.reconcile();
  assert.deepEqual(c.writes, [], 'level-based: nothing new, no write');
  assert.equal(c.events.length, 0, 'and no second Warning');

  c.appPorts!.set(`${NS}/planner-a`, KEY, { ...probe('planner-a', false), probeKey: 'uid-planner-a/1' });
  await c.reconcile();
  assert.equal(appPort(c.identity())?.status, 'True');
  assert.equal(appPort(c.identity())?.reason, 'AppPortPrivate');
  assert.deepEqual(c.events.map((e) => [e.type, e.reason]), [['Normal', 'AppPortPrivate']]);
});

test('app port: probes of another port do not count; spec.proxy removed drops the condition; no pod access reports AppPortUnchecked', async () => {
  const c = await issued(await gen, { proxy: PROXY });
  c.appPorts!.set(`${NS}/planner-a`, KEY, probe('planner-a', true, 9090));
  await c.reconcile();
  assert.equal(appPort(c.identity())?.reason, 'NotProbed', 'a finding on the old appPort is stale');

  const { proxy: _, ...spec } = c.identity().spec;
  c.setIdentity({ ...c.identity(), spec });
  await c.reconcile();
  assert.equal(appPort(c.identity()), undefined);

  c.setIdentity({ ...c.identity(), spec: { ...spec, proxy: PROXY } });
  c.appPorts = undefined;
  await c.reconcile();
  assert.equal(appPort(c.identity())?.status, 'Unknown');
  assert.equal(appPort(c.identity())?.reason, 'AppPortUnchecked');
  assert.match(appPort(c.identity())!.message, /grant the chart's RBAC for pods$/);
});
