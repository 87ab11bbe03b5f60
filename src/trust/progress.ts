// How far a root rotation got, read from the caches: bundle copies carrying
// the whole bundle, and leaves still on a retiring root (or of unknown root):
// Secret leaves, and pod certificates (the signer's ledger).
import { ANNOTATION_NOT_AFTER, ANNOTATION_ROOT_FINGERPRINT, LABEL_IDENTITY, LABEL_TRUST_DOMAIN, SECRET_BUNDLE } from '../api/group.ts';
import type { Secret } from '../api/types.ts';
import { bundleCopies, type TrustReconcilerDeps } from './deps.ts';
import { bundleConfigMapName } from '../api/defaults.ts';

export interface Progress { now: Date; bundleCopies: { total: number; updated: number }; leaves: number; leavesOnRetiring: number }

type Caches = Pick<TrustReconcilerDeps, 'secretList' | 'configMaps' | 'namespaces' | 'podCertificates' | 'now'>;

export function progressOf(d: Caches, name: string, retiringRootFingerprints: ReadonlySet<string>, bundlePem: string): Progress {
  const secrets = identitySecretsOf(d, name);
  const onRetiring = (rootFingerprint: string | undefined) => !rootFingerprint || retiringRootFingerprints.has(rootFingerprint);
  // A pod certificate cannot be re-issued by the operator: its kubelet moves to
  // the new root at beginRefreshAt, but the old one stays valid (and in use by
  // any peer that cached it) until notAfter. So the old root retires only once
  // every pod certificate under it has expired: a rotation may take as long as
  // the longest pod-certificate lifetime (the identity's duration, at most 91d).
  const podCertificates = d.podCertificates.live(d.now(), (c) => c.trustDomain === name);
  const leavesOnRetiring = secrets.filter((s) => onRetiring(s.metadata.annotations?.[ANNOTATION_ROOT_FINGERPRINT])).length
    + podCertificates.filter((c) => onRetiring(c.rootFingerprint)).length;
  const copies = bundleCopyPems(d, name);
  return {
    now: d.now(), bundleCopies: { total: copies.length, updated: copies.filter((pem) => pem === bundlePem).length },
    leaves: secrets.length + podCertificates.length, leavesOnRetiring,
  };
}

function identitySecretsOf(d: Caches, name: string): Secret[] {
  return d.secretList.list().filter((s) => s.metadata.labels?.[LABEL_TRUST_DOMAIN] === name && s.metadata.labels?.[LABEL_IDENTITY]);
}

/**
 * Copies of the bundle: every bundle ConfigMap, and the ca.crt of every identity
 * Secret whose leaf has not expired. An expired leaf is of no use until it is
 * re-issued, which writes the new bundle; while nothing may sign (a lost CA being
 * replaced), waiting on its copy would wait forever.
 */
export function bundleCopyPems(d: Caches, name: string): string[] {
  const now = d.now().getTime();
  const live = identitySecretsOf(d, name).filter((s) => !(Date.parse(s.metadata.annotations?.[ANNOTATION_NOT_AFTER] ?? '') <= now));
  return [
    ...live.map((s) => Buffer.from(s.data?.[SECRET_BUNDLE] ?? '', 'base64').toString('utf8')),
    ...bundleCopies(d, bundleConfigMapName(name)).map((c) => c.data?.[SECRET_BUNDLE] ?? ''),
  ];
}
