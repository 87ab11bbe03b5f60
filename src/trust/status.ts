// A TrustDomain's status: what signs, which roots are trusted, how far a
// rotation got, where the bundle is published; written only when it changed.
import { setCondition, rfc3339, type ConditionInput } from '../api/conditions.ts';
import type { Condition, TrustDomain, TrustDomainStatus } from '../api/types.ts';
import { fingerprintOf } from '../pki/parse.ts';
import { jsonEqual, replacingPatch } from '../controller/equal.ts';
import type { ReconcileFailure } from '../controller/failure.ts';
import type { TrustReconcilerDeps } from './deps.ts';
import type { Progress } from './progress.ts';
import type { Published } from './publisher.ts';
import type { LoadedCA } from './source.ts';

export async function readyStatus(d: TrustReconcilerDeps, trustDomain: TrustDomain, ca: LoadedCA<unknown>, p: Published, progress: Progress | undefined, caFingerprint: string | undefined): Promise<TrustDomainStatus> {
  const gen = trustDomain.metadata.generation;
  const rotation = ca.rotation;
  const message = rotation ? `rotating the root: ${rotation.phase}` : 'the CA is loaded and signing';
  return {
    ...trustDomain.status,
    observedGeneration: gen,
    caSecret: { namespace: ca.secret.metadata.namespace!, name: ca.secret.metadata.name! },
    caSubject: ca.signer?.certificate.subject,
    caFingerprint,
    caNotAfter: ca.signer ? rfc3339(ca.signer.certificate.notAfter) : undefined,
    roots: ca.roots,
    intermediate: ca.intermediate ? { fingerprint: await fingerprintOf(ca.intermediate), notAfter: rfc3339(ca.intermediate.notAfter) } : undefined,
    rotation: rotation && progress ? {
      phase: rotation.phase, reason: rotation.reason, startedAt: rotation.startedAt, phaseStartedAt: rotation.phaseStartedAt,
      bundleCopies: progress.bundleCopies.total, bundleCopiesUpdated: progress.bundleCopies.updated, leaves: progress.leaves, leavesRemaining: progress.leavesOnRetiring,
    } : undefined,
    lastRotationRequest: ca.lastRotationRequest,
    bundleNamespaces: p.namespaces,
    denyListEntries: p.denyListEntries,
    conditions: withBundlePublished(
      setCondition(trustDomain.status?.conditions, { type: 'Ready', status: 'True', reason: 'CAReady', message, observedGeneration: gen }, d.now()),
      p.bundleConflict
        ? { type: 'BundlePublished', status: 'False', reason: 'BundleConfigMapConflict', message: p.bundleConflict, observedGeneration: gen }
        : p.bundleWriteError
        ? { type: 'BundlePublished', status: 'False', reason: 'BundlePublishFailed', message: p.bundleWriteError, observedGeneration: gen }
        : p.clusterTrustBundleError
        ? { type: 'BundlePublished', status: 'False', reason: 'ClusterTrustBundleFailed', message: p.clusterTrustBundleError, observedGeneration: gen }
        // Writes being retried: nothing is known yet, so the condition says what it said (publishFailedStatus reports one that persists).
        : p.retry ? undefined
        : { type: 'BundlePublished', status: 'True', reason: 'Published', message: `published in ${p.namespaces} namespaces${d.clusterTrustBundles ? ' and as a ClusterTrustBundle' : ''}`, observedGeneration: gen },
      d.now()),
  };
}

function withBundlePublished(conditions: Condition[], c: ConditionInput | undefined, now: Date): Condition[] {
  return c ? setCondition(conditions, c, now) : conditions;
}

/** Publishing (or writing status) failed for good or for too long: BundlePublished says so; the CA still signs, so Ready stays. */
export function publishFailedStatus(d: TrustReconcilerDeps, trustDomain: TrustDomain, f: ReconcileFailure): TrustDomainStatus {
  const gen = trustDomain.metadata.generation;
  return {
    ...trustDomain.status,
    conditions: setCondition(trustDomain.status?.conditions, { type: 'BundlePublished', status: 'False', reason: f.reason, message: f.message, observedGeneration: gen }, d.now()),
  };
}

/** Everything else stays as last reported: a failure says only that the CA is not ready, and why. */
export function failedStatus(d: TrustReconcilerDeps, trustDomain: TrustDomain, f: ReconcileFailure): TrustDomainStatus {
  return {
    ...trustDomain.status,
    observedGeneration: trustDomain.metadata.generation,
    conditions: setCondition(trustDomain.status?.conditions, { type: 'Ready', status: 'False', reason: f.reason, message: f.message, observedGeneration: trustDomain.metadata.generation }, d.now()),
  };
}

export async function writeStatus(d: TrustReconcilerDeps, trustDomain: TrustDomain, status: TrustDomainStatus): Promise<void> {
  if (jsonEqual(status, trustDomain.status ?? {})) return;
  await d.api.patchTrustDomainStatus(trustDomain.metadata.name!, replacingPatch(trustDomain.status, status));
}
