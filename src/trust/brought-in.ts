// A brought-in CA (spec.ca.secretRef): the admin's issuer owns the key; what
// the operator adopted lives in a state ConfigMap (external.ts), and a changed
// CA runs the same overlap phases as a root rotation (ca/rotation.ts's phaseStep).
import { SECRET_CERT, SECRET_KEY, SECRET_BUNDLE } from '../api/group.ts';
import { rfc3339 } from '../api/conditions.ts';
import type { ConfigMap, Secret, TrustDomain } from '../api/types.ts';
import { parseCertificates, fingerprintOf } from '../pki/parse.ts';
import { Bundle } from '../pki/bundle.ts';
import { toKubeError } from '../kube/errors.ts';
import { ReconcileFailure } from '../controller/failure.ts';
import { phaseStep } from '../ca/rotation.ts';
import { refreshHintMs } from '../api/defaults.ts';
import { externalStateName, onExternalSigner, readExternalState, writeExternalState, type ExternalState } from './external.ts';
import { trustDomainRef, type TrustReconcilerDeps } from './deps.ts';
import { loadPair, rootsOf, type Action, type CASource, type LoadedCA } from './source.ts';

/** The adopted state, and the ConfigMap it was read from (replaced on each step). */
export interface BroughtInState { external: ExternalState; home?: ConfigMap }

export function broughtInSource(d: TrustReconcilerDeps): CASource<BroughtInState> {
  return {
    load: (trustDomain) => load(d, trustDomain),
    decide: (trustDomain, ca, progress) => ca.rotation
      ? phaseStep({ ...ca.rotation, phaseStartedAt: new Date(ca.rotation.phaseStartedAt) }, { ...progress!, partnerRefreshMs: refreshHintMs(trustDomain) }, d.rotation)
      : undefined,
    apply: (trustDomain, ca, step) => applyStep(d, trustDomain, ca, step),
    forget: () => undefined,
    pollMs: d.externalCAPollMs,
  };
}

async function load(d: TrustReconcilerDeps, trustDomain: TrustDomain): Promise<LoadedCA<BroughtInState> | undefined> {
  const ref = trustDomain.spec.ca.secretRef!;
  let secret: Secret;
  try {
    secret = await d.api.getSecret(ref.namespace, ref.name);
  } catch (err) {
    const e = toKubeError(err);
    if (e.code === 404) throw new ReconcileFailure('CASecretNotFound', `CA Secret ${ref.namespace}/${ref.name} does not exist`, { retry: false });
    throw new ReconcileFailure('CASecretUnreadable', `cannot read CA Secret ${ref.namespace}/${ref.name}: ${e.message}`, { cause: e });
  }
  const text = (k: string) => (secret.data?.[k] ? Buffer.from(secret.data[k], 'base64').toString('utf8') : undefined);
  const cert = text(SECRET_CERT);
  const key = text(SECRET_KEY);
  const where = `${ref.namespace}/${ref.name}`;
  if (!cert || !key) throw new ReconcileFailure('CANotUsable', `CA Secret ${where} must hold ${SECRET_CERT} and ${SECRET_KEY}`, { retry: false });
  const ca = await loadPair(cert, key, where);
  // ca.crt when present (cert-manager CA Secrets have it), else the root the chain ends in.
  const explicit = text(SECRET_BUNDLE);
  const offered = explicit ? Bundle.fromPem(trustDomain.spec.trustDomain, explicit) : new Bundle(trustDomain.spec.trustDomain, [ca.root ?? ca.chain[ca.chain.length - 1] ?? ca.certificate]);
  const signerFingerprint = await fingerprintOf(ca.certificate);
  const home = d.configMaps.get(externalStateName(trustDomain.metadata.name!), d.operatorNamespace);
  const state = readExternalState(home);
  const fingerprints = async (pem: string | undefined) => Promise.all((pem ? parseCertificates(pem) : []).map((c) => fingerprintOf(c)));
  const known = new Set([...await fingerprints(state?.rootsPem), ...await fingerprints(state?.retiringPem)]);
  const next = onExternalSigner(state, signerFingerprint, { pem: offered.toPem(), fingerprints: await Promise.all(offered.roots.map((c) => fingerprintOf(c))) }, known, rfc3339(d.now()));
  if (next) {
    const cm = writeExternalState({ namespace: d.operatorNamespace, trustDomainObject: trustDomain.metadata.name!, existing: home }, next);
    await (home ? d.api.replaceConfigMap(cm) : d.api.createConfigMap(cm));
    if (next.rotation && !state?.rotation) d.events.record(trustDomainRef(trustDomain), 'Normal', 'StartRotation', `the CA in Secret ${where} changed to signer ${signerFingerprint}: publishing its roots next to the old ones before it signs`);
    return undefined;
  }
  const adopted = state!;
  const bundle = await rootsOf(trustDomain.spec.trustDomain, {
    retiring: adopted.retiringPem ? parseCertificates(adopted.retiringPem) : [],
    active: parseCertificates(adopted.rootsPem),
    incoming: adopted.incomingPem ? parseCertificates(adopted.incomingPem) : [],
  });
  return {
    ...bundle, secret,
    state: { external: adopted, home },
    signer: adopted.signer === signerFingerprint ? ca : undefined,
    rotation: adopted.rotation,
  };
}

/** A rotation step for a brought-in CA: the same phases, over the state ConfigMap. */
async function applyStep(d: TrustReconcilerDeps, trustDomain: TrustDomain, ca: LoadedCA<BroughtInState>, step: Action): Promise<void> {
  const s: ExternalState = { ...ca.state.external };
  const now = rfc3339(d.now());
  if (step.kind === 'SwitchSigner') {
    const incoming = new Set(await Promise.all(parseCertificates(s.incomingPem ?? '').map((c) => fingerprintOf(c))));
    const old = parseCertificates(s.rootsPem);
    const leaving: string[] = [];
    for (const c of old) if (!incoming.has(await fingerprintOf(c))) leaving.push(c.toString('pem'));
    s.retiringPem = [s.retiringPem, ...leaving].filter(Boolean).join('\n') || undefined;
    s.rootsPem = s.incomingPem!;
    s.signer = s.incomingSigner!;
    s.incomingPem = undefined;
    s.incomingSigner = undefined;
    s.rotation = { ...s.rotation!, phase: 'ReissuingLeaves', phaseStartedAt: now };
  } else if (step.kind === 'RetireRoot') {
    s.rotation = { ...s.rotation!, phase: 'RetiringRoot', phaseStartedAt: now };
  } else if (step.kind === 'FinishRotation') {
    s.retiringPem = undefined;
    s.rotation = undefined;
  } else {
    return;
  }
  await d.api.replaceConfigMap(writeExternalState({ namespace: d.operatorNamespace, trustDomainObject: trustDomain.metadata.name!, existing: ca.state.home }, s));
  d.log.info({ trustDomain: trustDomain.metadata.name, step: step.kind }, 'external CA rotation step');
  // Naming the new signer keeps each rotation's events apart (identical events are collapsed for 10 minutes).
  d.events.record(trustDomainRef(trustDomain), 'Normal', step.kind, `external CA rotation to signer ${s.signer}: ${step.kind}`);
}
