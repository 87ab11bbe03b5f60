// The PodCertificateRequest signer for agentidentity.dev/svid: read the
// request from the cache, decide, and answer it once through /status.
// Issuing first records the request in the ledger (finalizer, labels, root),
// so the certificate is known to root retirement and revocation before it
// exists; the ledger entry is released once the certificate has expired.
// A request with an answer gets no write but that release: a restart writes
// nothing to answered requests.

import { rfc3339, setCondition } from '../api/conditions.ts';
import { trustDomainOf } from '../api/defaults.ts';
import {
  AGENT_IDENTITY, ANNOTATION_ROOT_FINGERPRINT, API_VERSION, FINALIZER_POD_CERTIFICATE, LABEL_IDENTITY, LABEL_TRUST_DOMAIN, POD_CERTIFICATE_AGENT_ANNOTATION, SIGNER_NAME,
} from '../api/group.ts';
import type { AgentIdentity, Namespace, PodCertificateRequest, PodCertificateRequestStatus } from '../api/types.ts';
import { parseCertificateRequest } from '../pki/csr.ts';
import { issueLeaf } from '../pki/leaf.ts';
import { isNotFound } from '../kube/errors.ts';
import type { EventTarget } from '../kube/events.ts';
import type { ReconcileContext } from '../controller/context.ts';
import { errorPolicy } from '../controller/failure.ts';
import { wait, type Result } from '../controller/queue.ts';
import { splitKey } from '../controller/controller.ts';
import type { TrustStore } from '../trust/store.ts';
import { spiffeIDFor } from '../identity/spiffe-id.ts';
import { beginRefreshAt, decide, tooShort, type Decision } from './decide.ts';
import { answered } from './ledger.ts';

export interface SignerDeps extends Pick<ReconcileContext, 'trustDomains' | 'events' | 'metrics' | 'log' | 'now'> {
  api: {
    replacePodCertificateRequest(pcr: PodCertificateRequest): Promise<PodCertificateRequest>;
    replacePodCertificateRequestStatus(pcr: PodCertificateRequest): Promise<PodCertificateRequest>;
  };
  requests: { get(name: string, namespace?: string): PodCertificateRequest | undefined };
  identities: { get(name: string, namespace?: string): AgentIdentity | undefined };
  namespaces: { get(name: string): Namespace | undefined };
  store: TrustStore;
}

const CONTROLLER = 'podcertificaterequest';

/** Denied or Failed, with a reason from decide.ts or a failure's own (e.g. InvalidSpiffeID). */
interface Answer { kind: 'Deny' | 'Fail'; reason: string; message: string }

/** The reconcile and the error policy the controller is declared with (operator.ts). */
export function signerReconciler(d: SignerDeps): { reconcile: (key: string) => Promise<Result>; errorPolicy: (key: string, err: unknown) => Promise<Result> } {
  return {
    reconcile: async (key) => {
      const [namespace, name] = splitKey(key);
      const pcr = d.requests.get(name, namespace);
      if (!pcr || pcr.spec.signerName !== SIGNER_NAME) return {};
      const now = d.now();
      if (answered(pcr)) return releaseWhenExpired(d, pcr, now);
      const identity = identityOf(d, pcr);
      const trustDomainName = identity && trustDomainOf(identity);
      const decision = decide({
        pcr, identity,
        trustDomainObject: trustDomainName ? d.trustDomains.get(trustDomainName) : undefined,
        trustDomain: trustDomainName ? d.store.get(trustDomainName) : undefined,
        trustDomainFailure: trustDomainName ? d.store.failure(trustDomainName) : undefined,
        // A namespace the cache has not seen yet carries at least the label the API server gives every namespace.
        namespaceLabels: d.namespaces.get(namespace)?.metadata.labels ?? { 'kubernetes.io/metadata.name': namespace },
        key: await parseCertificateRequest(pcr.spec.stubPKCS10Request),
      });
      switch (decision.kind) {
        case 'Done':
          return {};
        case 'Wait':
          return wait();
        case 'Deny':
        case 'Fail':
          await answer(d, pcr, identity, decision);
          return {};
        case 'Issue':
          return issue(d, pcr, decision, now);
      }
    },
    errorPolicy: async (key, err) => {
      const [namespace, name] = splitKey(key);
      const pcr = d.requests.get(name, namespace);
      if (!pcr) return { outcome: 'success' };
      const identity = identityOf(d, pcr);
      return errorPolicy(d, err, {
        controller: CONTROLLER, key, target: identity ? identityRef(identity) : pcrRef(pcr), fallbackReason: 'SigningFailed',
        // The request is gone. (Someone answered first, or our cache was behind: a conflict the failure policy requeues.)
        settle: (e) => (isNotFound(e) ? { outcome: 'success' } : undefined),
        // A failure that waits on a change (e.g. an invalid SPIFFE ID template) answers the request: the kubelet asks again later.
        report: async (f) => { if (!f.retry && !answered(pcr)) await answer(d, pcr, identity, { kind: 'Fail', reason: f.reason, message: f.message }); },
      });
    },
  };
}

/** The AgentIdentity the pod's request names (the webhook's annotation), if it exists. */
function identityOf(d: SignerDeps, pcr: PodCertificateRequest): AgentIdentity | undefined {
  const agent = pcr.spec.unverifiedUserAnnotations?.[POD_CERTIFICATE_AGENT_ANNOTATION];
  return agent ? d.identities.get(agent, pcr.metadata.namespace) : undefined;
}

async function issue(d: SignerDeps, pcr: PodCertificateRequest, decision: Extract<Decision, { kind: 'Issue' }>, now: Date): Promise<Result> {
  const started = performance.now();
  const { identity, trustDomain } = decision;
  const spiffeID = spiffeIDFor(trustDomain, identity);
  // The ledger entry first: a certificate exists only once it is on record.
  const recorded = await record(d, pcr, identity, trustDomain.name, trustDomain.activeRootFingerprint);
  const leaf = await issueLeaf(decision.signer, { spiffeID, dnsNames: identity.spec.dnsNames ?? [], publicKey: decision.publicKey, durationMs: decision.durationMs, now });
  if (tooShort(leaf)) {
    await answer(d, recorded, identity, { kind: 'Fail', reason: 'CANotReady', message: `TrustDomain "${trustDomain.name}"'s intermediate expires at ${rfc3339(leaf.notAfter)}, too soon for the API server's 1h minimum; it is renewed shortly` });
    return {};
  }
  const refreshAt = beginRefreshAt(identity, leaf);
  const message = `issued ${spiffeID} serial ${leaf.serialNumber} to pod ${pcr.metadata.namespace}/${pcr.spec.podName} on node ${pcr.spec.nodeName}, valid until ${rfc3339(leaf.notAfter)}, refresh from ${rfc3339(refreshAt)}`;
  await d.api.replacePodCertificateRequestStatus({
    ...recorded,
    status: {
      conditions: conditionsOf('Issued', 'Issued', message, now), certificateChain: leaf.certificatePem,
      notBefore: rfc3339(leaf.notBefore), beginRefreshAt: rfc3339(refreshAt), notAfter: rfc3339(leaf.notAfter),
    },
  });
  d.metrics.podCertificates.inc({ trust_domain: trustDomain.name, result: 'issued', reason: 'Issued' });
  d.metrics.podCertificateIssuanceDuration.observe({ trust_domain: trustDomain.name }, (performance.now() - started) / 1000);
  d.log.info({ request: `${pcr.metadata.namespace}/${pcr.metadata.name}`, identity: identity.metadata.name, serial: leaf.serialNumber, notAfter: leaf.notAfter }, 'issued pod certificate');
  d.events.record(identityRef(identity), 'Normal', 'PodCertificateIssued', `PodCertificateRequest ${pcr.metadata.name}: ${message}`);
  // Back at notAfter, to release the ledger entry.
  return { requeueAfter: Math.max(1, leaf.notAfter.getTime() - now.getTime()) };
}

/** Finalizer, labels and root on the request, written only when they differ (a retry after a lost status write). */
async function record(d: SignerDeps, pcr: PodCertificateRequest, identity: AgentIdentity, trustDomain: string, rootFingerprint: string): Promise<PodCertificateRequest> {
  const m = pcr.metadata;
  const want = { [LABEL_TRUST_DOMAIN]: trustDomain, [LABEL_IDENTITY]: identity.metadata.name! };
  const onRecord = m.finalizers?.includes(FINALIZER_POD_CERTIFICATE) && m.annotations?.[ANNOTATION_ROOT_FINGERPRINT] === rootFingerprint
    && Object.entries(want).every(([k, v]) => m.labels?.[k] === v);
  if (onRecord) return pcr;
  return d.api.replacePodCertificateRequest({
    ...pcr,
    metadata: {
      ...m, labels: { ...m.labels, ...want }, annotations: { ...m.annotations, [ANNOTATION_ROOT_FINGERPRINT]: rootFingerprint },
      finalizers: [...(m.finalizers ?? []).filter((f) => f !== FINALIZER_POD_CERTIFICATE), FINALIZER_POD_CERTIFICATE],
    },
  });
}

/** Denied or Failed: the condition only, as the API requires; told as an event and a metric too. */
async function answer(d: SignerDeps, pcr: PodCertificateRequest, identity: AgentIdentity | undefined, a: Answer): Promise<void> {
  const type = a.kind === 'Deny' ? 'Denied' : 'Failed';
  await d.api.replacePodCertificateRequestStatus({ ...pcr, status: { conditions: conditionsOf(type, a.reason, a.message, d.now()) } });
  d.metrics.podCertificates.inc({ trust_domain: identity ? trustDomainOf(identity) : '', result: type.toLowerCase(), reason: a.reason });
  d.log.info({ request: `${pcr.metadata.namespace}/${pcr.metadata.name}`, pod: pcr.spec.podName, reason: a.reason, err: a.message }, `pod certificate ${type.toLowerCase()}`);
  d.events.record(identity ? identityRef(identity) : pcrRef(pcr), 'Warning', a.reason, `PodCertificateRequest ${pcr.metadata.name} from pod ${pcr.spec.podName} ${type.toLowerCase()}: ${a.message}`);
}

/** An answered request keeps the ledger finalizer until its certificate has expired (or, never issued, not at all). */
async function releaseWhenExpired(d: SignerDeps, pcr: PodCertificateRequest, now: Date): Promise<Result> {
  if (!pcr.metadata.finalizers?.includes(FINALIZER_POD_CERTIFICATE)) return {};
  const notAfter = Date.parse(pcr.status?.notAfter ?? '');
  if (notAfter > now.getTime()) return { requeueAfter: notAfter - now.getTime() };
  await d.api.replacePodCertificateRequest({ ...pcr, metadata: { ...pcr.metadata, finalizers: pcr.metadata.finalizers.filter((f) => f !== FINALIZER_POD_CERTIFICATE) } });
  return {};
}

function conditionsOf(type: string, reason: string, message: string, now: Date) {
  return setCondition([], { type, status: 'True', reason, message }, now) satisfies PodCertificateRequestStatus['conditions'];
}

function identityRef(identity: AgentIdentity): EventTarget {
  return { apiVersion: API_VERSION, kind: AGENT_IDENTITY.kind, metadata: identity.metadata };
}

function pcrRef(pcr: PodCertificateRequest): EventTarget {
  return { apiVersion: pcr.apiVersion ?? 'certificates.k8s.io/v1', kind: 'PodCertificateRequest', metadata: pcr.metadata };
}

