// Writes the bundle where publish.ts says it goes: a ConfigMap copy (with the
// deny list) in each namespace, and optionally a ClusterTrustBundle. Nothing
// here stops the CA signing. One namespace's copy failing never holds back
// another's: each write is tried, then lasting problems (a squatted copy, a
// refused write, a refused ClusterTrustBundle) are reported, and transient
// ones (a tenant's edit racing ours, a 429, a 5xx) are handed back to retry.
import { BUNDLE_DENYLIST, LABEL_TRUST_DOMAIN } from '../api/group.ts';
import { bundleConfigMapName } from '../api/defaults.ts';
import type { ConfigMap, TrustDomain } from '../api/types.ts';
import { controllerOf, isControlledBy } from '../api/owner.ts';
import { ifExists, isNotFound, isTransient, KubeError, toKubeError, transientReason } from '../kube/errors.ts';
import { bundleConflictMessage, bundleNamespaces, clusterTrustBundleName, configMapDiffers, desiredBundleConfigMap, desiredClusterTrustBundle, federatedBundlesDocument, isOwnBundleCopy } from './publish.ts';
import { RestorePace } from './restore-pace.ts';
import { writeOwnedConfigMap } from './owned-configmap.ts';
import { parseDenyList, pruned, serializeDenyList, nextExpiry } from './denylist.ts';
import { bundleCopies, CONTROLLER, trustDomainRef, type TrustReconcilerDeps } from './deps.ts';

export interface Published {
  namespaces: number;
  denyListEntries: number;
  nextExpiry?: Date;
  clusterTrustBundleError?: string;
  bundleConflict?: string;
  /** Copies a lasting error kept from being written or withdrawn (403, 422...): reported. */
  bundleWriteError?: string;
  /** Writes that failed for a moment: one error for all of them, for the error policy to retry. */
  retry?: KubeError;
  /** Copies someone changed again since their last restore are restored after this many ms (restore-pace.ts). */
  restoreInMs?: number;
}

/** A copy someone keeps editing is written back at most once a second. */
const RESTORE_INTERVAL_MS = 1000;

interface Failed { where: string; err: KubeError }

export function bundlePublisher(d: TrustReconcilerDeps): (trustDomain: TrustDomain, bundlePem: string) => Promise<Published> {
  // The bundle last written to each ClusterTrustBundle: they are not watched, and
  // re-reading one on every reconcile (every identity event queues one) is waste.
  // Trade-off: one deleted by hand returns when the bundle changes or the operator restarts.
  const publishedCTB = new Map<string, string>();
  const pace = new RestorePace(RESTORE_INTERVAL_MS);
  return async (trustDomain, bundlePem) => {
    const name = trustDomain.metadata.name!;
    const problem = async (reason: string, message: string) => {
      d.metrics.reconcileErrors.inc({ controller: CONTROLLER, reason });
      d.log.warn({ trustDomain: name }, message);
      d.events.record(trustDomainRef(trustDomain), 'Warning', reason, message);
    };
    const configMapName = bundleConfigMapName(name);
    const denyList = pruned(parseDenyList(trustDomain.spec.trustDomain, d.configMaps.get(configMapName, d.operatorNamespace)?.data?.[BUNDLE_DENYLIST]), d.now());
    const denyJson = serializeDenyList(denyList);
    const want = bundleNamespaces(trustDomain, d.identityNamespaces.of(name), d.namespaces.list(), d.operatorNamespace);
    // A copy someone else made is never overwritten (its agents would read it as the bundle): reported instead.
    const conflicts: string[] = [];
    const failed: Failed[] = [];
    const attempt = (where: string, write: () => Promise<unknown>) => write().catch((err) => { failed.push({ where, err: toKubeError(err) }); });
    const federatedJson = federatedBundlesDocument(trustDomain, d.configMaps.list(d.operatorNamespace), d.operatorNamespace);
    const content = { bundlePem, denyJson, federatedJson };
    let restoreInMs: number | undefined;
    for (const ns of want) {
      const home = ns === d.operatorNamespace;
      const build = (existing?: ConfigMap) => desiredBundleConfigMap(name, ns, bundlePem, denyJson, existing, home ? undefined : trustDomain, federatedJson);
      const ours = (cm: ConfigMap) => home || isOwnBundleCopy(cm, trustDomain, bundlePem);
      const cached = d.configMaps.get(configMapName, ns);
      const where = `${ns}/${configMapName}`;
      if (cached && ours(cached)) {
        // The usual case, every pass, in every namespace: nothing to write.
        if (!configMapDiffers(cached, build(cached))) continue;
        const wait = pace.wait(where, content);
        if (wait > 0) {
          restoreInMs = Math.min(restoreInMs ?? wait, wait);
          continue;
        }
        pace.writing(where, content);
      }
      await attempt(`ConfigMap ${where}`, async () => {
        if (await writeOwnedConfigMap(d.api, cached, build, ours)) conflicts.push(ns);
      });
    }
    const bundleConflict = conflicts.length ? bundleConflictMessage(configMapName, conflicts) : undefined;
    if (bundleConflict) await problem('BundleConfigMapConflict', bundleConflict);
    for (const cm of bundleCopies(d, configMapName)) {
      const stale = cm.metadata.labels?.[LABEL_TRUST_DOMAIN] === name && !want.has(cm.metadata.namespace!);
      if (stale && (!controllerOf(cm) || isControlledBy(cm, trustDomain.metadata.uid))) {
        await attempt(`ConfigMap ${cm.metadata.namespace}/${configMapName} (withdrawn)`, () => d.api.deleteConfigMap(cm.metadata.namespace!, configMapName).catch((e) => { if (!isNotFound(e)) throw e; }));
      }
    }
    const lasting = failed.filter((f) => !isTransient(f.err));
    const bundleWriteError = lasting.length ? failedMessage(lasting) : undefined;
    if (bundleWriteError) await problem('BundlePublishFailed', bundleWriteError);
    // Optional: a cluster that refuses it still gets its identities; the failure is reported
    // (BundlePublished condition, event, metric), not fatal.
    let clusterTrustBundleError: string | undefined;
    if (d.clusterTrustBundles && publishedCTB.get(name) !== bundlePem) {
      await publishClusterTrustBundle(d, name, bundlePem).then(() => publishedCTB.set(name, bundlePem), async (err) => {
        if (isTransient(err)) return void failed.push({ where: `ClusterTrustBundle ${clusterTrustBundleName(name)}`, err: toKubeError(err) });
        clusterTrustBundleError = `cannot publish ClusterTrustBundle ${clusterTrustBundleName(name)}: ${toKubeError(err).message}`;
        await problem('ClusterTrustBundleFailed', clusterTrustBundleError);
      });
    }
    return {
      namespaces: want.size, denyListEntries: denyList.entries.length, nextExpiry: nextExpiry(denyList), clusterTrustBundleError, bundleConflict, bundleWriteError,
      retry: retryError(failed.filter((f) => isTransient(f.err))), restoreInMs,
    };
  };
}

function failedMessage(failed: readonly Failed[]): string {
  const shown = failed.slice(0, 10).map((f) => `${f.where}: ${f.err.message}`).join('; ');
  return `cannot publish the bundle to ${shown}${failed.length > 10 ? ` and ${failed.length - 10} more` : ''}`;
}

/**
 * The transient failures as one error that keeps the code of the one that
 * decides the retry: a 429, 5xx or network error (backed off) before a lost
 * write race (read again at once), so a struggling API server is not hurried.
 */
function retryError(failed: readonly Failed[]): KubeError | undefined {
  const decides = failed.find((f) => transientReason(f.err) !== 'Conflict') ?? failed[0];
  return decides && new KubeError(decides.err.code, decides.err.reason, failedMessage(failed));
}

async function publishClusterTrustBundle(d: TrustReconcilerDeps, name: string, bundlePem: string): Promise<void> {
  const existing = await ifExists(() => d.api.getClusterTrustBundle(clusterTrustBundleName(name)));
  if (!existing) await d.api.createClusterTrustBundle(desiredClusterTrustBundle(name, bundlePem));
  else if (existing.spec.trustBundle !== bundlePem) await d.api.replaceClusterTrustBundle(desiredClusterTrustBundle(name, bundlePem, existing));
}
