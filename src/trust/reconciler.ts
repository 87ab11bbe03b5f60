// TrustDomain reconciler: make sure the trust domain has a usable CA, load it
// into the TrustStore, and report. A self-signed CA is generated only after
// the API server itself answered 404 for its Secret: a failed, timed-out or
// forbidden read must never replace a CA, because that silently breaks every
// agent's trust at once.
import { TRUST_DOMAIN, API_VERSION, SECRET_CERT, SECRET_KEY, SECRET_BUNDLE } from '../api/group.ts';
import { DEFAULT_SPIFFE_ID_TEMPLATE } from '../api/defaults.ts';
import { setCondition, rfc3339 } from '../api/conditions.ts';
import type { Secret, TrustDomain, TrustDomainStatus } from '../api/types.ts';
import { createRoot, loadCA, type CA } from '../pki/ca.ts';
import { parseCertificates, fingerprintOf } from '../pki/parse.ts';
import { Bundle } from '../pki/bundle.ts';
import { PkiError } from '../pki/errors.ts';
import { isNotFound, toKubeError } from '../kube/errors.ts';
import { ReconcileFailure, failureOf } from '../controller/failure.ts';
import { jsonEqual } from '../controller/equal.ts';
import type { Result } from '../controller/queue.ts';
import { reportFailure, type ReconcileContext } from '../context.ts';
import { caSecretName, newCASecret } from './ca-secret.ts';

export interface TrustReconcilerDeps extends ReconcileContext {
  api: {
    getSecret(namespace: string, name: string): Promise<Secret>;
    createSecret(secret: Secret): Promise<Secret>;
    patchTrustDomainStatus(name: string, status: TrustDomainStatus): Promise<unknown>;
  };
  operatorNamespace: string;
  caDurationMs: number;
  /** How often an external CA Secret (not watched: it carries no operator label) is re-read. */
  externalCAPollMs: number;
}

const CONTROLLER = 'trustdomain';

export function trustReconciler(d: TrustReconcilerDeps): (key: string) => Promise<Result> {
  return async (name) => {
    const td = d.trustDomains.get(name);
    if (!td || td.metadata.deletionTimestamp) {
      // The CA Secret is kept on purpose: re-creating the TrustDomain then
      // reuses the same CA instead of breaking every agent's trust.
      d.store.delete(name);
      return {};
    }
    try {
      const { secret, generated } = await caSecretFor(d, td);
      const ca = await loadSigner(secret);
      const bundle = bundleOf(td.spec.trustDomain, secret, ca);
      const fingerprint = await fingerprintOf(ca.certificate);
      d.store.set({
        name, trustDomain: td.spec.trustDomain,
        spiffeIDTemplate: td.spec.spiffeIDTemplate ?? DEFAULT_SPIFFE_ID_TEMPLATE,
        signer: ca, bundle: bundle.roots, bundlePem: bundle.toPem(), caFingerprint: fingerprint,
      });
      d.metrics.caExpiration.set({ trust_domain: name }, ca.certificate.notAfter.getTime() / 1000);
      const status: TrustDomainStatus = {
        ...td.status,
        observedGeneration: td.metadata.generation,
        caSecret: { namespace: secret.metadata.namespace!, name: secret.metadata.name! },
        caSubject: ca.certificate.subject,
        caFingerprint: fingerprint,
        caNotAfter: rfc3339(ca.certificate.notAfter),
        conditions: setCondition(td.status?.conditions, {
          type: 'Ready', status: 'True', reason: 'CAReady',
          message: generated ? 'generated a new self-signed CA' : 'the CA is loaded and signing',
          observedGeneration: td.metadata.generation,
        }, d.now()),
      };
      await writeStatus(d, td, status);
      d.metrics.reconciles.inc({ controller: CONTROLLER, result: 'success' });
      return td.spec.ca.secretRef ? { requeueAfter: d.externalCAPollMs } : {};
    } catch (err) {
      const f = failureOf(err, 'CANotReady');
      d.store.delete(name);
      await reportFailure(d, CONTROLLER, name, targetOf(td), f);
      await writeStatus(d, td, {
        ...td.status,
        observedGeneration: td.metadata.generation,
        conditions: setCondition(td.status?.conditions, { type: 'Ready', status: 'False', reason: f.reason, message: f.message, observedGeneration: td.metadata.generation }, d.now()),
      }).catch((e) => d.log.warn({ err: toKubeError(e).message, trustDomain: name }, 'status update failed'));
      if (!f.retry) return { requeueAfter: d.externalCAPollMs };
      throw f;
    }
  };
}

async function caSecretFor(d: TrustReconcilerDeps, td: TrustDomain): Promise<{ secret: Secret; generated: boolean }> {
  const ref = td.spec.ca.secretRef;
  if (ref) {
    try {
      return { secret: await d.api.getSecret(ref.namespace, ref.name), generated: false };
    } catch (err) {
      const e = toKubeError(err);
      if (e.code === 404) throw new ReconcileFailure('CASecretNotFound', `CA Secret ${ref.namespace}/${ref.name} does not exist`, { retry: false });
      throw new ReconcileFailure('CASecretUnreadable', `cannot read CA Secret ${ref.namespace}/${ref.name}: ${e.message}`);
    }
  }
  const name = caSecretName(td.metadata.name!);
  const ns = d.operatorNamespace;
  const cached = d.secrets.get(name, ns);
  if (cached) return { secret: cached, generated: false };
  try {
    return { secret: await d.api.getSecret(ns, name), generated: false };
  } catch (err) {
    if (!isNotFound(err)) {
      throw new ReconcileFailure('CASecretUnreadable', `cannot read CA Secret ${ns}/${name}, so no CA will be generated: ${toKubeError(err).message}`);
    }
  }
  // Confirmed 404: this is the only path that creates a CA.
  const algorithm = td.spec.ca.selfSigned?.keyAlgorithm ?? 'ECDSA';
  const root = await createRoot({ trustDomain: td.spec.trustDomain, algorithm, validityMs: d.caDurationMs, now: d.now() });
  const fingerprint = await fingerprintOf(parseCertificates(root.certificatePem)[0]!);
  let created: Secret;
  try {
    created = await d.api.createSecret(newCASecret({ namespace: ns, trustDomainObject: td.metadata.name!, ...root, fingerprint }));
  } catch (err) {
    // AlreadyExists means another writer won the race; the retry reads theirs.
    throw new ReconcileFailure('CASecretCreateFailed', `cannot create CA Secret ${ns}/${name}: ${toKubeError(err).message}`);
  }
  d.metrics.caGenerated.inc({ trust_domain: td.metadata.name! });
  d.log.info({ trustDomain: td.metadata.name, fingerprint }, 'generated self-signed CA');
  await d.events.record(targetOf(td), 'Normal', 'CAGenerated', `generated a self-signed ${algorithm} CA ${fingerprint} in Secret ${ns}/${name}`);
  return { secret: created, generated: true };
}

async function loadSigner(secret: Secret): Promise<CA> {
  const cert = decode(secret, SECRET_CERT);
  const key = decode(secret, SECRET_KEY);
  const where = `${secret.metadata.namespace}/${secret.metadata.name}`;
  if (!cert || !key) throw new ReconcileFailure('CANotUsable', `CA Secret ${where} must hold ${SECRET_CERT} and ${SECRET_KEY}`, { retry: false });
  try {
    return await loadCA(cert, key);
  } catch (err) {
    if (err instanceof PkiError) throw new ReconcileFailure('CANotUsable', `CA Secret ${where}: ${err.message}`, { retry: false });
    throw err;
  }
}

/** ca.crt when the Secret carries one (cert-manager CA Secrets do), else the root the chain ends in, else the signer itself. */
function bundleOf(trustDomain: string, secret: Secret, ca: CA): Bundle {
  const explicit = decode(secret, SECRET_BUNDLE);
  if (explicit) return Bundle.fromPem(trustDomain, explicit);
  return new Bundle(trustDomain, [ca.root ?? ca.chain[ca.chain.length - 1] ?? ca.certificate]);
}

function decode(secret: Secret, key: string): string | undefined {
  const v = secret.data?.[key];
  return v ? Buffer.from(v, 'base64').toString('utf8') : undefined;
}

async function writeStatus(d: TrustReconcilerDeps, td: TrustDomain, status: TrustDomainStatus): Promise<void> {
  if (jsonEqual(status, td.status ?? {})) return;
  await d.api.patchTrustDomainStatus(td.metadata.name!, status);
}

function targetOf(td: TrustDomain) {
  return { apiVersion: API_VERSION, kind: TRUST_DOMAIN.kind, metadata: td.metadata };
}
