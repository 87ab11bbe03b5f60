// The `clusterfederatedtrustdomain` controller: keeps a partner's bundle.
// Observe (the bundle held: the ConfigMap of the last accepted one, else the
// initial bundle in the spec), decide (is a fetch due?), act (fetch, parse,
// compare sequences, store), report (status, an event and a metric for every
// refusal). Any failure keeps the last good bundle. The accepted bundle lives
// in ConfigMap federated-bundle-<name> in the operator's namespace, owned by
// the ClusterFederatedTrustDomain's UID: it outlives a restart or a status
// wipe (a status is not restored from a backup or re-applied by GitOps), it is
// already in the shape the delivery to agents copies (ca.crt, like the local
// bundle copies), and status stays small (fingerprints, not certificates).
import { setCondition, rfc3339, type ConditionInput } from '../api/conditions.ts';
import { API_VERSION, CLUSTER_FEDERATED_TRUST_DOMAIN, LABEL_FEDERATED_TRUST_DOMAIN, LABEL_MANAGED_BY, MANAGED_BY_VALUE } from '../api/group.ts';
import type { ClusterFederatedTrustDomain, ClusterFederatedTrustDomainStatus, ConfigMap, TrustDomain } from '../api/types.ts';
import type { ReconcileContext } from '../controller/context.ts';
import { jsonEqual, replacingPatch } from '../controller/equal.ts';
import { errorPolicy } from '../controller/failure.ts';
import type { Result } from '../controller/queue.ts';
import type { EventTarget } from '../kube/events.ts';
import { certificatesToPem } from '../pki/pem.ts';
import { fingerprintOf } from '../pki/parse.ts';
import { BundleDocumentError, parseBundleDocument, parseInitialBundle, type SpiffeBundle } from './document.ts';
import { FetchFailure, fetchBundleDocument, type FetchRequest } from './fetch.ts';
import { DOCUMENT_KEY, ROOTS_KEY, TRUST_DOMAIN_KEY, federatedBundleConfigMapName } from './names.ts';
import { nextRefreshMs, refusal, type RefreshBounds } from './refresh.ts';

export const FETCHER_CONTROLLER = 'clusterfederatedtrustdomain';

export interface FetcherDeps extends Omit<ReconcileContext, 'trustDomains' | 'secrets'> {
  /** Local TrustDomains: a partner never gets to speak for one of them. */
  trustDomains: { list(): readonly TrustDomain[] };
  api: {
    createConfigMap(cm: ConfigMap): Promise<ConfigMap>;
    replaceConfigMap(cm: ConfigMap): Promise<ConfigMap>;
    patchFederatedTrustDomainStatus(name: string, status: ClusterFederatedTrustDomainStatus): Promise<unknown>;
  };
  federatedTrustDomains: { get(name: string): ClusterFederatedTrustDomain | undefined };
  configMaps: { get(name: string, namespace?: string): ConfigMap | undefined };
  operatorNamespace: string;
  bounds: RefreshBounds;
  /** The whole fetch, connection to last byte. Default 10 s. */
  fetchTimeoutMs?: number;
  /** Injected in unit tests; the real one talks HTTPS. */
  fetch?: (r: FetchRequest) => Promise<Buffer>;
}

const target = (o: ClusterFederatedTrustDomain): EventTarget => ({ apiVersion: API_VERSION, kind: CLUSTER_FEDERATED_TRUST_DOMAIN.kind, metadata: o.metadata });

async function rootsStatus(b: SpiffeBundle) {
  return Promise.all(b.roots.map(async (r) => ({ fingerprint: await fingerprintOf(r), notAfter: rfc3339(r.notAfter) })));
}

export function bundleFetcher(d: FetcherDeps): { reconcile: (name: string) => Promise<Result>; errorPolicy: (name: string, err: unknown) => Promise<Result> } {
  const ns = d.operatorNamespace;
  const fetch = d.fetch ?? fetchBundleDocument;
  /** The foreign trust domain of each object seen, so its gauge goes with it. */
  const trustDomainOf = new Map<string, string>();

  /** The bundle held: the last accepted (its ConfigMap), else the initial one. */
  function held(o: ClusterFederatedTrustDomain, cm: ConfigMap | undefined): { bundle?: SpiffeBundle; source: 'fetched' | 'initial'; problem?: string } {
    const stored = cm?.data?.[DOCUMENT_KEY];
    if (stored) {
      try {
        return { bundle: parseBundleDocument(stored), source: 'fetched' };
      } catch {
        // Damaged by hand: fall back to the initial bundle below, and fetch at once.
      }
    }
    if (!o.spec.trustDomainBundle) return { source: 'initial' };
    try {
      return { bundle: parseInitialBundle(o.spec.trustDomainBundle), source: 'initial' };
    } catch (err) {
      return { source: 'initial', problem: `spec.trustDomainBundle: ${(err as Error).message}` };
    }
  }

  async function store(o: ClusterFederatedTrustDomain, existing: ConfigMap | undefined, document: string, bundle: SpiffeBundle): Promise<void> {
    const data = { [DOCUMENT_KEY]: document, [ROOTS_KEY]: certificatesToPem(bundle.roots), [TRUST_DOMAIN_KEY]: o.spec.trustDomain };
    if (existing && existing.data?.[DOCUMENT_KEY] === document && existing.data?.[TRUST_DOMAIN_KEY] === o.spec.trustDomain) return;
    const name = federatedBundleConfigMapName(o.metadata.name!);
    const body: ConfigMap = {
      apiVersion: 'v1', kind: 'ConfigMap',
      metadata: {
        name, namespace: ns, ...(existing ? { resourceVersion: existing.metadata.resourceVersion } : {}),
        labels: { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, [LABEL_FEDERATED_TRUST_DOMAIN]: o.metadata.name! },
        ownerReferences: [{ apiVersion: API_VERSION, kind: CLUSTER_FEDERATED_TRUST_DOMAIN.kind, name: o.metadata.name!, uid: o.metadata.uid!, controller: true }],
      },
      data,
    };
    await (existing ? d.api.replaceConfigMap(body) : d.api.createConfigMap(body));
  }

  async function writeStatus(o: ClusterFederatedTrustDomain, status: ClusterFederatedTrustDomainStatus): Promise<void> {
    if (jsonEqual(status, o.status ?? {})) return;
    await d.api.patchFederatedTrustDomainStatus(o.metadata.name!, replacingPatch(o.status, status));
  }

  const conditions = (o: ClusterFederatedTrustDomain, ...cs: ConditionInput[]) => cs.reduce((list, c) => setCondition(list, c, d.now()), o.status?.conditions ?? []);

  async function reconcile(name: string): Promise<Result> {
    const o = d.federatedTrustDomains.get(name);
    if (!o || o.metadata.deletionTimestamp) {
      // The ConfigMap goes with it (owner reference); the gauge must not linger.
      const gone = trustDomainOf.get(name);
      if (gone) d.metrics.federationLastRefresh.remove({ trust_domain: gone });
      trustDomainOf.delete(name);
      return {};
    }
    trustDomainOf.set(name, o.spec.trustDomain);
    const gen = o.metadata.generation;
    const td = o.spec.trustDomain;
    const local = d.trustDomains.list().find((t) => t.spec.trustDomain === td);
    if (local) {
      // A foreign bundle for one of our own trust domains would let the partner's CA mint our identities: never fetched.
      const message = `${td} is the trust domain of the local TrustDomain ${local.metadata.name}: a partner's Roots are never trusted for it`;
      if (o.status?.conditions?.find((c) => c.type === 'Ready')?.reason !== 'LocalTrustDomain') {
        d.metrics.federationRefreshes.inc({ trust_domain: td, result: 'LocalTrustDomain' });
        d.events.record(target(o), 'Warning', 'LocalTrustDomain', message);
        d.log.warn({ federatedTrustDomain: name }, message);
      }
      await writeStatus(o, { ...o.status, observedGeneration: gen, conditions: conditions(o, { type: 'Ready', status: 'False', reason: 'LocalTrustDomain', message, observedGeneration: gen }) });
      return {};
    }
    const cm = d.configMaps.get(federatedBundleConfigMapName(name), ns);
    const h = held(o, cm);
    const now = d.now();
    const next = o.status?.nextRefresh ? new Date(o.status.nextRefresh).getTime() - now.getTime() : 0;
    // Not due, and nothing changed since the last look (spec, or the stored bundle lost): wait.
    if (next > 0 && o.status?.observedGeneration === gen && (h.source === 'fetched' || !o.status?.lastRefresh)) return { requeueAfter: next };

    const readyCondition: ConditionInput = h.bundle
      ? { type: 'Ready', status: 'True', reason: h.source === 'fetched' ? 'BundleHeld' : 'InitialBundle', message: `holding ${h.bundle.roots.length} root(s) of ${td}${h.source === 'initial' ? ' from spec.trustDomainBundle' : ''}`, observedGeneration: gen }
      : { type: 'Ready', status: 'False', reason: h.problem ? 'InitialBundleInvalid' : 'NoBundle', message: h.problem ?? `no bundle of ${td} yet`, observedGeneration: gen };
    let document: Buffer | undefined;
    let fetched: SpiffeBundle | undefined;
    let failure: { reason: string; message: string } | undefined;
    if (o.spec.bundleEndpointProfile.type === 'https_spiffe' && !h.bundle) {
      failure = { reason: 'NoBundleToAuthenticate', message: `an https_spiffe endpoint is authenticated with ${td}'s own bundle, and none is held: ${h.problem ?? 'give one in spec.trustDomainBundle'}` };
    } else {
      try {
        document = await fetch({ url: o.spec.bundleEndpointURL, profile: o.spec.bundleEndpointProfile, roots: h.bundle?.roots ?? [], timeoutMs: d.fetchTimeoutMs ?? 10_000 });
        fetched = parseBundleDocument(document);
        const refused = refusal(h.source === 'fetched' ? h.bundle : undefined, fetched);
        if (refused) failure = refused;
      } catch (err) {
        if (!(err instanceof FetchFailure || err instanceof BundleDocumentError)) throw err;
        failure = { reason: err.reason, message: err.message };
      }
    }

    d.metrics.federationRefreshes.inc({ trust_domain: td, result: failure?.reason ?? 'Accepted' });
    if (failure || !fetched || !document) {
      const f = failure!;
      const message = `${f.message}; ${h.bundle ? `keeping the ${h.source === 'fetched' ? 'last good' : 'initial'} bundle` : 'no bundle is held'}`;
      d.log.warn({ federatedTrustDomain: name, reason: f.reason }, message);
      d.events.record(target(o), 'Warning', f.reason, message);
      await writeStatus(o, {
        ...o.status, observedGeneration: gen, lastAttempt: rfc3339(now), nextRefresh: rfc3339(new Date(now.getTime() + d.bounds.minMs)),
        ...(h.bundle ? { roots: await rootsStatus(h.bundle), ...(h.bundle.sequence !== undefined ? { sequence: h.bundle.sequence } : {}) } : {}),
        conditions: conditions(o, readyCondition, { type: 'Refreshed', status: 'False', reason: f.reason, message, observedGeneration: gen }),
      });
      return { requeueAfter: d.bounds.minMs };
    }

    const text = document.toString('utf8');
    const changed = !h.bundle || h.bundle.roots.map((r) => Buffer.from(r.rawData).toString('hex')).join() !== fetched.roots.map((r) => Buffer.from(r.rawData).toString('hex')).join();
    await store(o, cm, text, fetched);
    const roots = await rootsStatus(fetched);
    if (changed) d.events.record(target(o), 'Normal', 'BundleUpdated', `accepted ${fetched.roots.length} root(s) of ${td} at spiffe_sequence ${fetched.sequence ?? 'none'}: ${roots.map((r) => r.fingerprint).join(', ')}`);
    d.metrics.federationLastRefresh.set({ trust_domain: td }, now.getTime() / 1000);
    const waitMs = nextRefreshMs(fetched.refreshHintSeconds, d.bounds);
    const { sequence: _, ...rest } = o.status ?? {};
    await writeStatus(o, {
      ...rest, observedGeneration: gen, lastAttempt: rfc3339(now), lastRefresh: rfc3339(now), nextRefresh: rfc3339(new Date(now.getTime() + waitMs)),
      ...(fetched.sequence !== undefined ? { sequence: fetched.sequence } : {}),
      roots, bundleConfigMap: federatedBundleConfigMapName(name),
      conditions: conditions(o,
        { type: 'Ready', status: 'True', reason: 'BundleHeld', message: `holding ${fetched.roots.length} root(s) of ${td}`, observedGeneration: gen },
        { type: 'Refreshed', status: 'True', reason: 'BundleAccepted', message: `fetched from ${o.spec.bundleEndpointURL}`, observedGeneration: gen }),
    });
    return { requeueAfter: waitMs };
  }

  return {
    reconcile,
    errorPolicy: (name, err) => {
      const o = d.federatedTrustDomains.get(name);
      return errorPolicy(d, err, {
        controller: FETCHER_CONTROLLER, key: name, fallbackReason: 'RefreshFailed',
        target: o ? target(o) : { apiVersion: API_VERSION, kind: CLUSTER_FEDERATED_TRUST_DOMAIN.kind, metadata: { name } },
        report: async (f) => {
          if (o) await writeStatus(o, { ...o.status, conditions: conditions(o, { type: 'Refreshed', status: 'False', reason: f.reason, message: f.message, observedGeneration: o.metadata.generation }) });
        },
      });
    },
  };
}
