// In-memory fakes of the trust reconciler's deps: one object store serves
// both the API calls and the caches (as if every watch had caught up), and
// every write is recorded, so a test asserts exactly which API writes a
// reconcile made. No control plane, milliseconds per reconcile.
import pino from 'pino';
import type { AgentIdentity, ClusterTrustBundle, ConfigMap, Namespace, PodCertificateRequest, Secret, TrustDomain, TrustDomainStatus } from '../../../src/api/types.ts';
import { KubeError } from '../../../src/kube/errors.ts';
import type { EventTarget, EventType } from '../../../src/kube/events.ts';
import { Metrics } from '../../../src/controller/metrics.ts';
import { TrustStore } from '../../../src/trust/store.ts';
import type { TrustReconcilerDeps } from '../../../src/trust/deps.ts';
import {
  ANNOTATION_ROOT_FINGERPRINT, FINALIZER_POD_CERTIFICATE, LABEL_IDENTITY, LABEL_TRUST_DOMAIN, POD_CERTIFICATE_AGENT_ANNOTATION, SIGNER_NAME,
} from '../../../src/api/group.ts';
import type { CA } from '../../../src/pki/ca.ts';
import { generateKeyPair } from '../../../src/pki/keys.ts';
import { issueLeaf } from '../../../src/pki/leaf.ts';
import { SpiffeID } from '../../../src/pki/spiffeid.ts';
import { ledgerOf } from '../../../src/signer/ledger.ts';
import { trustDomainOf } from '../../../src/api/defaults.ts';

export const OPERATOR_NAMESPACE = 'ops';
export const POLL_MS = 60_000;

export interface RecordedEvent { type: EventType; reason: string; message: string }

const notFound = (what: string) => new KubeError(404, 'NotFound', `${what} not found`);
const alreadyExists = (what: string) => new KubeError(409, 'AlreadyExists', `${what} already exists`);
const key = (namespace: string | undefined, name: string | undefined) => `${namespace ?? ''}/${name}`;

export class FakeCluster {
  readonly trustDomains = new Map<string, TrustDomain>();
  readonly secrets = new Map<string, Secret>();
  readonly configMaps = new Map<string, ConfigMap>();
  readonly clusterTrustBundles = new Map<string, ClusterTrustBundle>();
  /** The signer's PodCertificateRequests (its ledger of pod certificates). */
  readonly podCertificateRequests: PodCertificateRequest[] = [];
  identities: AgentIdentity[] = [];
  namespaces: Namespace[] = [];
  /** API writes, e.g. "create Secret ops/default-ca". */
  writes: string[] = [];
  events: RecordedEvent[] = [];
  /** An error the API answers a Secret read with (a 403, a 500...), instead of the object or a 404. */
  secretReadError?: KubeError;
  /** Errors the API answers a write with instead of doing it, once each, by the write as recorded in `writes`. */
  readonly faults = new Map<string, KubeError[]>();
  /** Secrets the cache does not show (not labelled for the operator's watch): only a read finds them. */
  readonly unwatched = new Set<string>();
  now = new Date('2026-03-01T00:00:00Z');
  readonly metrics = new Metrics();
  readonly store = new TrustStore();

  /** The next `write` (e.g. "patch TrustDomain default status") fails with `err` and changes nothing. */
  failNext(write: string, err: KubeError): void {
    this.faults.set(write, [...(this.faults.get(write) ?? []), err]);
  }

  /** Records a write, then throws the fault injected for it, if any. */
  private attempt(write: string): void {
    this.writes.push(write);
    const err = this.faults.get(write)?.shift();
    if (err) throw err;
  }

  /** As the namespace cache would list them: the ones added, and every one an object lives in. */
  allNamespaces(): Namespace[] {
    const named = new Set(this.namespaces.map((n) => n.metadata.name!));
    const implied = [...this.configMaps.values(), ...this.secrets.values(), ...this.identities].map((o) => o.metadata.namespace!).filter((n) => n && !named.has(n));
    return [...this.namespaces, ...[...new Set(implied)].map((name) => ({ metadata: { name, labels: { 'kubernetes.io/metadata.name': name } } }))];
  }

  addTrustDomain(trustDomain: TrustDomain): void {
    this.trustDomains.set(trustDomain.metadata.name!, trustDomain);
  }

  deps(): TrustReconcilerDeps {
    const c = this;
    let rv = 0;
    const stamp = <T extends { metadata: { resourceVersion?: string } }>(o: T): T => ({ ...o, metadata: { ...o.metadata, resourceVersion: String(++rv) } });
    const read = <T>(objects: Map<string, T>, kind: string, namespace: string, name: string): T => {
      const o = objects.get(key(namespace, name));
      if (!o) throw notFound(`${kind.toLowerCase()} ${name}`);
      return o;
    };
    /** Records the write; create refuses an existing object, as the API server does. */
    const write = <T extends { metadata: { namespace?: string; name?: string; resourceVersion?: string } }>(objects: Map<string, T>, kind: string, verb: 'create' | 'replace', o: T): T => {
      const at = key(o.metadata.namespace, o.metadata.name);
      c.attempt(`${verb} ${kind} ${at}`);
      if (verb === 'create' && objects.has(at)) throw alreadyExists(`${kind.toLowerCase()} ${o.metadata.name}`);
      const stored = stamp(o);
      objects.set(at, stored);
      return stored;
    };
    const cachedSecrets = () => [...c.secrets.entries()].filter(([k]) => !c.unwatched.has(k)).map(([, s]) => s);
    return {
      api: {
        async getSecret(namespace, name) {
          if (c.secretReadError) throw c.secretReadError;
          return read(c.secrets, 'Secret', namespace, name);
        },
        createSecret: async (secret) => write(c.secrets, 'Secret', 'create', secret),
        replaceSecret: async (secret) => write(c.secrets, 'Secret', 'replace', secret),
        getConfigMap: async (namespace, name) => read(c.configMaps, 'ConfigMap', namespace, name),
        createConfigMap: async (cm) => write(c.configMaps, 'ConfigMap', 'create', cm),
        replaceConfigMap: async (cm) => write(c.configMaps, 'ConfigMap', 'replace', cm),
        async deleteConfigMap(namespace, name) {
          c.attempt(`delete ConfigMap ${key(namespace, name)}`);
          if (!c.configMaps.delete(key(namespace, name))) throw notFound(`configmap ${name}`);
          return {};
        },
        async patchTrustDomainStatus(name, status: TrustDomainStatus) {
          c.attempt(`patch TrustDomain ${name} status`);
          const trustDomain = c.trustDomains.get(name);
          if (!trustDomain) throw notFound(`trustdomain ${name}`);
          // A JSON merge patch at the top level: null removes the field.
          const merged = { ...trustDomain.status, ...status } as Record<string, unknown>;
          for (const [k, v] of Object.entries(merged)) if (v === null) delete merged[k];
          c.trustDomains.set(name, { ...trustDomain, status: merged as TrustDomainStatus });
          return {};
        },
        async getClusterTrustBundle(name) {
          const b = c.clusterTrustBundles.get(name);
          if (!b) throw notFound(`clustertrustbundle ${name}`);
          return b;
        },
        async createClusterTrustBundle(body) {
          c.attempt(`create ClusterTrustBundle ${body.metadata.name}`);
          c.clusterTrustBundles.set(body.metadata.name!, stamp(body));
          return {};
        },
        async replaceClusterTrustBundle(body) {
          c.attempt(`replace ClusterTrustBundle ${body.metadata.name}`);
          c.clusterTrustBundles.set(body.metadata.name!, stamp(body));
          return {};
        },
      },
      trustDomains: { get: (name) => c.trustDomains.get(name) },
      secrets: { get: (name, namespace) => (c.unwatched.has(key(namespace, name)) ? undefined : c.secrets.get(key(namespace, name))) },
      secretList: { list: cachedSecrets },
      podCertificates: ledgerOf({ list: () => c.podCertificateRequests }),
      configMaps: {
        get: (name, namespace) => c.configMaps.get(key(namespace, name)),
        list: (namespace) => [...c.configMaps.values()].filter((cm) => cm.metadata.namespace === namespace),
      },
      identityNamespaces: {
        of: (trustDomain) => new Set(c.identities.filter((i) => trustDomainOf(i) === trustDomain && !i.metadata.deletionTimestamp).map((i) => i.metadata.namespace!)),
      },
      namespaces: { list: () => c.allNamespaces() },
      store: c.store,
      clusterTrustBundles: false,
      events: { record: (_target: EventTarget, type, reason, message) => { c.events.push({ type, reason, message }); } },
      metrics: c.metrics,
      log: pino({ level: 'silent' }),
      now: () => c.now,
      operatorNamespace: OPERATOR_NAMESPACE,
      caDurationMs: 365 * 86_400_000,
      intermediateDurationMs: 30 * 86_400_000,
      externalCAPollMs: POLL_MS,
      rotation: { rotateAtFraction: 2 / 3, intermediateRenewFraction: 2 / 3, propagationDelayMs: 0, reissueWindowMs: 0, graceMs: 0, pollMs: 1000 },
    };
  }
}

export function selfSignedTrustDomain(name = 'default'): TrustDomain {
  return {
    apiVersion: 'agentidentity.dev/v1alpha1', kind: 'TrustDomain',
    metadata: { name, uid: `uid-${name}`, generation: 1 },
    spec: { trustDomain: 'cluster.local', ca: { selfSigned: { keyAlgorithm: 'ECDSA' } } },
  };
}

export function broughtInTrustDomain(name: string, ref: { namespace: string; name: string }): TrustDomain {
  return { ...selfSignedTrustDomain(name), spec: { trustDomain: 'cluster.local', ca: { secretRef: ref } } };
}

/**
 * A PodCertificateRequest the signer issued (its ledger entry): a real leaf
 * from `signer`, the finalizer, the identity and TrustDomain labels, the root.
 */
export async function ledgerRequest(signer: CA, o: { identity: string; namespace: string; rootFingerprint: string; now: Date; durationMs: number; finalizer?: boolean }): Promise<PodCertificateRequest> {
  const key = await generateKeyPair('ECDSA', 256);
  const leaf = await issueLeaf(signer, { spiffeID: SpiffeID.parse(`spiffe://cluster.local/ns/${o.namespace}/agent/${o.identity}`), dnsNames: [], publicKey: key.publicKey, durationMs: o.durationMs, now: o.now });
  return {
    apiVersion: 'certificates.k8s.io/v1', kind: 'PodCertificateRequest',
    metadata: {
      name: `req-${leaf.serialNumber.slice(0, 8)}`, namespace: o.namespace, finalizers: o.finalizer === false ? [] : [FINALIZER_POD_CERTIFICATE],
      labels: { [LABEL_TRUST_DOMAIN]: 'default', [LABEL_IDENTITY]: o.identity }, annotations: { [ANNOTATION_ROOT_FINGERPRINT]: o.rootFingerprint },
    },
    spec: {
      signerName: SIGNER_NAME, podName: `${o.identity}-0`, podUID: 'uid-pod', serviceAccountName: o.identity, serviceAccountUID: 'uid-sa',
      nodeName: 'n1', nodeUID: 'uid-n1', stubPKCS10Request: '', unverifiedUserAnnotations: { [POD_CERTIFICATE_AGENT_ANNOTATION]: o.identity },
    },
    status: {
      conditions: [{ type: 'Issued', status: 'True', reason: 'Issued', message: '', lastTransitionTime: o.now.toISOString() }],
      certificateChain: leaf.certificatePem, notBefore: leaf.notBefore.toISOString(), notAfter: leaf.notAfter.toISOString(), beginRefreshAt: leaf.notAfter.toISOString(),
    },
  };
}
