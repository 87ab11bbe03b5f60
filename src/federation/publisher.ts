// The leader's half of serving a bundle (the `bundleendpoint` controller): for
// each TrustDomain with spec.federation.bundleEndpoint it keeps, in the
// operator's namespace, the bundle document every replica serves (ConfigMap
// spiffe-bundle-<name>, which is also the record of spiffe_sequence) and, for
// https_spiffe, the endpoint's SVID (Secret bundle-endpoint-<name>). A
// TrustDomain that opts out has both withdrawn. Replicas serve only what is
// recorded here (endpoint.ts), so one owner decides the sequence.
import { API_VERSION, LABEL_MANAGED_BY, MANAGED_BY_VALUE, SECRET_CERT, SECRET_KEY, TRUST_DOMAIN } from '../api/group.ts';
import type { ConfigMap, Secret, TrustDomain } from '../api/types.ts';
import type { ReconcileContext } from '../controller/context.ts';
import { errorPolicy, ReconcileFailure } from '../controller/failure.ts';
import type { Result } from '../controller/queue.ts';
import { ifExists, isNotFound } from '../kube/errors.ts';
import type { TrustStore } from '../trust/store.ts';
import { certificatesToPem } from '../pki/pem.ts';
import { decidePublication } from './publication.ts';
import { refreshHintMs } from '../api/defaults.ts';
import { issueEndpointSVID, svidRenewal } from './endpoint-svid.ts';
import { DOCUMENT_KEY, ENDPOINT_KEY, LABEL_BUNDLE_ENDPOINT, ROOTS_KEY, endpointSVIDSecretName, servedBundleConfigMapName } from './names.ts';

export const PUBLISHER_CONTROLLER = 'bundleendpoint';
const WEB_SECRET_RECHECK_MS = 60_000;

/** What every replica's endpoint needs to serve one trust domain (ConfigMap key endpoint.json). */
export interface ServedEndpoint {
  trustDomain: string;
  /** The kubernetes.io/tls Secret in the operator's namespace the endpoint presents. */
  secretName: string;
  dnsNames: string[];
}

export interface PublisherDeps extends ReconcileContext {
  api: {
    createConfigMap(cm: ConfigMap): Promise<ConfigMap>;
    replaceConfigMap(cm: ConfigMap): Promise<ConfigMap>;
    deleteConfigMap(namespace: string, name: string): Promise<unknown>;
    createSecret(s: Secret): Promise<Secret>;
    replaceSecret(s: Secret): Promise<Secret>;
    deleteSecret(namespace: string, name: string, uid?: string): Promise<unknown>;
    getSecret(namespace: string, name: string): Promise<Secret>;
  };
  configMaps: { get(name: string, namespace?: string): ConfigMap | undefined };
  store: TrustStore;
  operatorNamespace: string;
}

function owned(trustDomain: TrustDomain, name: string, namespace: string) {
  return {
    name, namespace,
    labels: { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, [LABEL_BUNDLE_ENDPOINT]: trustDomain.metadata.name! },
    // Garbage-collected with the TrustDomain; the sequence then restarts from the clock (publication.ts).
    ownerReferences: [{ apiVersion: API_VERSION, kind: TRUST_DOMAIN.kind, name: trustDomain.metadata.name!, uid: trustDomain.metadata.uid!, controller: true }],
  };
}

const sameData = (a: Record<string, string> | undefined, b: Record<string, string>) =>
  Object.keys(a ?? {}).length === Object.keys(b).length && Object.entries(b).every(([k, v]) => a?.[k] === v);

export function bundlePublisher(d: PublisherDeps): { reconcile: (name: string) => Promise<Result>; errorPolicy: (name: string, err: unknown) => Promise<Result> } {
  const ns = d.operatorNamespace;
  const ignoreMissing = (err: unknown) => { if (!isNotFound(err)) throw err; };

  async function withdraw(name: string): Promise<void> {
    if (d.configMaps.get(servedBundleConfigMapName(name), ns)) await d.api.deleteConfigMap(ns, servedBundleConfigMapName(name)).catch(ignoreMissing);
    if (d.secrets.get(endpointSVIDSecretName(name), ns)) await d.api.deleteSecret(ns, endpointSVIDSecretName(name)).catch(ignoreMissing);
  }

  /** Keeps the https_spiffe SVID current; returns when it is next due. */
  async function keepSVID(trustDomain: TrustDomain, dnsNames: string[]): Promise<number | undefined> {
    const name = trustDomain.metadata.name!;
    const state = d.store.get(name);
    if (!state?.signer) return undefined; // The CA is not signing (yet): the store's change brings this back.
    const secretName = endpointSVIDSecretName(name);
    const existing = d.secrets.get(secretName, ns);
    const cert = existing?.data?.[SECRET_CERT] && Buffer.from(existing.data[SECRET_CERT], 'base64').toString();
    const want = { trustDomain: trustDomain.spec.trustDomain, dnsNames, signer: state.signer };
    const renewal = await svidRenewal(cert || undefined, want, d.now());
    if (!renewal.reason) return renewal.dueAt!.getTime() - d.now().getTime();
    const svid = await issueEndpointSVID(want, d.now());
    const body: Secret = {
      apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls',
      metadata: { ...owned(trustDomain, secretName, ns), ...(existing ? { resourceVersion: existing.metadata.resourceVersion } : {}) },
      data: { [SECRET_CERT]: Buffer.from(svid.certificatePem).toString('base64'), [SECRET_KEY]: Buffer.from(svid.privateKeyPem).toString('base64') },
    };
    await (existing ? d.api.replaceSecret(body) : d.api.createSecret(body));
    d.log.info({ trustDomain: name, reason: renewal.reason, notAfter: svid.notAfter.toISOString() }, 'issued the bundle endpoint SVID');
    return undefined; // The Secret's watch event brings the next check.
  }

  async function reconcile(name: string): Promise<Result> {
    const trustDomain = d.trustDomains.get(name);
    const endpoint = trustDomain?.spec.federation?.bundleEndpoint;
    if (!trustDomain || trustDomain.metadata.deletionTimestamp || !endpoint) {
      await withdraw(name);
      return {};
    }
    const state = d.store.get(name);
    if (!state) return {}; // Not loaded yet (or failing, reported by the trust reconciler): the store's change brings this back.
    const dnsNames = endpoint.dnsNames ?? [];
    const https_spiffe = endpoint.profile.type === 'https_spiffe';
    let svidDueMs: number | undefined;
    if (https_spiffe) svidDueMs = await keepSVID(trustDomain, dnsNames);
    else if (d.secrets.get(endpointSVIDSecretName(name), ns)) await d.api.deleteSecret(ns, endpointSVIDSecretName(name)).catch(ignoreMissing);

    const cmName = servedBundleConfigMapName(name);
    const existing = d.configMaps.get(cmName, ns);
    const hintSeconds = Math.round(refreshHintMs(trustDomain)! / 1000);
    const publication = decidePublication(state.bundle, hintSeconds, existing?.data?.[DOCUMENT_KEY], d.now());
    const served: ServedEndpoint = {
      trustDomain: trustDomain.spec.trustDomain,
      secretName: https_spiffe ? endpointSVIDSecretName(name) : endpoint.profile.secretName!,
      dnsNames,
    };
    const data = { [DOCUMENT_KEY]: publication.document, [ROOTS_KEY]: certificatesToPem(state.bundle), [ENDPOINT_KEY]: JSON.stringify(served) };
    if (!existing || !sameData(existing.data, data)) {
      const body: ConfigMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { ...owned(trustDomain, cmName, ns), ...(existing ? { resourceVersion: existing.metadata.resourceVersion } : {}) }, data };
      await (existing ? d.api.replaceConfigMap(body) : d.api.createConfigMap(body));
      if (publication.changed) {
        d.events.record({ apiVersion: API_VERSION, kind: TRUST_DOMAIN.kind, metadata: trustDomain.metadata }, 'Normal', 'BundlePublished',
          `the bundle endpoint serves ${state.bundle.length} root(s) at spiffe_sequence ${publication.sequence}`);
      }
    }
    if (!https_spiffe) await checkWebSecret(endpoint.profile.secretName!, trustDomain.spec.trustDomain);
    return svidDueMs !== undefined ? { requeueAfter: Math.max(1000, svidDueMs) } : {};
  }

  /**
   * The admin's https_web Secret carries no operator label, so it is not watched: read here, and
   * a missing or incomplete one is reported (event, metric, log) and looked at again every minute.
   * The record is written first, so replicas serve as soon as the Secret appears.
   */
  async function checkWebSecret(secretName: string, trustDomainName: string): Promise<void> {
    const secret = await ifExists(() => d.api.getSecret(ns, secretName));
    if (secret?.data?.[SECRET_CERT] && secret.data[SECRET_KEY]) return;
    throw new ReconcileFailure('BundleEndpointSecretMissing',
      `the https_web bundle endpoint of ${trustDomainName} needs Secret ${ns}/${secretName} with tls.crt and tls.key; until it exists partners cannot fetch the bundle`, { retry: false });
  }

  return {
    reconcile,
    errorPolicy: (name, err) => {
      const trustDomain = d.trustDomains.get(name);
      return errorPolicy(d, err, {
        controller: PUBLISHER_CONTROLLER, key: name, fallbackReason: 'BundleEndpointFailed',
        target: { apiVersion: API_VERSION, kind: TRUST_DOMAIN.kind, metadata: trustDomain?.metadata ?? { name } },
        // The event, metric and log say it; TrustDomain status belongs to the trust reconciler (one writer).
        report: async () => undefined, recheckMs: WEB_SECRET_RECHECK_MS,
      });
    },
  };
}

