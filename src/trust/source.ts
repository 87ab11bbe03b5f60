// Where a trust domain's CA comes from, behind one interface: self-signed
// (self-signed.ts: the operator's own CA in its CA Secret) or brought in
// (brought-in.ts: spec.ca.secretRef, the admin's issuer owns the key). Each
// loads the CA, picks its next lifecycle step and applies it; the reconciler
// publishes and reports the same way for both.
import type { X509Certificate } from '@peculiar/x509';
import type { RootStatus, Secret, TrustDomain } from '../api/types.ts';
import { rfc3339 } from '../api/conditions.ts';
import { loadCA, type CA } from '../pki/ca.ts';
import { fingerprintOf } from '../pki/parse.ts';
import { Bundle } from '../pki/bundle.ts';
import { PkiError } from '../pki/errors.ts';
import { ReconcileFailure } from '../controller/failure.ts';
import type { Step } from '../ca/rotation.ts';
import type { CAState } from '../ca/state.ts';
import type { Progress } from './progress.ts';

/** The signer, the bundle and the rotation facts of one trust domain, and the source's own state `S`. */
export interface LoadedCA<S> {
  /** The Secret the CA was read from. */
  secret: Secret;
  /** Absent while nothing may sign (new roots not yet in every bundle copy). */
  signer?: CA;
  bundle: Bundle;
  roots: RootStatus[];
  activeRootFingerprint: string;
  retiringRootFingerprints: Set<string>;
  /** The running rotation, as the source persisted it. */
  rotation?: CAState['rotation'];
  /** Self-signed only: the intermediate that signs, and the rotate request last answered. */
  intermediate?: X509Certificate;
  lastRotationRequest?: string;
  state: S;
}

export type Action = Exclude<Step, { kind: 'Wait' }>;

export interface CASource<S> {
  /** The CA, or undefined when its state was just written (the watch brings it back through the cache). */
  load(trustDomain: TrustDomain): Promise<LoadedCA<S> | undefined>;
  /** The next lifecycle step; `progress` is known only while a rotation runs. */
  decide(trustDomain: TrustDomain, ca: LoadedCA<S>, progress: Progress | undefined): Step | undefined;
  apply(trustDomain: TrustDomain, ca: LoadedCA<S>, step: Action): Promise<void>;
  /** The TrustDomain is gone: drop what is held for it. */
  forget(name: string): void;
  /** Looked at again this often even when nothing changes (a brought-in CA Secret is not watched). */
  pollMs?: number;
}

/** The bundle and its roots' status, in one order: retiring, active, incoming. */
export async function rootsOf(spiffeTrustDomain: string, certs: { retiring: X509Certificate[]; active: X509Certificate[]; incoming: X509Certificate[] }) {
  const roots: RootStatus[] = [];
  for (const [list, state] of [[certs.retiring, 'Retiring'], [certs.active, 'Active'], [certs.incoming, 'Incoming']] as const) {
    for (const c of list) roots.push({ fingerprint: await fingerprintOf(c), subject: c.subject, notBefore: rfc3339(c.notBefore), notAfter: rfc3339(c.notAfter), state });
  }
  return {
    roots,
    bundle: new Bundle(spiffeTrustDomain, [...certs.retiring, ...certs.active, ...certs.incoming]),
    activeRootFingerprint: roots.filter((r) => r.state === 'Active').at(-1)?.fingerprint ?? '',
    retiringRootFingerprints: new Set(roots.filter((r) => r.state === 'Retiring').map((r) => r.fingerprint)),
  };
}

// The trust reconciler runs on every identity Secret change (rotation progress),
// so its CA is loaded (parsed, key checked) once per PEM, not once per run. A
// few entries cover a rotation's root, intermediate and their successors.
const LOADED_MAX = 8;
const loaded = new Map<string, Promise<CA>>();

function loadCached(certPem: string, keyPem: string): Promise<CA> {
  const key = `${certPem}\0${keyPem}`;
  let ca = loaded.get(key);
  if (ca) {
    loaded.delete(key); // re-inserted below: most recently used last
  } else {
    ca = loadCA(certPem, keyPem);
    ca.catch(() => loaded.delete(key));
  }
  loaded.set(key, ca);
  for (const oldest of loaded.keys()) if (loaded.size > LOADED_MAX) loaded.delete(oldest);
  return ca;
}

export async function loadPair(certPem: string, keyPem: string, where: string): Promise<CA> {
  try {
    return await loadCached(certPem, keyPem);
  } catch (err) {
    if (err instanceof PkiError) throw new ReconcileFailure('CANotUsable', `CA ${where}: ${err.message}`, { retry: false });
    throw err;
  }
}
