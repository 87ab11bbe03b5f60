// TrustDomain reconciler: load the CA from its source (self-signed or brought
// in), take its next lifecycle step (Root → Intermediate, root rotation with
// overlap) or, when none is due, hand it to the identity reconciler, publish
// the bundle and deny list, and report.
import type { TrustDomain } from '../api/types.ts';
import { DEFAULT_SPIFFE_ID_TEMPLATE } from '../api/defaults.ts';
import { fingerprintOf } from '../pki/parse.ts';
import { errorPolicy } from '../controller/failure.ts';
import type { Result } from '../controller/queue.ts';
import { CONTROLLER, trustDomainRef, type TrustReconcilerDeps } from './deps.ts';
import type { CASource } from './source.ts';
import { selfSignedSource } from './self-signed.ts';
import { broughtInSource } from './brought-in.ts';
import { progressOf } from './progress.ts';
import { bundlePublisher } from './publisher.ts';
import { failedStatus, readyStatus, writeStatus } from './status.ts';

export function trustReconciler(d: TrustReconcilerDeps): (key: string) => Promise<Result> {
  const selfSigned = selfSignedSource(d);
  const broughtIn = broughtInSource(d);
  const publish = bundlePublisher(d);

  async function reconcile<S>(source: CASource<S>, trustDomain: TrustDomain): Promise<Result> {
    const name = trustDomain.metadata.name!;
    const ca = await source.load(trustDomain);
    // State written (a CA made, or a brought-in CA adopted or changed); the watch brings it back through the cache.
    if (!ca) return { requeueAfter: 1 };
    const bundlePem = ca.bundle.toPem();
    // Scanning every identity Secret is only needed while a rotation waits on them.
    const progress = ca.rotation ? progressOf(d, name, ca.retiringRootFingerprints, bundlePem) : undefined;
    const step = source.decide(trustDomain, ca, progress);
    if (step && step.kind !== 'Wait') {
      await source.apply(trustDomain, ca, step);
      return { requeueAfter: 1 };
    }
    const caFingerprint = ca.signer ? await fingerprintOf(ca.signer.certificate) : undefined;
    d.store.set({
      name, trustDomain: trustDomain.spec.trustDomain,
      spiffeIDTemplate: trustDomain.spec.spiffeIDTemplate ?? DEFAULT_SPIFFE_ID_TEMPLATE,
      signer: ca.signer, bundle: ca.bundle.roots, bundlePem,
      caFingerprint: caFingerprint ?? '',
      activeRootFingerprint: ca.activeRootFingerprint,
      retiringRootFingerprints: ca.retiringRootFingerprints,
      rotation: ca.rotation?.phase === 'ReissuingLeaves'
        ? { phaseStartedAt: new Date(ca.rotation.phaseStartedAt), reissueWindowMs: d.rotation.reissueWindowMs } : undefined,
    });
    if (ca.signer) d.metrics.caExpiration.set({ trust_domain: name }, ca.signer.certificate.notAfter.getTime() / 1000);
    const published = await publish(trustDomain, bundlePem);
    await writeStatus(d, trustDomain, await readyStatus(d, trustDomain, ca, published, progress, caFingerprint));
    const pruneIn = published.nextExpiry ? published.nextExpiry.getTime() - d.now().getTime() : undefined;
    const next = [source.pollMs, step?.afterMs, pruneIn].filter((x): x is number => x !== undefined && x >= 0);
    // A squatted bundle copy is reported, not a failure (the CA keeps signing). Nothing tells us when it
    // goes (it need not carry our label), so it is retried with the key's backoff.
    const backoff = published.bundleConflict !== undefined;
    return { ...(next.length ? { requeueAfter: Math.max(1, Math.min(...next)) } : {}), ...(backoff ? { backoff } : {}) };
  }

  return async (name) => {
    const trustDomain = d.trustDomains.get(name);
    if (!trustDomain || trustDomain.metadata.deletionTimestamp) {
      // The CA Secret is kept on purpose: re-creating the TrustDomain then
      // reuses the same CA instead of breaking every agent's trust.
      d.store.delete(name);
      selfSigned.forget(name);
      broughtIn.forget(name);
      return {};
    }
    try {
      return await (trustDomain.spec.ca.secretRef ? reconcile(broughtIn, trustDomain) : reconcile(selfSigned, trustDomain));
    } catch (err) {
      return errorPolicy(d, err, {
        controller: CONTROLLER, key: name, target: trustDomainRef(trustDomain), fallbackReason: 'CANotReady', recheckMs: d.externalCAPollMs,
        report: async (f) => {
          // Identities of this trust domain hear of it and report why they wait.
          d.store.fail(name, `${f.reason}: ${f.message}`);
          await writeStatus(d, trustDomain, failedStatus(d, trustDomain, f));
        },
      });
    }
  };
}
