// A self-signed CA: the operator's own root and intermediate in its CA Secret
// (ca/state.ts), rotated by ca/rotation.ts's nextStep.
// A CA is generated only after the API server itself answered 404 for its
// Secret: a failed, timed-out or forbidden read must never replace a CA,
// because that silently breaks every agent's trust at once; and a 404 for a
// CA this TrustDomain already used restores it or waits to be told
// (ca-loss.ts) rather than making a root no agent trusts.
import type { X509Certificate } from '@peculiar/x509';
import { ANNOTATION_ROTATE_REQUESTED_AT } from '../api/group.ts';
import { rfc3339 } from '../api/conditions.ts';
import type { Secret, TrustDomain } from '../api/types.ts';
import { createRoot, createIntermediate, loadCA } from '../pki/ca.ts';
import { parseCertificates, fingerprintOf } from '../pki/parse.ts';
import { certificatesToPem } from '../pki/pem.ts';
import { isNotFound, toKubeError } from '../kube/errors.ts';
import { ReconcileFailure, reportFailure } from '../controller/failure.ts';
import { caSecretName, readCAState, writeCAState, type CAState } from '../ca/state.ts';
import { nextStep } from '../ca/rotation.ts';
import { refreshHintMs } from '../api/defaults.ts';
import { onCASecretNotFound, recordedRootsOf } from './ca-loss.ts';
import { CONTROLLER, trustDomainRef, type TrustReconcilerDeps } from './deps.ts';
import { bundleCopyPems, type Progress } from './progress.ts';
import { loadPair, rootsOf, type Action, type CASource, type LoadedCA } from './source.ts';

export function selfSignedSource(d: TrustReconcilerDeps): CASource<CAState> {
  // The CA state this process last loaded or wrote: what a deleted CA Secret
  // is restored from. Never leaves the process.
  const held = new Map<string, CAState>();
  return {
    load: (trustDomain) => load(d, trustDomain, held),
    decide: (trustDomain, ca, progress) => nextStep(rotationInput(d, trustDomain, ca.state, progress), d.rotation),
    apply: (trustDomain, ca, step) => applyStep(d, trustDomain, ca, step, held),
    forget: (name) => held.delete(name),
  };
}

async function applyStep(d: TrustReconcilerDeps, trustDomain: TrustDomain, ca: LoadedCA<CAState>, step: Action, held: Map<string, CAState>): Promise<void> {
  const state: CAState = { ...ca.state };
  const now = rfc3339(d.now());
  let event: string;
  switch (step.kind) {
    case 'StartRotation':
      state.incoming = await createRoot(caOptions(d, trustDomain, d.caDurationMs));
      state.rotation = { phase: 'PublishingRoot', reason: step.reason, startedAt: now, phaseStartedAt: now };
      if (step.reason === 'Requested') state.lastRotationRequest = trustDomain.metadata.annotations?.[ANNOTATION_ROTATE_REQUESTED_AT];
      event = `root rotation started (${step.reason}): publishing the new root ${await rootFingerprint(state.incoming)} next to the old one`;
      break;
    case 'SwitchSigner': {
      const incoming = state.incoming!;
      state.intermediate = await createIntermediate(await loadCA(incoming.certificatePem, incoming.privateKeyPem), caOptions(d, trustDomain, d.intermediateDurationMs));
      state.retiringPem = [state.retiringPem, state.root?.certificatePem].filter(Boolean).join('');
      state.root = incoming;
      state.incoming = undefined;
      state.rotation = { ...state.rotation!, phase: 'ReissuingLeaves', phaseStartedAt: now };
      event = `every bundle copy carries the new root ${await rootFingerprint(state.root)}; signing moved to a new intermediate under it; re-issuing leaves`;
      break;
    }
    case 'RetireRoot':
      state.rotation = { ...state.rotation!, phase: 'RetiringRoot', phaseStartedAt: now };
      event = `every leaf chains to the new root ${await rootFingerprint(state.root!)}; the old root leaves the bundle after the grace period`;
      break;
    case 'FinishRotation':
      state.retiringPem = undefined;
      state.rotation = undefined;
      event = `root rotation to ${await rootFingerprint(state.root!)} complete: the old root left the bundle`;
      break;
    case 'RenewIntermediate':
      state.intermediate = await createIntermediate(await loadCA(state.root!.certificatePem, state.root!.privateKeyPem), caOptions(d, trustDomain, d.intermediateDurationMs));
      event = `renewed the intermediate: ${step.reason}`;
      break;
  }
  await d.api.replaceSecret(writeCAState({ namespace: d.operatorNamespace, trustDomainObject: trustDomain.metadata.name!, existing: ca.secret }, state));
  held.set(trustDomain.metadata.name!, state);
  d.log.info({ trustDomain: trustDomain.metadata.name, step: step.kind }, event);
  d.events.record(trustDomainRef(trustDomain), 'Normal', step.kind, event);
}

async function load(d: TrustReconcilerDeps, trustDomain: TrustDomain, held: Map<string, CAState>): Promise<LoadedCA<CAState>> {
  const name = caSecretName(trustDomain.metadata.name!);
  const ns = d.operatorNamespace;
  let secret = d.secrets.get(name, ns);
  if (!secret) {
    try {
      secret = await d.api.getSecret(ns, name);
    } catch (err) {
      if (!isNotFound(err)) {
        throw new ReconcileFailure('CASecretUnreadable', `cannot read CA Secret ${ns}/${name}, so no CA will be generated: ${toKubeError(err).message}`, { cause: err });
      }
      // Confirmed 404: this is the only path that creates a CA Secret.
      secret = await onCASecretGone(d, trustDomain, held.get(trustDomain.metadata.name!));
    }
  }
  const state = readCAState(secret);
  if (!state) throw new ReconcileFailure('CANotUsable', `CA Secret ${ns}/${name} holds no root certificate and key; restore it from a backup, or delete it: the operator then writes back the CA it last loaded if it still holds one, else waits for "agent-identity ca rotate ${trustDomain.metadata.name}" to replace it with overlap`, { retry: false });
  const root = state.root ? await loadPair(state.root.certificatePem, state.root.privateKeyPem, `${ns}/${name} root`) : undefined;
  const intermediate = state.intermediate ? await loadPair(state.intermediate.certificatePem, state.intermediate.privateKeyPem, `${ns}/${name} intermediate`) : undefined;
  const bundle = await rootsOf(trustDomain.spec.trustDomain, {
    retiring: state.retiringPem ? parseCertificates(state.retiringPem) : [],
    active: root ? [root.certificate] : [],
    incoming: state.incoming ? parseCertificates(state.incoming.certificatePem) : [],
  });
  held.set(trustDomain.metadata.name!, state);
  return {
    ...bundle, secret, state,
    // Without a root (a lost CA being replaced) nothing signs until the new one is published.
    signer: intermediate ?? root,
    intermediate: intermediate?.certificate,
    rotation: state.rotation,
    lastRotationRequest: state.lastRotationRequest,
  };
}

/** The CA Secret answered 404: generate, restore, replace or hold (ca-loss.ts). */
async function onCASecretGone(d: TrustReconcilerDeps, trustDomain: TrustDomain, held: CAState | undefined): Promise<Secret> {
  const recorded = (trustDomain.status?.roots ?? []).map((r) => r.fingerprint);
  const action = onCASecretNotFound({ recordedRoots: recorded, held, requested: trustDomain.metadata.annotations?.[ANNOTATION_ROTATE_REQUESTED_AT], lastRequest: trustDomain.status?.lastRotationRequest });
  const where = `${d.operatorNamespace}/${caSecretName(trustDomain.metadata.name!)}`;
  const lost = `CA Secret ${where} was deleted after this TrustDomain's agents came to trust root ${recorded.join(', ')}`;
  switch (action.kind) {
    case 'Generate':
      return generateCA(d, trustDomain);
    case 'Restore': {
      await reportFailure(d, CONTROLLER, trustDomain.metadata.name!, trustDomainRef(trustDomain), new ReconcileFailure('CASecretLost', `${lost}; writing it back from the copy this operator holds in memory`));
      const restored = await createCASecret(d, trustDomain, action.state);
      d.events.record(trustDomainRef(trustDomain), 'Warning', 'CASecretRestored', `restored CA Secret ${where} from memory: same root and intermediate, no certificate re-issued. Back it up: after a restart the operator holds no copy`);
      return restored;
    }
    case 'Replace':
      return replaceLostCA(d, trustDomain, action.request, recorded);
    case 'Hold':
      throw new ReconcileFailure('CASecretLost', `${lost}, and this operator holds no copy of it (it restarted since). No new CA was generated: no agent would trust it. Either restore the Secret from a backup, or run "agent-identity ca rotate ${trustDomain.metadata.name}" (sets ${ANNOTATION_ROTATE_REQUESTED_AT}) for a new root that is published next to the old ones before it signs`, { retry: false });
  }
}

async function generateCA(d: TrustReconcilerDeps, trustDomain: TrustDomain): Promise<Secret> {
  const rootOptions = caOptions(d, trustDomain, d.caDurationMs);
  const root = await createRoot(rootOptions);
  const intermediate = await createIntermediate(await loadCA(root.certificatePem, root.privateKeyPem), caOptions(d, trustDomain, d.intermediateDurationMs));
  const created = await createCASecret(d, trustDomain, { root, intermediate });
  const fingerprint = await rootFingerprint(root);
  d.metrics.caGenerated.inc({ trust_domain: trustDomain.metadata.name! });
  d.log.info({ trustDomain: trustDomain.metadata.name, fingerprint }, 'generated self-signed CA');
  d.events.record(trustDomainRef(trustDomain), 'Normal', 'CAGenerated', `generated a self-signed ${rootOptions.algorithm} root ${fingerprint} and intermediate in Secret ${d.operatorNamespace}/${created.metadata.name}`);
  return created;
}

/**
 * Asked for a new CA after the old one was lost with its keys: a rotation that
 * cannot sign with the old root but keeps its certificate (public, from any
 * bundle copy) in the bundle as Retiring, so agents holding old leaves keep
 * trusting each other while the new root is published and leaves move to it.
 */
async function replaceLostCA(d: TrustReconcilerDeps, trustDomain: TrustDomain, request: string, recorded: string[]): Promise<Secret> {
  const name = trustDomain.metadata.name!;
  const old = await recordedRootsOf(recorded, bundleCopyPems(d, name).flatMap(certificatesIn), fingerprintOf);
  const now = rfc3339(d.now());
  const incoming = await createRoot(caOptions(d, trustDomain, d.caDurationMs));
  const created = await createCASecret(d, trustDomain, {
    incoming, retiringPem: old.length ? certificatesToPem(old) : undefined, lastRotationRequest: request,
    rotation: { phase: 'PublishingRoot', reason: 'CASecretLost', startedAt: now, phaseStartedAt: now },
  });
  const fingerprint = await rootFingerprint(incoming);
  d.metrics.caGenerated.inc({ trust_domain: name });
  const dropped = recorded.length - old.length;
  const event = `root rotation started (CASecretLost): a new root ${fingerprint} replaces the lost CA; it is published next to the ${old.length} old root(s) and signs only once every bundle copy carries them all`
    + (dropped ? `; ${dropped} recorded root(s) were in no bundle copy and are gone` : '');
  d.log.warn({ trustDomain: name, fingerprint }, event);
  d.events.record(trustDomainRef(trustDomain), 'Warning', 'StartRotation', event);
  return created;
}

/** The certificates in one bundle copy; a copy someone broke holds none. */
function certificatesIn(pem: string): X509Certificate[] {
  try {
    return parseCertificates(pem);
  } catch {
    return [];
  }
}

async function createCASecret(d: TrustReconcilerDeps, trustDomain: TrustDomain, state: CAState): Promise<Secret> {
  const secret = writeCAState({ namespace: d.operatorNamespace, trustDomainObject: trustDomain.metadata.name! }, state);
  try {
    return await d.api.createSecret(secret);
  } catch (err) {
    // AlreadyExists means another writer won the race; the retry reads theirs.
    throw new ReconcileFailure('CASecretCreateFailed', `cannot create CA Secret ${d.operatorNamespace}/${secret.metadata.name}: ${toKubeError(err).message}`, { cause: err });
  }
}

function caOptions(d: TrustReconcilerDeps, trustDomain: TrustDomain, validityMs: number) {
  return { trustDomain: trustDomain.spec.trustDomain, algorithm: trustDomain.spec.ca.selfSigned?.keyAlgorithm ?? 'ECDSA', validityMs, now: d.now() };
}

function rotationInput(d: TrustReconcilerDeps, trustDomain: TrustDomain, state: CAState, progress: Progress | undefined) {
  // Rootless only while a lost CA is replaced, so always mid-rotation: the root's dates then decide nothing.
  const root = parseCertificates((state.root ?? state.incoming!).certificatePem)[0]!;
  const intermediate = state.intermediate ? parseCertificates(state.intermediate.certificatePem)[0]! : undefined;
  return {
    now: d.now(),
    root: { notBefore: root.notBefore, notAfter: root.notAfter },
    intermediate: intermediate ? { notBefore: intermediate.notBefore, notAfter: intermediate.notAfter, issuedByRoot: intermediate.issuer === root.subject } : undefined,
    rotation: state.rotation ? { phase: state.rotation.phase, phaseStartedAt: new Date(state.rotation.phaseStartedAt) } : undefined,
    requested: trustDomain.metadata.annotations?.[ANNOTATION_ROTATE_REQUESTED_AT],
    lastRequest: state.lastRotationRequest,
    bundleCopies: progress?.bundleCopies ?? { total: 0, updated: 0 },
    leavesOnRetiring: progress?.leavesOnRetiring ?? 0,
    partnerRefreshMs: refreshHintMs(trustDomain),
  };
}

/** Rotation events name the new root, so a second rotation's events are not collapsed into the first's. */
async function rootFingerprint(root: { certificatePem: string }): Promise<string> {
  return fingerprintOf(parseCertificates(root.certificatePem)[0]!);
}
