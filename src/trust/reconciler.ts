// TrustDomain reconciler, in two stages with an error policy each:
// 1. sign: load the CA from its source (self-signed or brought in), take its
//    next lifecycle step (Root → Intermediate, root rotation with overlap) or,
//    when none is due, hand it to the identity reconciler. Only a failure here
//    (a CA that cannot be loaded or used) stops issuance for the TrustDomain.
// 2. publish and report: the bundle and deny list, then status. A failure here
//    leaves the CA signing: a transient one is retried, a lasting one reported.
import type { TrustDomain } from '../api/types.ts';
import { DEFAULT_SPIFFE_ID_TEMPLATE } from '../api/defaults.ts';
import { fingerprintOf } from '../pki/parse.ts';
import { errorPolicy } from '../controller/failure.ts';
import { isTransient } from '../kube/errors.ts';
import type { Result } from '../controller/queue.ts';
import { CONTROLLER, trustDomainRef, type TrustReconcilerDeps } from './deps.ts';
import type { CASource, LoadedCA } from './source.ts';
import type { Progress } from './progress.ts';
import { selfSignedSource } from './self-signed.ts';
import { broughtInSource } from './brought-in.ts';
import { progressOf } from './progress.ts';
import { bundlePublisher } from './publisher.ts';
import { failedStatus, publishFailedStatus, readyStatus, writeStatus } from './status.ts';

/** A CA that signs, handed to the identity reconciler: what publishing and reporting need of it. */
interface Signing {
  ca: LoadedCA<unknown>;
  bundlePem: string;
  caFingerprint?: string;
  progress?: Progress;
  /** How soon the CA needs looking at again: its source's poll, or when its lifecycle's next step is due. */
  recheckMs: number[];
}

export function trustReconciler(d: TrustReconcilerDeps): (key: string) => Promise<Result> {
  const selfSigned = selfSignedSource(d);
  const broughtIn = broughtInSource(d);
  const publish = bundlePublisher(d);

  /** The CA loaded and in the store, or undefined when state was written (the watch brings it back through the cache). */
  async function sign<S>(source: CASource<S>, trustDomain: TrustDomain): Promise<Signing | undefined> {
    const name = trustDomain.metadata.name!;
    const ca = await source.load(trustDomain);
    if (!ca) return undefined;
    const bundlePem = ca.bundle.toPem();
    // Scanning every identity Secret is only needed while a rotation waits on them.
    const progress = ca.rotation ? progressOf(d, name, ca.retiringRootFingerprints, bundlePem) : undefined;
    const step = source.decide(trustDomain, ca, progress);
    if (step && step.kind !== 'Wait') {
      await source.apply(trustDomain, ca, step);
      return undefined;
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
    return { ca, bundlePem, caFingerprint, progress, recheckMs: [source.pollMs, step?.afterMs].filter((x): x is number => x !== undefined) };
  }

  async function publishAndReport(trustDomain: TrustDomain, s: Signing): Promise<Result> {
    const published = await publish(trustDomain, s.bundlePem);
    await writeStatus(d, trustDomain, await readyStatus(d, trustDomain, s.ca, published, s.progress, s.caFingerprint));
    // Writes that failed for a moment are retried after everything else was published and reported.
    if (published.retry) throw published.retry;
    const pruneIn = published.nextExpiry ? published.nextExpiry.getTime() - d.now().getTime() : undefined;
    const next = [...s.recheckMs, pruneIn, published.restoreInMs].filter((x): x is number => x !== undefined && x >= 0);
    // A squatted or refused bundle copy is reported, not a failure (the CA keeps signing). Nothing tells us
    // when that changes (a squatted copy need not carry our label), so it is retried with the key's backoff.
    const backoff = published.bundleConflict !== undefined || published.bundleWriteError !== undefined;
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
    const scope = { controller: CONTROLLER, key: name, target: trustDomainRef(trustDomain) };
    let signing: Signing | undefined;
    try {
      signing = await (trustDomain.spec.ca.secretRef ? sign(broughtIn, trustDomain) : sign(selfSigned, trustDomain));
    } catch (err) {
      return errorPolicy(d, err, {
        ...scope, fallbackReason: 'CANotReady', recheckMs: d.externalCAPollMs,
        report: async (f) => {
          // A transient error that persisted (say a brought-in CA Secret answering 503 for a minute) while the
          // CA loaded before still signs: the Warning says so, and Ready and signing stay.
          if (isTransient(f.cause) && d.store.get(name)?.signer) return;
          // A CA that cannot be loaded or used: identities of this trust domain hear of it and report why they wait.
          d.store.fail(name, `${f.reason}: ${f.message}`);
          await writeStatus(d, trustDomain, failedStatus(d, trustDomain, f));
        },
      });
    }
    if (!signing) return { requeueAfter: 1 };
    try {
      return await publishAndReport(trustDomain, signing);
    } catch (err) {
      return errorPolicy(d, err, {
        ...scope, fallbackReason: 'BundlePublishFailed',
        report: (f) => writeStatus(d, trustDomain, publishFailedStatus(d, trustDomain, f)),
      });
    }
  };
}
