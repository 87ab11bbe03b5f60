// AgentIdentity reconciler: observe the Secret, decide with the ordered
// checks, act (issue, resync or revoke), report (status, event, metrics).
// Level-based: it reads only cached state and writes only differences, so a
// second run in a row makes no API write. What the pods need besides the
// certificate is published with it: policy.json (in the Secret, or in a
// ConfigMap for pod certificates), and with spec.proxy the NetworkPolicy that
// leaves the proxy the only way in.
import { firstViolation, type Violation } from '../controller/checks.ts';
import { API_VERSION, AGENT_IDENTITY, LABEL_MANAGED_BY, MANAGED_BY_VALUE, ANNOTATION_NOT_AFTER, FINALIZER_REVOKE } from '../api/group.ts';
import { deliveryOf, policyConfigMapName, proxyNetworkPolicyName, secretNameOf, trustDomainOf, DEFAULT_DURATION } from '../api/defaults.ts';
import { parseDuration, formatDuration } from '../api/duration.ts';
import type { AgentIdentity, AgentIdentityStatus, ConfigMap, Namespace, NetworkPolicy, Secret } from '../api/types.ts';
import type { DenyListEntry } from '../api/documents.ts';
import type { SpiffeID } from '../pki/spiffeid.ts';
import { spiffeIDFor } from './spiffe-id.ts';
import { ifExists, isAlreadyExists, isConflict, isNotFound } from '../kube/errors.ts';
import { ReconcileFailure, errorPolicy } from '../controller/failure.ts';
import { jsonEqual, replacingPatch } from '../controller/equal.ts';
import { wait, type Result } from '../controller/queue.ts';
import { objectKey, splitKey } from '../controller/controller.ts';
import type { TrustDomainState, TrustStore } from '../trust/store.ts';
import type { ReconcileContext } from '../controller/context.ts';
import { CHECKS, type IssuanceReason } from './checks.ts';
import { gatherCheckInput, type Gathered } from './gather.ts';
import { existingKeyPair, observeSecret } from './observe.ts';
import { issueIdentity } from './issue.ts';
import { renewalTime } from './renewal.ts';
import { denyEntryOf, denyEntryOfPodCertificate, type PodCertificateOnRecord, revoke } from './revoke.ts';
import { desiredSecret, keptLeaf, secretDiffers, type SecretLeaf } from './secret.ts';
import { readyStatus, failedStatus, podCertificateStatus, suspendedStatus, withoutCertificate } from './status.ts';
import { desiredPolicy, desiredPolicyConfigMap, type DesiredPolicy } from './policy.ts';
import { candidatePeers, policyDependencies } from './dependencies.ts';
import { bundleConfigMapName } from '../api/defaults.ts';
import { writeOwnedConfigMap } from '../trust/owned-configmap.ts';
import { configMapDiffers } from '../trust/publish.ts';
import { writeOwned } from '../controller/owned.ts';
import { desiredNetworkPolicy, networkPolicyDiffers } from './network-policy.ts';
import { APP_PORT_CONDITION, appPortCondition, type AppPortProbe } from './app-port.ts';
import { getCondition, removeCondition, setCondition } from '../api/conditions.ts';
import { controllerOf, describeController, isControlledBy } from '../api/owner.ts';
import { foreignClaim, SECRET_OWNED_BY_ANOTHER } from './ownership.ts';
import { secretKeyOf } from './watches.ts';
import { tenancyViolation } from '../policy/tenancy.ts';

export interface IdentityReconcilerDeps extends ReconcileContext {
  api: {
    getSecret(namespace: string, name: string): Promise<Secret>;
    createSecret(secret: Secret): Promise<Secret>;
    replaceSecret(secret: Secret): Promise<Secret>;
    deleteSecret(namespace: string, name: string, uid?: string): Promise<unknown>;
    getConfigMap(namespace: string, name: string): Promise<ConfigMap>;
    createConfigMap(cm: ConfigMap): Promise<ConfigMap>;
    replaceConfigMap(cm: ConfigMap): Promise<ConfigMap>;
    getNetworkPolicy(namespace: string, name: string): Promise<NetworkPolicy>;
    createNetworkPolicy(np: NetworkPolicy): Promise<NetworkPolicy>;
    replaceNetworkPolicy(np: NetworkPolicy): Promise<NetworkPolicy>;
    deleteNetworkPolicy(namespace: string, name: string, uid?: string): Promise<unknown>;
    patchIdentityStatus(namespace: string, name: string, status: AgentIdentityStatus): Promise<unknown>;
    patchIdentityMetadata(namespace: string, name: string, metadata: { finalizers: string[]; resourceVersion?: string }): Promise<unknown>;
  };
  identities: { get(name: string, namespace?: string): AgentIdentity | undefined; list(namespace?: string): readonly AgentIdentity[] };
  /** The identities naming each Secret, by `namespace/secretName` (watches.ts bySecret): who else claims one not yet made. */
  claims: { of(secretKey: string): readonly AgentIdentity[] };
  configMaps: { get(name: string, namespace?: string): ConfigMap | undefined };
  /** The operator's NetworkPolicies; undefined where it may not watch them (RBAC from before spec.proxy). */
  networkPolicies?: { get(name: string, namespace?: string): NetworkPolicy | undefined };
  namespaces: { get(name: string): Namespace | undefined; list(): readonly Namespace[] };
  /** Only whether one exists is read. */
  serviceAccounts: { get(name: string, namespace?: string): unknown };
  /** The signer's ledger: every pod certificate that may still be valid (signer/ledger.ts ledgerOf). */
  podCertificates: {
    live(now: Date, match: (c: PodCertificateOnRecord) => boolean): PodCertificateOnRecord[];
    issuing(namespace: string, identity: string): boolean;
  };
  /** The app-port probes of proxied pods (app-port-probe.ts); undefined where the operator may not watch pods. */
  appPorts?: { of(identity: string): readonly AppPortProbe[] };
  /** Whether the signer runs: false where the API server serves no PodCertificateRequests (or may not be watched). */
  signing: boolean;
  store: TrustStore;
  operatorNamespace: string;
  /** Shortest leaf lifetime the operator accepts (10m in production; tests lower it). */
  minDurationMs: number;
}

const CONTROLLER = 'agentidentity';
const POLICY_CONFLICT = 'PolicyConfigMapConflict';

/** The reconcile and the error policy the controller is declared with (operator.ts). */
export function identityReconciler(d: IdentityReconcilerDeps): { reconcile: (key: string) => Promise<Result>; errorPolicy: (key: string, err: unknown) => Promise<Result> } {
  return {
    reconcile: async (key) => {
      const [namespace, name] = splitKey(key);
      const identity = d.identities.get(name, namespace);
      if (!identity) {
        // The Secret goes with it through its owner reference (garbage collection).
        d.metrics.forgetIdentity(namespace, name);
        return {};
      }
      return reconcileIdentity(d, identity, d.now());
    },
    errorPolicy: (key, err) => identityErrorPolicy(d, key, err),
  };
}

/** The steps in order: each either ends the reconcile with its result or hands on to the next. */
async function reconcileIdentity(d: IdentityReconcilerDeps, identity: AgentIdentity, now: Date): Promise<Result> {
  if (identity.metadata.deletionTimestamp) return finalize(d, identity, now);
  // Its TrustDomain is still loading (e.g. just after a restart): loading it
  // re-queues this identity, and reporting NotReady now would be a false flap.
  if (trustDomainPending(d, identity)) return wait();
  const trustDomain = trustDomainFor(d, identity);
  await addFinalizer(d, identity);
  // Its pods' kubelets hold the keys and ask the signer: no Secret is made,
  // and one that exists is left alone (it is not the operator's to delete).
  if (deliveryOf(identity) === 'PodCertificate') return podCertificates(d, identity, trustDomain, now);
  const secret = d.secrets.get(secretNameOf(identity), identity.metadata.namespace);
  refuseForeignClaim(d, identity, secret);
  if (identity.spec.suspended) return suspend(d, identity, trustDomain, await ownSecret(d, identity, secret), now);
  refuseUnlessAdmitted(d, identity);
  return issueOrKeep(d, identity, trustDomain, secret, now);
}

async function addFinalizer(d: IdentityReconcilerDeps, identity: AgentIdentity): Promise<void> {
  const m = identity.metadata;
  if (m.finalizers?.includes(FINALIZER_REVOKE)) return;
  await ofIdentity(d.api.patchIdentityMetadata(m.namespace!, m.name!, { finalizers: [...(m.finalizers ?? []), FINALIZER_REVOKE], resourceVersion: m.resourceVersion }));
}

/** Retried with backoff: another's Secret changing, or an older claim going away, queues only that other identity. */
function refuseForeignClaim(d: IdentityReconcilerDeps, identity: AgentIdentity, secret: Secret | undefined): void {
  const claim = foreignClaim(identity, secret, secret ? [] : d.claims.of(secretKeyOf(identity)));
  if (claim) throw new Refused(SECRET_OWNED_BY_ANOTHER, claim);
}

/**
 * Secret delivery: decide by the ordered checks, issue or keep the leaf with
 * the policy.json beside it (one Secret write for both), then a Ready status.
 */
async function issueOrKeep(d: IdentityReconcilerDeps, identity: AgentIdentity, trustDomain: TrustDomainState, secret: Secret | undefined, now: Date): Promise<Result> {
  const durationMs = durationOf(identity, d.minDurationMs);
  const spiffeID = refusing(() => spiffeIDFor(trustDomain, identity));
  const policy = policyOf(d, identity, trustDomain, spiffeID);
  const gathered = await gatherCheckInput(identity, secret, trustDomain, spiffeID, now);
  const violation = firstViolation(CHECKS, gathered.input);
  const kept = violation
    ? await issue(d, identity, trustDomain, secret, gathered, violation, { spiffeID, durationMs, now, policyJson: policy.json })
    : await keep(d, identity, trustDomain, secret!, gathered, spiffeID, policy.json);
  await reportReady(d, identity, trustDomain, kept, policy, now);
  // A fresh issuance is re-checked at its own renewal time; a pending rotation may come sooner.
  const next = Math.min(kept.renewAt.getTime(), violation ? Infinity : (gathered.input.rotationReissueAt?.getTime() ?? Infinity));
  return { requeueAfter: Math.max(1, next - d.now().getTime()) };
}

/** The leaf that ends up in the Secret, and its renewal time: computed once per certificate. */
interface LeafInSecret { leaf: SecretLeaf; renewAt: Date }

/** A check was violated: issue a new leaf into the Secret, and tell it (metric, log, event). */
async function issue(
  d: IdentityReconcilerDeps, identity: AgentIdentity, trustDomain: TrustDomainState, secret: Secret | undefined, gathered: Gathered,
  violation: Violation<IssuanceReason>, o: { spiffeID: SpiffeID; durationMs: number; now: Date; policyJson: string },
): Promise<LeafInSecret> {
  if (!trustDomain.signer) {
    throw new ReconcileFailure('WaitingForCA', `${violation.message}, but the CA is changing and may sign only once its new roots are in every bundle copy`, { retry: false });
  }
  const started = performance.now();
  const leaf = await signAndWrite(d, identity, trustDomain, secret, gathered, violation, o).catch((err: unknown) => {
    if (!isConflict(err)) d.metrics.issuances.inc({ trust_domain: trustDomain.name, reason: violation.reason, result: 'error' });
    throw err;
  });
  d.metrics.issuances.inc({ trust_domain: trustDomain.name, reason: violation.reason, result: 'success' });
  d.metrics.issuanceDuration.observe({ trust_domain: trustDomain.name }, (performance.now() - started) / 1000);
  d.log.info({ identity: objectKey(identity), reason: violation.reason, serial: leaf.serialNumber, notAfter: leaf.notAfter }, 'issued certificate');
  // A re-issue is history the status keeps only the last of, so it gets an Event (naming the serial replaced).
  // A first certificate is not: Ready=True reason Issued, the serial and lastIssuanceReason say all the Event
  // would, and it was one API write in four per new identity (issue 20).
  const replaced = identity.status?.serialNumber;
  if (replaced) {
    d.events.record(ref(identity), 'Normal', 'Issued',
      `${violation.message}; issued ${leaf.spiffeID} serial ${leaf.serialNumber} (replacing ${replaced}), valid until ${leaf.notAfter.toISOString()}`);
  }
  return { leaf, renewAt: renewalTime(identity.spec, leaf) };
}

async function signAndWrite(
  d: IdentityReconcilerDeps, identity: AgentIdentity, trustDomain: TrustDomainState, secret: Secret | undefined, gathered: Gathered,
  violation: Violation<IssuanceReason>, o: { spiffeID: SpiffeID; durationMs: number; now: Date; policyJson: string },
): Promise<SecretLeaf> {
  const { input } = gathered;
  const existingKey = input.desired.key.rotationPolicy === 'Never' ? await existingKeyPair(secret) : undefined;
  const issued = await issueIdentity(trustDomain.signer!, { ...input.desired, durationMs: o.durationMs, now: o.now }, existingKey);
  const leaf: SecretLeaf = {
    spiffeID: o.spiffeID, serialNumber: issued.serialNumber, notBefore: issued.notBefore, notAfter: issued.notAfter,
    reason: violation.reason, rootFingerprint: trustDomain.activeRootFingerprint, renewalRequest: input.renewal?.requested,
  };
  await writeSecret(d, desiredSecret(identity, secret, leaf, trustDomain.bundlePem, o.policyJson, issued), secret);
  return leaf;
}

/** Same certificate, but labels, annotations, the bundle or the policy may have moved. */
async function keep(d: IdentityReconcilerDeps, identity: AgentIdentity, trustDomain: TrustDomainState, secret: Secret, gathered: Gathered, spiffeID: SpiffeID, policyJson: string): Promise<LeafInSecret> {
  const leaf = keptLeaf(secret, gathered.input.secret.leaf!, spiffeID, gathered.rootFingerprint ?? '');
  const want = desiredSecret(identity, secret, leaf, trustDomain.bundlePem, policyJson);
  if (secretDiffers(secret, want)) await writeSecret(d, want, secret);
  return { leaf, renewAt: gathered.input.renewalTime! };
}

async function reportReady(d: IdentityReconcilerDeps, identity: AgentIdentity, trustDomain: TrustDomainState, { leaf, renewAt }: LeafInSecret, policy: DesiredPolicy, now: Date): Promise<void> {
  const { namespace, name } = identity.metadata as { namespace: string; name: string };
  await keepLegacyPolicyConfigMap(d, identity, policy.json);
  await syncNetworkPolicy(d, identity);
  await writeStatus(d, identity, readyStatus(identity, { ...leaf, renewalTime: renewAt, secretName: secretNameOf(identity), caFingerprint: trustDomain.caFingerprint, policyPeers: policy.peers }, now));
  d.metrics.certificateExpiration.set({ namespace, name }, leaf.notAfter.getTime() / 1000);
  d.metrics.certificateRenewal.set({ namespace, name }, renewAt.getTime() / 1000);
  d.metrics.setReady(namespace, name, 'True');
}

/**
 * What a thrown error means (failure.ts's policy): the identity gone or a
 * lost write race settle it; any other failure is reported on the identity.
 * Whether its current certificate still serves is judged here, from the
 * cache, so the Ready condition tells the truth whichever step failed.
 */
async function identityErrorPolicy(d: IdentityReconcilerDeps, key: string, err: unknown): Promise<Result> {
  const [namespace, name] = splitKey(key);
  const identity = d.identities.get(name, namespace);
  if (!identity || err instanceof IdentityGone) {
    d.log.debug({ identity: key }, 'identity is gone; nothing left to reconcile');
    return { outcome: 'success' };
  }
  const now = d.now();
  return errorPolicy(d, err, {
    controller: CONTROLLER, key, target: ref(identity), fallbackReason: 'IssuanceFailed',
    // A write conflict (a stale cache) is the failure policy's: requeued at once, never reported.
    report: async (f) => {
      const stillValid = !(err instanceof Refused) && await certificateServes(d, identity, now);
      if (!stillValid) d.metrics.setReady(namespace, name, 'False');
      // Only real attempts count; a failure that waits for a change is reported once.
      const status = f.retry ? failedStatus(identity, f.reason, f.message, stillValid, now)
        : { ...failedStatus(identity, f.reason, f.message, stillValid, now), failedIssuanceAttempts: identity.status?.failedIssuanceAttempts, lastFailureTime: identity.status?.lastFailureTime };
      if (f.reason === SECRET_OWNED_BY_ANOTHER) d.metrics.forgetCertificate(namespace, name);
      await writeStatus(d, identity, f.reason === SECRET_OWNED_BY_ANOTHER ? withoutCertificate(status) : status);
    },
  });
}

/** Whether the identity's Secret holds a certificate its agents can still use: one that verifies against its TrustDomain with the key it holds. */
async function certificateServes(d: IdentityReconcilerDeps, identity: AgentIdentity, now: Date): Promise<boolean> {
  // Being revoked (suspended, deleted), or delivered by pod certificates: no Secret to vouch for.
  if (deliveryOf(identity) !== 'Secret' || identity.spec.suspended || identity.metadata.deletionTimestamp) return false;
  const secret = d.secrets.get(secretNameOf(identity), identity.metadata.namespace);
  const trustDomain = d.store.get(trustDomainOf(identity));
  // No CA to judge by (TrustDomainNotReady): a certificate that has not expired still works, so a broken CA does not flip every identity.
  if (!trustDomain) return notExpired(secret, now);
  const { observed } = await observeSecret(secret, { roots: trustDomain.bundle, pem: trustDomain.bundlePem }, now);
  return observed.trust?.ok === true && observed.keyMatchesLeaf === true;
}

/** The identity itself is refused (its spec, its tenancy, a Secret or ConfigMap that is another's): not Ready, whatever its Secret holds. */
class Refused extends ReconcileFailure {}

/** A failure of a step that judges the identity itself, as a refusal. */
function refusing<T>(step: () => T): T {
  try {
    return step();
  } catch (err) {
    if (err instanceof ReconcileFailure) throw new Refused(err.reason, err.message, { retry: err.retry });
    throw err;
  }
}

/** Deletion: deny-list the certificates still valid, then let the identity (and by GC its Secret) go. */
async function finalize(d: IdentityReconcilerDeps, identity: AgentIdentity, now: Date): Promise<Result> {
  if (!identity.metadata.finalizers?.includes(FINALIZER_REVOKE)) return {};
  const secret = deliveryOf(identity) === 'Secret' ? await ownSecret(d, identity, d.secrets.get(secretNameOf(identity), identity.metadata.namespace)) : undefined;
  const trustDomain = d.store.get(trustDomainOf(identity));
  const fromSecret = secret ? denyEntryOf(secret, 'Deleted', now) : undefined;
  const entries = [...(fromSecret ? [fromSecret] : []), ...podCertificateEntries(d, identity, 'Deleted', now)];
  if (entries.length && trustDomain) await revoke(d, trustDomain, entries);
  if (stillIssuing(d, identity)) return wait(ISSUING_RECHECK_MS);
  await ofIdentity(d.api.patchIdentityMetadata(identity.metadata.namespace!, identity.metadata.name!, {
    finalizers: identity.metadata.finalizers.filter((f) => f !== FINALIZER_REVOKE), resourceVersion: identity.metadata.resourceVersion,
  }));
  if (entries.length) {
    d.log.info({ identity: `${identity.metadata.namespace}/${identity.metadata.name}`, serials: entries.map((e) => e.serialNumber) }, 'revoked certificates of deleted identity');
  }
  return {};
}

/** How soon to look again while the signer is answering a request of the identity being revoked: it takes milliseconds. */
const ISSUING_RECHECK_MS = 250;

/** A request the signer recorded but has not answered may still get a certificate: revocation is not done until it is answered. */
function stillIssuing(d: IdentityReconcilerDeps, identity: AgentIdentity): boolean {
  return d.podCertificates.issuing(identity.metadata.namespace!, identity.metadata.name!);
}

/** Deny-list entries for the identity's pod certificates that may still be valid (the signer's ledger). */
function podCertificateEntries(d: IdentityReconcilerDeps, identity: AgentIdentity, reason: string, now: Date): DenyListEntry[] {
  const { namespace, name } = identity.metadata;
  return d.podCertificates.live(now, (c) => c.namespace === namespace && c.identity === name && c.trustDomain === trustDomainOf(identity))
    .map((c) => denyEntryOfPodCertificate(c, reason));
}

async function suspend(d: IdentityReconcilerDeps, identity: AgentIdentity, trustDomain: TrustDomainState, secret: Secret | undefined, now: Date): Promise<Result> {
  const fromSecret = secret ? denyEntryOf(secret, 'Suspended', now) : undefined;
  const fromPods = podCertificateEntries(d, identity, 'Suspended', now);
  const entries = [...(fromSecret ? [fromSecret] : []), ...fromPods];
  if (entries.length) await revoke(d, trustDomain, entries);
  if (secret) {
    await ifExists(() => d.api.deleteSecret(secret.metadata.namespace!, secret.metadata.name!, secret.metadata.uid));
    d.events.record(ref(identity), 'Normal', 'Suspended', `revoked serial ${fromSecret?.serialNumber ?? '(expired)'} and removed Secret ${secret.metadata.name}`);
  }
  if (stillIssuing(d, identity)) return wait(ISSUING_RECHECK_MS);
  if (fromPods.length) d.events.record(ref(identity), 'Normal', 'Suspended', `revoked ${fromPods.length} pod certificate(s), serials ${fromPods.map((e) => e.serialNumber).join(', ')}`);
  const { namespace, name } = identity.metadata as { namespace: string; name: string };
  d.metrics.setReady(namespace, name, 'False');
  d.metrics.forgetCertificate(namespace, name);
  await writeStatus(d, identity, suspendedStatus(identity, now));
  return {};
}

/** PodCertificate delivery: the policy ConfigMap and a status that names the signer; the signer issues. */
async function podCertificates(d: IdentityReconcilerDeps, identity: AgentIdentity, trustDomain: TrustDomainState, now: Date): Promise<Result> {
  if (identity.spec.suspended) return suspend(d, identity, trustDomain, undefined, now);
  refuseUnlessAdmitted(d, identity);
  if (!d.signing) {
    throw new ReconcileFailure('PodCertificatesUnavailable',
      'delivery is PodCertificate, but the operator cannot answer PodCertificateRequests: the API server serves none (Kubernetes 1.37+ is needed) or the operator may not list them (see its log); use delivery Secret on this cluster', { retry: false });
  }
  const spiffeID = spiffeIDFor(trustDomain, identity);
  const policy = policyOf(d, identity, trustDomain, spiffeID);
  await syncPolicyConfigMap(d, identity, policy.json);
  await syncNetworkPolicy(d, identity);
  await writeStatus(d, identity, podCertificateStatus(identity, { spiffeID, caFingerprint: trustDomain.caFingerprint, policyPeers: policy.peers }, now));
  const { namespace, name } = identity.metadata as { namespace: string; name: string };
  d.metrics.forgetCertificate(namespace, name);
  d.metrics.setReady(namespace, name, 'True');
  return {};
}

/**
 * The Secret revocation may act on: the cached one, else read (an owned Secret
 * whose label was stripped is not cached), and only if its controller is this
 * identity's UID, never one it merely names.
 */
async function ownSecret(d: IdentityReconcilerDeps, identity: AgentIdentity, cached: Secret | undefined): Promise<Secret | undefined> {
  const secret = cached ?? await ifExists(() => d.api.getSecret(identity.metadata.namespace!, secretNameOf(identity)));
  return secret && isControlledBy(secret, identity.metadata.uid) ? secret : undefined;
}

/** The identity's policy.json, resolved against the identities its rules can name (dependencies.ts). */
function policyOf(d: IdentityReconcilerDeps, identity: AgentIdentity, trustDomain: TrustDomainState, spiffeID: SpiffeID): DesiredPolicy {
  // Listing every identity for every holder would make a burst O(N²): only the host map needs them all.
  const deps = policyDependencies(identity);
  const peers = deps ? candidatePeers(deps, identity.metadata.namespace!, d).map((p) => ({
    identity: p, spiffeID: p.status?.spiffeID ?? expectedSpiffeID(d, p), clusterDomain: d.trustDomains.get(trustDomainOf(p))?.spec.clusterDomain,
  })) : [];
  return desiredPolicy(identity, {
    spiffeID: spiffeID.toString(), trustDomain: trustDomain.trustDomain, peers, namespaces: d.namespaces.list(),
    denyListHome: d.configMaps.get(bundleConfigMapName(trustDomain.name), d.operatorNamespace),
  });
}

/** Pod-certificate delivery has no Secret: policy.json lives in the identity's ConfigMap, written when it changed. */
async function syncPolicyConfigMap(d: IdentityReconcilerDeps, identity: AgentIdentity, policyJson: string): Promise<void> {
  const cached = d.configMaps.get(policyConfigMapName(identity.metadata.name!), identity.metadata.namespace);
  const foreign = await writeOwnedConfigMap(d.api, cached, (existing) => desiredPolicyConfigMap(identity, policyJson, existing), (cm) => isControlledBy(cm, identity.metadata.uid));
  if (foreign) {
    // The webhook mounts this ConfigMap by name, so the tenant's content would be the pods' policy.json. Never overwritten: it is not ours.
    throw new Refused(POLICY_CONFLICT, `ConfigMap ${identity.metadata.namespace}/${foreign.metadata.name} exists and is not this identity's (${describeController(foreign)}); its pods would mount it as their policy: delete it`);
  }
}

/**
 * Secret delivery: policy.json rides the Secret. Pods admitted before it did
 * mount the identity's ConfigMap, so one that is ours is kept current; none
 * is made, and one that is not ours is no pod's policy any more.
 */
async function keepLegacyPolicyConfigMap(d: IdentityReconcilerDeps, identity: AgentIdentity, policyJson: string): Promise<void> {
  const cached = d.configMaps.get(policyConfigMapName(identity.metadata.name!), identity.metadata.namespace);
  if (!cached || !isControlledBy(cached, identity.metadata.uid)) return;
  const want = desiredPolicyConfigMap(identity, policyJson, cached);
  if (configMapDiffers(cached, want)) await d.api.replaceConfigMap(want);
}

/**
 * spec.proxy: keep the identity's NetworkPolicy; without spec.proxy, remove
 * ours. Only a cached one is removed: one whose label was stripped left the
 * cache, and finding it would cost a read per identity per reconcile; it is
 * still the identity's, and goes with it (owner reference).
 */
async function syncNetworkPolicy(d: IdentityReconcilerDeps, identity: AgentIdentity): Promise<void> {
  const { namespace, name, uid } = identity.metadata as { namespace: string; name: string; uid: string };
  const npName = proxyNetworkPolicyName(name);
  if (!d.networkPolicies) {
    if (!identity.spec.proxy) return;
    throw new ReconcileFailure('NetworkPolicyUnavailable',
      `spec.proxy asks for NetworkPolicy ${namespace}/${npName}, but the operator may not watch NetworkPolicies (see its log), so the agent's port is not closed to other pods; grant the chart's RBAC for networkpolicies`, { retry: false });
  }
  const cached = d.networkPolicies.get(npName, namespace);
  const ours = (np: NetworkPolicy) => isControlledBy(np, uid);
  if (!identity.spec.proxy) {
    if (cached && ours(cached)) await ifExists(() => d.api.deleteNetworkPolicy(namespace, npName, cached.metadata.uid));
    return;
  }
  const api = { get: (ns: string, n: string) => d.api.getNetworkPolicy(ns, n), create: (np: NetworkPolicy) => d.api.createNetworkPolicy(np), replace: (np: NetworkPolicy) => d.api.replaceNetworkPolicy(np) };
  const foreign = await writeOwned(api, cached, (existing) => desiredNetworkPolicy(identity, existing), { ours, differs: networkPolicyDiffers });
  if (foreign) {
    // Not ours, so never overwritten; NetworkPolicies add up, so it cannot take away what ours would admit, only keep ours from existing.
    throw new Refused('NetworkPolicyConflict', `NetworkPolicy ${namespace}/${npName} exists and is not this identity's (${describeController(foreign)}); the operator keeps the agent's pods reachable only on the proxy's port with a NetworkPolicy of that name: delete it`);
  }
}

/** A peer's SPIFFE ID before its first certificate: rules can name agents that are still being issued. */
function expectedSpiffeID(d: IdentityReconcilerDeps, peer: AgentIdentity): string | undefined {
  const trustDomain = d.store.get(trustDomainOf(peer));
  if (!trustDomain) return undefined;
  try {
    return spiffeIDFor(trustDomain, peer).toString();
  } catch {
    return undefined;
  }
}

function trustDomainPending(d: IdentityReconcilerDeps, identity: AgentIdentity): boolean {
  const name = trustDomainOf(identity);
  return !d.store.get(name) && !d.store.failure(name) && d.trustDomains.get(name) !== undefined;
}

function trustDomainFor(d: IdentityReconcilerDeps, identity: AgentIdentity): TrustDomainState {
  const name = trustDomainOf(identity);
  const trustDomain = d.store.get(name);
  if (trustDomain) return trustDomain;
  // No retry: the TrustDomain changing re-queues its identities.
  const why = d.store.failure(name) ?? 'it does not exist';
  throw new ReconcileFailure('TrustDomainNotReady', `TrustDomain "${name}" cannot issue: ${why}`, { retry: false });
}

/** From the Secret's not-after annotation alone, for when no TrustDomain is loaded to verify against. */
function notExpired(secret: Secret | undefined, now: Date): boolean {
  return Date.parse(secret?.metadata.annotations?.[ANNOTATION_NOT_AFTER] ?? '') > now.getTime();
}

/**
 * What the AgentIdentity webhook refuses, refused again before issuing: an
 * identity created while no webhook ran (make run, an outage with
 * failurePolicy Ignore), or one its TrustDomain stopped admitting, gets no
 * certificate (the current one is not renewed).
 */
function refuseUnlessAdmitted(d: IdentityReconcilerDeps, identity: AgentIdentity): void {
  const { namespace, name } = identity.metadata as { namespace: string; name: string };
  const trustDomainObject = d.trustDomains.get(trustDomainOf(identity));
  // A namespace the cache has not seen yet carries at least the label the API server gives every namespace.
  const labels = d.namespaces.get(namespace)?.metadata.labels ?? { 'kubernetes.io/metadata.name': namespace };
  const violation = trustDomainObject && tenancyViolation(trustDomainObject, identity, labels);
  if (violation) throw new Refused(violation.reason, violation.message, { retry: false });
  const sa = identity.spec.serviceAccountName;
  if (!d.serviceAccounts.get(sa, namespace)) {
    throw new Refused('ServiceAccountNotFound',
      `ServiceAccount "${sa}" does not exist in namespace "${namespace}", so no pod could hold AgentIdentity "${name}"; create it, or set spec.serviceAccountName to the ServiceAccount the agent's pods run as`, { retry: false });
  }
}

function durationOf(identity: AgentIdentity, minMs: number): number {
  const ms = parseDuration(identity.spec.duration ?? DEFAULT_DURATION);
  if (ms < minMs) {
    throw new Refused('DurationTooShort', `duration ${identity.spec.duration} is below the operator's minimum of ${formatDuration(minMs)}`, { retry: false });
  }
  return ms;
}

async function writeSecret(d: IdentityReconcilerDeps, want: Secret, existing: Secret | undefined): Promise<void> {
  if (existing) {
    await d.api.replaceSecret(want);
    return;
  }
  try {
    await d.api.createSecret(want);
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
    // Ours but not yet in the cache (a lagging watch): a plain conflict, look again shortly.
    const live = await d.api.getSecret(want.metadata.namespace!, want.metadata.name!);
    if (isControlledBy(live, want.metadata.ownerReferences![0]!.uid)) {
      // Ours, but its managed-by label was stripped, so the cache lost it: restore the label, and the next reconcile sees it again.
      if (live.metadata.labels?.[LABEL_MANAGED_BY] !== MANAGED_BY_VALUE) await d.api.replaceSecret({ ...live, metadata: { ...live.metadata, labels: { ...live.metadata.labels, ...want.metadata.labels } } });
      throw err;
    }
    if (controllerOf(live)) throw new Refused(SECRET_OWNED_BY_ANOTHER, `Secret ${want.metadata.namespace}/${want.metadata.name} belongs to ${describeController(live)}; choose another spec.secretName`);
    throw new Refused('SecretConflict', `Secret ${want.metadata.namespace}/${want.metadata.name} already exists and is not managed by agent-identity-operator; delete it or set spec.secretName`);
  }
}

/** Every status written carries the app-port condition (spec.proxy), whichever step wrote it. */
async function writeStatus(d: IdentityReconcilerDeps, identity: AgentIdentity, status: AgentIdentityStatus): Promise<void> {
  const appPort = appPortCondition(identity, d.appPorts?.of(objectKey(identity)));
  const reported = appPort
    ? { ...status, conditions: setCondition(status.conditions, { ...appPort, observedGeneration: identity.metadata.generation }, d.now()) }
    : getCondition(status.conditions, APP_PORT_CONDITION) ? { ...status, conditions: removeCondition(status.conditions, APP_PORT_CONDITION) } : status;
  if (jsonEqual(reported, identity.status ?? {})) return;
  await ofIdentity(d.api.patchIdentityStatus(identity.metadata.namespace!, identity.metadata.name!, replacingPatch(identity.status, reported)));
  reportAppPort(d, identity, getCondition(identity.status?.conditions, APP_PORT_CONDITION), appPort);
}

/** The identity's events for the app-port check: when it finds a pod exposed, and when none is any more. */
function reportAppPort(d: IdentityReconcilerDeps, identity: AgentIdentity, was: { status: string; message: string } | undefined, now: { status: string; message: string } | undefined): void {
  const wasExposed = was?.status === 'False';
  if (now?.status === 'False') {
    if (!wasExposed || was.message !== now.message) d.events.record(ref(identity), 'Warning', 'AppPortExposed', now.message);
  } else if (wasExposed) {
    d.events.record(ref(identity), 'Normal', 'AppPortPrivate', now?.message ?? 'spec.proxy was removed: the app port is no longer checked');
  }
}

/** The identity itself answered 404: deleted while the cache still showed it. */
class IdentityGone extends Error {}

/**
 * A write to the identity being reconciled. Its 404 is the clean end of the
 * reconcile (controller-runtime's IgnoreNotFound), not a failure: a finished
 * delete is not an error, and the informer's delete event forgets its metrics.
 */
async function ofIdentity<T>(write: Promise<T>): Promise<T> {
  try {
    return await write;
  } catch (err) {
    if (isNotFound(err)) throw new IdentityGone('the AgentIdentity is gone');
    throw err;
  }
}

function ref(identity: AgentIdentity) {
  return { apiVersion: API_VERSION, kind: AGENT_IDENTITY.kind, metadata: identity.metadata };
}
