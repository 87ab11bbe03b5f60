// AgentIdentity reconciler: observe the Secret, decide with the ordered
// checks, act (issue or resync the Secret), report (status, event, metrics).
// Level-based: it reads only cached state and writes only differences, so a
// second run in a row makes no API write.
import { API_VERSION, AGENT_IDENTITY } from '../api/group.ts';
import { keyRequestOf, secretNameOf, trustDomainOf, DEFAULT_DURATION } from '../api/defaults.ts';
import { parseDuration, formatDuration } from '../api/duration.ts';
import type { AgentIdentity, AgentIdentityStatus, Secret } from '../api/types.ts';
import { getCondition } from '../api/conditions.ts';
import { renderSpiffeID } from '../pki/spiffeid.ts';
import { PkiError } from '../pki/errors.ts';
import { isConflict, toKubeError } from '../kube/errors.ts';
import { ReconcileFailure, failureOf } from '../controller/failure.ts';
import { jsonEqual } from '../controller/equal.ts';
import type { Result } from '../controller/queue.ts';
import type { TrustDomainState } from '../trust/store.ts';
import { reportFailure, type ReconcileContext } from '../context.ts';
import { needsIssuance } from './checks.ts';
import { observeSecret } from './observe.ts';
import { issueIdentity } from './issue.ts';
import { renewalTime } from './renewal.ts';
import { desiredSecret, keptData, secretDiffers, type IssuedData } from './secret.ts';
import { readyStatus, failedStatus } from './status.ts';

export interface IdentityReconcilerDeps extends ReconcileContext {
  api: {
    getSecret(namespace: string, name: string): Promise<Secret>;
    createSecret(secret: Secret): Promise<Secret>;
    replaceSecret(secret: Secret): Promise<Secret>;
    patchIdentityStatus(namespace: string, name: string, status: AgentIdentityStatus): Promise<unknown>;
  };
  identities: { get(name: string, namespace?: string): AgentIdentity | undefined };
  /** Shortest leaf lifetime the operator accepts (10m in production; tests lower it). */
  minDurationMs: number;
}

const CONTROLLER = 'agentidentity';
/** After losing an optimistic-concurrency race, look again once the cache has caught up. */
const CONFLICT_REQUEUE_MS = 500;

export function identityReconciler(d: IdentityReconcilerDeps): (key: string) => Promise<Result> {
  return async (key) => {
    const [namespace, name] = key.split('/') as [string, string];
    const identity = d.identities.get(name, namespace);
    if (!identity) {
      // The Secret goes with it through its owner reference (garbage collection).
      d.metrics.forgetIdentity(namespace, name);
      return {};
    }
    if (identity.metadata.deletionTimestamp) return {};
    // Its TrustDomain is still loading (e.g. just after a restart): loading it
    // re-queues this identity, and reporting NotReady now would be a false flap.
    if (trustDomainPending(d, identity)) return {};
    const now = d.now();
    let stillValid = false;
    try {
      const td = trustDomainFor(d, identity);
      const durationMs = durationOf(identity, d.minDurationMs);
      const spiffeID = spiffeIDOf(td, identity);
      const secretName = secretNameOf(identity);
      const secret = d.secrets.get(secretName, namespace);
      const owner = secret?.metadata.ownerReferences?.find((o) => o.controller);
      if (secret && owner && owner.uid !== identity.metadata.uid) {
        throw new ReconcileFailure('SecretOwnedByAnother', `Secret ${namespace}/${secretName} belongs to ${owner.kind} ${owner.name}; choose another spec.secretName`, { retry: false });
      }

      const { observed, keyPair } = await observeSecret(secret, td.bundle, now);
      stillValid = observed.trust?.ok === true && observed.keyMatchesLeaf === true;
      const desired = { spiffeID, dnsNames: identity.spec.dnsNames ?? [], key: keyRequestOf(identity) };
      const renewal = observed.leaf ? renewalTime(identity.spec, observed.leaf) : undefined;
      const violation = needsIssuance({ secret: observed, desired, renewalTime: renewal, now });

      let issued: IssuedData & { notBefore: Date };
      if (violation) {
        const started = performance.now();
        try {
          issued = await issueIdentity(td.signer, { ...desired, durationMs, now, reason: violation.reason }, keyPair);
          await writeSecret(d, desiredSecret(identity, secret, issued, td.bundlePem), secret);
        } catch (err) {
          if (!isConflict(err)) d.metrics.issuances.inc({ trust_domain: td.name, reason: violation.reason, result: 'error' });
          throw err;
        }
        d.metrics.issuances.inc({ trust_domain: td.name, reason: violation.reason, result: 'success' });
        d.metrics.issuanceDuration.observe({ trust_domain: td.name }, (performance.now() - started) / 1000);
        d.log.info({ identity: key, reason: violation.reason, serial: issued.serialNumber, notAfter: issued.notAfter }, 'issued certificate');
        await d.events.record(ref(identity), 'Normal', 'Issued',
          `${violation.message}; issued ${issued.spiffeID} serial ${issued.serialNumber}, valid until ${issued.notAfter.toISOString()}`);
      } else {
        const leaf = observed.leaf!;
        issued = { ...keptData(secret!, leaf), notBefore: leaf.notBefore };
        // Same certificate, but labels, annotations or the bundle may have moved.
        const want = desiredSecret(identity, secret, issued, td.bundlePem);
        if (secretDiffers(secret!, want)) await writeSecret(d, want, secret);
      }

      const renewAt = renewalTime(identity.spec, issued);
      const status = readyStatus(identity, {
        spiffeID: issued.spiffeID, serialNumber: issued.serialNumber, notBefore: issued.notBefore, notAfter: issued.notAfter,
        renewalTime: renewAt, secretName, caFingerprint: td.caFingerprint, issuanceReason: issued.reason,
      }, now);
      await writeStatus(d, identity, status);
      d.metrics.certificateExpiration.set({ namespace, name }, issued.notAfter.getTime() / 1000);
      d.metrics.certificateRenewal.set({ namespace, name }, renewAt.getTime() / 1000);
      d.metrics.setReady(namespace, name, 'True');
      d.metrics.reconciles.inc({ controller: CONTROLLER, result: 'success' });
      return { requeueAfter: Math.max(0, renewAt.getTime() - d.now().getTime()) };
    } catch (err) {
      if (isConflict(err)) {
        d.log.debug({ identity: key }, 'write conflict; the cache was stale, retrying');
        return { requeueAfter: CONFLICT_REQUEUE_MS };
      }
      const f = failureOf(err, 'IssuanceFailed');
      if (!stillValid) d.metrics.setReady(namespace, name, 'False');
      await reportFailure(d, CONTROLLER, key, ref(identity), f);
      await writeStatus(d, identity, failedStatus(identity, f.reason, f.message, stillValid, now))
        .catch((e) => d.log.warn({ identity: key, err: toKubeError(e).message }, 'status update failed'));
      if (!f.retry) return {};
      throw f;
    }
  };
}

function trustDomainPending(d: IdentityReconcilerDeps, identity: AgentIdentity): boolean {
  const name = trustDomainOf(identity);
  if (d.store.get(name)) return false;
  const td = d.trustDomains.get(name);
  return td !== undefined && getCondition(td.status?.conditions, 'Ready')?.status !== 'False';
}

function trustDomainFor(d: IdentityReconcilerDeps, identity: AgentIdentity): TrustDomainState {
  const name = trustDomainOf(identity);
  const td = d.store.get(name);
  // No retry: the TrustDomain becoming ready re-queues its identities.
  if (!td) throw new ReconcileFailure('TrustDomainNotReady', `TrustDomain "${name}" does not exist or has no usable CA yet`, { retry: false });
  return td;
}

function durationOf(identity: AgentIdentity, minMs: number): number {
  const ms = parseDuration(identity.spec.duration ?? DEFAULT_DURATION);
  if (ms < minMs) {
    throw new ReconcileFailure('DurationTooShort', `duration ${identity.spec.duration} is below the operator's minimum of ${formatDuration(minMs)}`, { retry: false });
  }
  return ms;
}

function spiffeIDOf(td: TrustDomainState, identity: AgentIdentity): string {
  try {
    return renderSpiffeID(td.trustDomain, td.spiffeIDTemplate, {
      namespace: identity.metadata.namespace!, name: identity.metadata.name!, serviceAccount: identity.spec.serviceAccountName,
    }).toString();
  } catch (err) {
    if (err instanceof PkiError) throw new ReconcileFailure('InvalidSpiffeID', err.message, { retry: false });
    throw err;
  }
}

async function writeSecret(d: IdentityReconcilerDeps, want: Secret, existing: Secret | undefined): Promise<void> {
  if (existing) {
    await d.api.replaceSecret(want);
    return;
  }
  try {
    await d.api.createSecret(want);
  } catch (err) {
    const e = toKubeError(err);
    if (e.code !== 409 || e.reason !== 'AlreadyExists') throw err;
    // Ours but not yet in the cache (a lagging watch): a plain conflict, look again shortly.
    const live = await d.api.getSecret(want.metadata.namespace!, want.metadata.name!);
    if (live.metadata.ownerReferences?.some((o) => o.uid === want.metadata.ownerReferences![0]!.uid)) throw err;
    throw new ReconcileFailure('SecretConflict', `Secret ${want.metadata.namespace}/${want.metadata.name} already exists and is not managed by agent-identity-operator; delete it or set spec.secretName`);
  }
}

async function writeStatus(d: IdentityReconcilerDeps, identity: AgentIdentity, status: AgentIdentityStatus): Promise<void> {
  if (jsonEqual(status, identity.status ?? {})) return;
  await d.api.patchIdentityStatus(identity.metadata.namespace!, identity.metadata.name!, status);
}

function ref(identity: AgentIdentity) {
  return { apiVersion: API_VERSION, kind: AGENT_IDENTITY.kind, metadata: identity.metadata };
}
