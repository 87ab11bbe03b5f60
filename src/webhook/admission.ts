// The two admission rules as docs/webhook.md states them, over AdmissionReview v1.
// Lookups are injected, so this reads as the rule and runs without a server
// (the I/O is here; the decisions in mutate.ts and validate.ts are pure):
//   When a Pod is created with label agentidentity.dev/agent → inject its identity.
//   When a Pod is created (or gains an ephemeral container) → refuse an identity that is not its own.
import { bundleConfigMapName, deliveryOf, trustDomainOf } from '../api/defaults.ts';
import type { AgentIdentity, ObjectMeta, TrustDomain } from '../api/types.ts';
import { toKubeError } from '../kube/errors.ts';
import { type InjectionSummary, injectIdentity, isObjectName, requestedIdentity } from './mutate.ts';
import { LABEL_AGENT } from './names.ts';
import { clip, describePod, type Pod } from './pod.ts';
import { needsIdentities, type PodAdmission, policyConfigMapToRead, requestedIdentityOf, secretsToRead, validatePod } from './validate.ts';
import type { JSONPatchOp } from './jsonpatch.ts';
import { identitiesForPod, type IdentityLookup } from './related.ts';
import type { ProxySidecarConfig } from './sidecar.ts';

export type { IdentityLookup };

export interface AdmissionRequest {
  uid: string;
  kind?: { group: string; version: string; kind: string };
  subResource?: string;
  namespace?: string;
  operation?: string;
  object?: unknown;
  /** The object before an UPDATE. */
  oldObject?: unknown;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; reason: string; message: string };
  patchType?: 'JSONPatch';
  patch?: string;
  warnings?: string[];
}

export interface AdmissionReview {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  request?: AdmissionRequest;
  response?: AdmissionResponse;
}

/** How an admission ended, for logs, counters and metrics. */
export interface Outcome {
  response: AdmissionResponse;
  result: 'allowed' | 'patched' | 'denied' | 'error';
  reason?: string;
  /** The underlying error of a failed lookup: for the operator's log only, never sent back. */
  error?: string;
  summary?: InjectionSummary;
}

export const allow = (uid: string, warnings?: string[]): Outcome => ({ result: 'allowed', response: { uid, allowed: true, ...(warnings?.length ? { warnings } : {}) } });

export const deny = (uid: string, reason: string, message: string): Outcome =>
  ({ result: 'denied', reason, response: { uid, allowed: false, status: { code: 403, reason: 'Forbidden', message } } });

/**
 * What went wrong with a lookup, in our words. The API server's own message is
 * for the operator's log (Outcome.error), not for whoever created the pod: it
 * can name paths and objects the requester asked us to look at.
 */
export function describeLookupError(err: unknown): string {
  const { code } = toKubeError(err);
  if (code === 0) return 'the API server did not answer in time';
  if (code === 401 || code === 403) return `the webhook is not allowed to read it (HTTP ${code}); check its RBAC`;
  return `the API server answered HTTP ${code}`;
}

/** Lookups that failed refuse the object: with failurePolicy Fail, nothing is admitted on an unverified guess. */
export const lookupFailed = (uid: string, what: string, err: unknown, subject = 'the pod'): Outcome => ({
  result: 'error', reason: 'LookupFailed', error: toKubeError(err).message,
  response: { uid, allowed: false, status: { code: 500, reason: 'InternalError', message: `${what}: ${describeLookupError(err)}; ${subject} was not admitted, retry shortly` } },
});

/** The API server always sends a valid one; anything else did not come from it, and must not reach a URL path. */
export const badNamespace = (req: AdmissionRequest): Outcome | undefined => (isObjectName(req.namespace!) ? undefined
  : deny(req.uid, 'InvalidNamespace', `request.namespace "${clip(req.namespace!, 63)}" is not a namespace name`));

/** The pod under review, or undefined for anything that is not a Pod (the configurations never send one). */
function podOf(req: AdmissionRequest): Pod | undefined {
  if (req.kind?.kind !== 'Pod' || req.kind.group !== '') return undefined;
  const pod = req.object as Pod | undefined;
  return pod?.spec?.containers ? pod : undefined;
}

export interface AdmissionOptions {
  identities: IdentityLookup;
  /** A Secret's metadata, never its data; undefined only when the API server answered 404. Only the validating webhook reads Secrets. */
  secretMetadata(namespace: string, name: string): Promise<ObjectMeta | undefined>;
  /** A ConfigMap's metadata, likewise; the validating webhook reads a labelled pod's policy ConfigMap. */
  configMapMetadata(namespace: string, name: string): Promise<ObjectMeta | undefined>;
  /** A TrustDomain; undefined only when the API server answered 404. */
  trustDomain(name: string): Promise<TrustDomain | undefined>;
  mountPath?: string;
  /** The identity proxy sidecar's image and resources; absent: pods of identities with spec.proxy are refused. */
  proxy?: ProxySidecarConfig;
}

/** Per review: enough to answer a pod with a few Secrets in one round trip, without a burst of reads per pod. */
const SECRET_READS_AT_ONCE = 8;

/** A Secret read that failed, with the name it was for; the API server's error is its cause. */
class SecretReadFailed extends Error {
  readonly secretName: string;
  constructor(secretName: string, cause: unknown) {
    super(`reading Secret "${secretName}" failed`, { cause });
    this.secretName = secretName;
  }
}

/** The metadata of each named Secret that exists; the first failed read stops the rest. */
async function readSecrets(lookup: AdmissionOptions['secretMetadata'], namespace: string, names: string[]): Promise<Map<string, ObjectMeta>> {
  const found = new Map<string, ObjectMeta>();
  const queue = [...names];
  async function worker(): Promise<void> {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
      let meta: ObjectMeta | undefined;
      try {
        meta = await lookup(namespace, name);
      } catch (err) {
        queue.length = 0;
        throw new SecretReadFailed(name, err);
      }
      if (meta) found.set(name, meta);
    }
  }
  await Promise.all(Array.from({ length: Math.min(SECRET_READS_AT_ONCE, names.length) }, worker));
  return found;
}

/** When a Pod is created with label agentidentity.dev/agent=<name> → inject that identity. */
export async function mutate(req: AdmissionRequest, opts: Pick<AdmissionOptions, 'identities' | 'mountPath' | 'proxy'>): Promise<Outcome> {
  const pod = podOf(req);
  const name = pod && requestedIdentity(pod);
  if (!pod || !name || !req.namespace) return allow(req.uid);
  const refused = badNamespace(req);
  if (refused) return refused;
  // Checked before the name goes into a URL path: "alpha/status" would read a subresource.
  if (!isObjectName(name)) {
    return deny(req.uid, 'InvalidIdentityName', `${describePod(pod)} has the label ${LABEL_AGENT}: "${clip(name, 63)}", which is not an AgentIdentity name; use the name of an AgentIdentity in namespace "${req.namespace}" (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters)`);
  }

  let identity: AgentIdentity | undefined;
  try {
    identity = await opts.identities.get(req.namespace, name);
  } catch (err) {
    return lookupFailed(req.uid, `could not read AgentIdentity "${name}" in namespace "${req.namespace}"`, err);
  }
  // No identity: nothing to inject. The validating webhook refuses the pod and says why.
  if (!identity) return allow(req.uid);

  const { patch, summary, refusal } = injectIdentity(pod, identity, { ...(opts.mountPath ? { mountPath: opts.mountPath } : {}), ...(opts.proxy ? { proxy: opts.proxy } : {}) });
  if (refusal) return deny(req.uid, refusal.reason, refusal.message);
  // A pod certificate is asked for by the pod's own kubelet: nothing to wait for before the pod exists.
  const warnings = identity.status?.spiffeID || !summary.secret ? [] : [`AgentIdentity "${name}" has no certificate yet; ${describePod(pod)} starts once Secret "${summary.secret}" exists`];
  if (patch.length === 0) return { ...allow(req.uid, warnings), summary };
  return {
    result: 'patched', summary,
    response: { uid: req.uid, allowed: true, patchType: 'JSONPatch', patch: encodePatch(patch), ...(warnings.length ? { warnings } : {}) },
  };
}

/** When a Pod is created → refuse it if it would hold an identity that is not its own. */
export async function validate(req: AdmissionRequest, opts: AdmissionOptions): Promise<Outcome> {
  const pod = podOf(req);
  if (!pod || !req.namespace || !needsIdentities(pod)) return allow(req.uid);
  const refused = badNamespace(req);
  if (refused) return refused;

  const toRead = secretsToRead(pod);
  if ('reason' in toRead) return deny(req.uid, toRead.reason, toRead.message);

  // The Secrets' owners decide, the identities say who those owners are: the Secrets first, then only the identities they and the pod name.
  let secrets: Map<string, ObjectMeta>;
  try {
    secrets = await readSecrets(opts.secretMetadata, req.namespace, toRead.names);
  } catch (err) {
    const failed = err as SecretReadFailed;
    return lookupFailed(req.uid, `could not read Secret "${failed.secretName}" in namespace "${req.namespace}"`, failed.cause);
  }
  let identities: AgentIdentity[];
  try {
    identities = await identitiesForPod(opts.identities, req.namespace, pod, toRead.names, secrets);
  } catch (err) {
    return lookupFailed(req.uid, `could not read the AgentIdentities in namespace "${req.namespace}" that the pod names`, err);
  }
  let bundle: PodAdmission['bundle'];
  let policyConfigMap: PodAdmission['policyConfigMap'];
  const identity = requestedIdentityOf(pod, identities);
  // Only a pod-certificate identity mounts ConfigMaps (the namespace's bundle copy, its policy): one more round trip, for those pods only.
  const policyName = policyConfigMapToRead(pod);
  if (identity && deliveryOf(identity) === 'PodCertificate') {
    const configMapName = bundleConfigMapName(trustDomainOf(identity));
    const [configMap, trustDomain, policy] = await Promise.allSettled([
      opts.configMapMetadata(req.namespace, configMapName), opts.trustDomain(trustDomainOf(identity)),
      policyName ? opts.configMapMetadata(req.namespace, policyName) : undefined,
    ]);
    if (configMap.status === 'rejected') return lookupFailed(req.uid, `could not read ConfigMap "${configMapName}" in namespace "${req.namespace}"`, configMap.reason);
    if (trustDomain.status === 'rejected') return lookupFailed(req.uid, `could not read TrustDomain "${trustDomainOf(identity)}"`, trustDomain.reason);
    if (policy.status === 'rejected') return lookupFailed(req.uid, `could not read ConfigMap "${policyName}" in namespace "${req.namespace}"`, policy.reason);
    // No TrustDomain yet: nothing can control the copy, and the operator publishes none until it exists.
    if (trustDomain.value) bundle = { trustDomainUID: trustDomain.value.metadata.uid!, ...(configMap.value ? { configMap: configMap.value } : {}) };
    policyConfigMap = policy.value;
  }
  const verdict = validatePod({
    pod, namespace: req.namespace, identities, secrets,
    ...(policyConfigMap ? { policyConfigMap } : {}), ...(bundle ? { bundle } : {}), ...(opts.mountPath ? { mountPath: opts.mountPath } : {}),
  });
  return verdict.allowed ? allow(req.uid) : deny(req.uid, verdict.reason, verdict.message);
}

export function encodePatch(patch: JSONPatchOp[]): string {
  return Buffer.from(JSON.stringify(patch)).toString('base64');
}

export function reviewResponse(response: AdmissionResponse): AdmissionReview {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}
