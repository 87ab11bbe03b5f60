// TrustDomain reconciler: own the CA lifecycle (Root → Intermediate, root
// rotation with overlap), publish the bundle and deny list, report.
// A self-signed CA is generated only after the API server itself answered
// 404 for its Secret: a failed, timed-out or forbidden read must never replace
// a CA, because that silently breaks every agent's trust at once; and a 404
// for a CA this TrustDomain already used restores it or waits to be told
// (ca-loss.ts) rather than making a root no agent trusts.
import type { X509Certificate } from '@peculiar/x509';
import { TRUST_DOMAIN, API_VERSION, SECRET_CERT, SECRET_KEY, SECRET_BUNDLE, BUNDLE_DENYLIST, ANNOTATION_ROTATE_REQUESTED_AT, ANNOTATION_ROOT_FINGERPRINT, ANNOTATION_NOT_AFTER, LABEL_TRUST_DOMAIN, LABEL_IDENTITY } from '../api/group.ts';
import { DEFAULT_SPIFFE_ID_TEMPLATE } from '../api/defaults.ts';
import { setCondition, rfc3339 } from '../api/conditions.ts';
import type { AgentIdentity, ClusterTrustBundle, ConfigMap, Namespace, RootStatus, Secret, TrustDomain, TrustDomainStatus } from '../api/types.ts';
import { createRoot, createIntermediate, loadCA, type CA } from '../pki/ca.ts';
import { parseCertificates, fingerprintOf } from '../pki/parse.ts';
import { certificatesToPem } from '../pki/pem.ts';
import { Bundle } from '../pki/bundle.ts';
import { PkiError } from '../pki/errors.ts';
import { ifExists, isNotFound, toKubeError } from '../kube/errors.ts';
import { ReconcileFailure, failureOf } from '../controller/failure.ts';
import { jsonEqual, replacingPatch } from '../controller/equal.ts';
import type { Result } from '../controller/queue.ts';
import { reportFailure, type ReconcileContext } from '../context.ts';
import { caSecretName, readCAState, writeCAState, type CAState } from '../ca/state.ts';
import { onCASecretNotFound, recordedRootsOf } from './ca-loss.ts';
import { nextStep, phaseStep, type RotationConfig, type Step } from '../ca/rotation.ts';
import { externalStateName, onExternalSigner, readExternalState, writeExternalState, type ExternalState } from './external.ts';
import { bundleConfigMapName, bundleConflictMessage, bundleNamespaces, clusterTrustBundleName, desiredBundleConfigMap, desiredClusterTrustBundle, isOwnBundleCopy } from './publish.ts';
import { writeOwnedConfigMap } from './owned-configmap.ts';
import { controllerOf, isControlledBy } from '../api/owner.ts';
import { parseDenyList, pruned, serializeDenyList, nextExpiry } from './denylist.ts';

export interface TrustReconcilerDeps extends ReconcileContext {
  api: {
    getSecret(namespace: string, name: string): Promise<Secret>;
    createSecret(secret: Secret): Promise<Secret>;
    replaceSecret(secret: Secret): Promise<Secret>;
    getConfigMap(namespace: string, name: string): Promise<ConfigMap>;
    createConfigMap(cm: ConfigMap): Promise<ConfigMap>;
    replaceConfigMap(cm: ConfigMap): Promise<ConfigMap>;
    deleteConfigMap(namespace: string, name: string): Promise<unknown>;
    patchTrustDomainStatus(name: string, status: TrustDomainStatus): Promise<unknown>;
    getClusterTrustBundle(name: string): Promise<ClusterTrustBundle>;
    createClusterTrustBundle(body: ClusterTrustBundle): Promise<unknown>;
    replaceClusterTrustBundle(body: ClusterTrustBundle): Promise<unknown>;
  };
  /** Publish a ClusterTrustBundle too (when the API server serves them). */
  clusterTrustBundles: boolean;
  identities: { list(): readonly AgentIdentity[] };
  configMaps: { get(name: string, namespace?: string): ConfigMap | undefined; list(): readonly ConfigMap[] };
  namespaces: { list(): readonly Namespace[] };
  secretList: { list(): readonly Secret[] };
  operatorNamespace: string;
  caDurationMs: number;
  intermediateDurationMs: number;
  rotation: RotationConfig;
  /** How often an external CA Secret (not watched: it carries no operator label) is re-read. */
  externalCAPollMs: number;
}

const CONTROLLER = 'trustdomain';

/** The signer, the bundle and the rotation facts for one trust domain, loaded from its CA Secret. */
interface Loaded {
  secret: Secret;
  /** Absent while a changed external CA waits for its roots to be published: issuance pauses. */
  signer?: CA;
  bundle: Bundle;
  roots: RootStatus[];
  retiring: Set<string>;
  activeRoot: string;
  state?: CAState;
  external?: ExternalState;
  externalHome?: ConfigMap;
}

export function trustReconciler(d: TrustReconcilerDeps): (key: string) => Promise<Result> {
  // The bundle last written to each ClusterTrustBundle: they are not watched, and
  // re-reading one on every reconcile (every identity event queues one) is waste.
  // Trade-off: one deleted by hand returns when the bundle changes or the operator restarts.
  const publishedCTB = new Map<string, string>();
  // The self-signed CA state this process last loaded or wrote: what a deleted
  // CA Secret is restored from. Never leaves the process.
  const held = new Map<string, CAState>();
  return async (name) => {
    const td = d.trustDomains.get(name);
    if (!td || td.metadata.deletionTimestamp) {
      // The CA Secret is kept on purpose: re-creating the TrustDomain then
      // reuses the same CA instead of breaking every agent's trust.
      d.store.delete(name);
      held.delete(name);
      return {};
    }
    try {
      const loaded = td.spec.ca.secretRef ? await loadExternal(d, td) : await loadSelfSigned(d, td, held);
      // State written (an external CA adopted or changed); the watch brings it back through the cache.
      if (!loaded) return { requeueAfter: 1 };
      let requeue: number | undefined = td.spec.ca.secretRef ? d.externalCAPollMs : undefined;
      const bundlePem = loaded.bundle.toPem();
      const rotation = loaded.state?.rotation ?? loaded.external?.rotation;
      // Scanning every identity Secret is only needed while a rotation waits on them.
      const progress = rotation ? progressOf(d, td, loaded, bundlePem) : undefined;
      const step = loaded.state ? nextStep(rotationInput(d, td, loaded.state, progress), d.rotation)
        : rotation ? phaseStep({ ...rotation, phaseStartedAt: new Date(rotation.phaseStartedAt) }, progress!, d.rotation)
          : undefined;
      if (step?.kind === 'Wait') requeue = Math.min(requeue ?? Infinity, step.afterMs ?? Infinity);
      else if (step) {
        await (loaded.state ? applyStep(d, td, loaded, step, held) : applyExternalStep(d, td, loaded, step));
        return { requeueAfter: 1 };
      }
      const caFingerprint = loaded.signer ? await fingerprintOf(loaded.signer.certificate) : undefined;
      d.store.set({
        name, trustDomain: td.spec.trustDomain,
        spiffeIDTemplate: td.spec.spiffeIDTemplate ?? DEFAULT_SPIFFE_ID_TEMPLATE,
        signer: loaded.signer, bundle: loaded.bundle.roots, bundlePem,
        caFingerprint: caFingerprint ?? '',
        activeRootFingerprint: loaded.activeRoot,
        retiringRootFingerprints: loaded.retiring,
        rotation: rotation?.phase === 'ReissuingLeaves'
          ? { phaseStartedAt: new Date(rotation.phaseStartedAt), reissueWindowMs: d.rotation.reissueWindowMs } : undefined,
      });
      if (loaded.signer) d.metrics.caExpiration.set({ trust_domain: name }, loaded.signer.certificate.notAfter.getTime() / 1000);
      const published = await publishBundle(d, td, bundlePem, publishedCTB);
      const status = await statusOf(d, td, loaded, published, progress, caFingerprint);
      await writeStatus(d, td, status);
      d.metrics.reconciles.inc({ controller: CONTROLLER, result: 'success' });
      const pruneIn = published.nextExpiry ? published.nextExpiry.getTime() - d.now().getTime() : undefined;
      const next = [requeue, pruneIn].filter((x): x is number => x !== undefined && x >= 0);
      // A squatted bundle copy is reported, not a failure (the CA keeps signing). Nothing tells us when it
      // goes (it need not carry our label), so it is retried with the key's backoff.
      const backoff = published.bundleConflict !== undefined;
      return { ...(next.length ? { requeueAfter: Math.max(1, Math.min(...next)) } : {}), ...(backoff ? { backoff } : {}) };
    } catch (err) {
      const f = failureOf(err, 'CANotReady');
      d.store.fail(name, `${f.reason}: ${f.message}`);
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

// --- Loading

async function loadSelfSigned(d: TrustReconcilerDeps, td: TrustDomain, held: Map<string, CAState>): Promise<Loaded> {
  const name = caSecretName(td.metadata.name!);
  const ns = d.operatorNamespace;
  let secret = d.secrets.get(name, ns);
  if (!secret) {
    try {
      secret = await d.api.getSecret(ns, name);
    } catch (err) {
      if (!isNotFound(err)) {
        throw new ReconcileFailure('CASecretUnreadable', `cannot read CA Secret ${ns}/${name}, so no CA will be generated: ${toKubeError(err).message}`);
      }
      // Confirmed 404: this is the only path that creates a CA Secret.
      secret = await onCASecretGone(d, td, held.get(td.metadata.name!));
    }
  }
  const state = readCAState(secret);
  if (!state) throw new ReconcileFailure('CANotUsable', `CA Secret ${ns}/${name} holds no root certificate and key; restore it from a backup, or delete it: the operator then writes back the CA it last loaded if it still holds one, else waits for "agent-identity ca rotate ${td.metadata.name}" to replace it with overlap`, { retry: false });
  const root = state.root ? await loadPair(state.root.certificatePem, state.root.privateKeyPem, `${ns}/${name} root`) : undefined;
  const intermediate = state.intermediate ? await loadPair(state.intermediate.certificatePem, state.intermediate.privateKeyPem, `${ns}/${name} intermediate`) : undefined;
  const incoming = state.incoming ? parseCertificates(state.incoming.certificatePem) : [];
  const retiring = state.retiringPem ? parseCertificates(state.retiringPem) : [];
  const active = root ? [root.certificate] : [];
  const bundle = new Bundle(td.spec.trustDomain, [...retiring, ...active, ...incoming]);
  const fp = (c: X509Certificate) => fingerprintOf(c);
  const roots: RootStatus[] = [];
  for (const [certs, state_] of [[retiring, 'Retiring'], [active, 'Active'], [incoming, 'Incoming']] as const) {
    for (const c of certs) roots.push({ fingerprint: await fp(c), subject: c.subject, notBefore: rfc3339(c.notBefore), notAfter: rfc3339(c.notAfter), state: state_ });
  }
  held.set(td.metadata.name!, state);
  return {
    secret, state, bundle, roots,
    // Without a root (a lost CA being replaced) nothing signs until the new one is published.
    signer: intermediate ?? root,
    activeRoot: root ? await fp(root.certificate) : '',
    retiring: new Set(roots.filter((r) => r.state === 'Retiring').map((r) => r.fingerprint)),
  };
}

async function loadExternal(d: TrustReconcilerDeps, td: TrustDomain): Promise<Loaded | undefined> {
  const ref = td.spec.ca.secretRef!;
  let secret: Secret;
  try {
    secret = await d.api.getSecret(ref.namespace, ref.name);
  } catch (err) {
    const e = toKubeError(err);
    if (e.code === 404) throw new ReconcileFailure('CASecretNotFound', `CA Secret ${ref.namespace}/${ref.name} does not exist`, { retry: false });
    throw new ReconcileFailure('CASecretUnreadable', `cannot read CA Secret ${ref.namespace}/${ref.name}: ${e.message}`);
  }
  const text = (k: string) => (secret.data?.[k] ? Buffer.from(secret.data[k], 'base64').toString('utf8') : undefined);
  const cert = text(SECRET_CERT);
  const key = text(SECRET_KEY);
  const where = `${ref.namespace}/${ref.name}`;
  if (!cert || !key) throw new ReconcileFailure('CANotUsable', `CA Secret ${where} must hold ${SECRET_CERT} and ${SECRET_KEY}`, { retry: false });
  const ca = await loadPair(cert, key, where);
  // ca.crt when present (cert-manager CA Secrets have it), else the root the chain ends in.
  const explicit = text(SECRET_BUNDLE);
  const ext = explicit ? Bundle.fromPem(td.spec.trustDomain, explicit) : new Bundle(td.spec.trustDomain, [ca.root ?? ca.chain[ca.chain.length - 1] ?? ca.certificate]);
  const signerFp = await fingerprintOf(ca.certificate);
  const home = d.configMaps.get(externalStateName(td.metadata.name!), d.operatorNamespace);
  const state = readExternalState(home);
  const fps = async (pem: string | undefined) => Promise.all((pem ? parseCertificates(pem) : []).map((c) => fingerprintOf(c)));
  const known = new Set([...await fps(state?.rootsPem), ...await fps(state?.retiringPem)]);
  const next = onExternalSigner(state, signerFp, { pem: ext.toPem(), fingerprints: await Promise.all(ext.roots.map((c) => fingerprintOf(c))) }, known, rfc3339(d.now()));
  if (next) {
    const cm = writeExternalState({ namespace: d.operatorNamespace, trustDomainObject: td.metadata.name!, existing: home }, next);
    await (home ? d.api.replaceConfigMap(cm) : d.api.createConfigMap(cm));
    if (next.rotation && !state?.rotation) await d.events.record(targetOf(td), 'Normal', 'StartRotation', `the CA in Secret ${where} changed to signer ${signerFp}: publishing its roots next to the old ones before it signs`);
    return undefined;
  }
  const s = state!;
  const active = parseCertificates(s.rootsPem);
  const incoming = s.incomingPem ? parseCertificates(s.incomingPem) : [];
  const retiring = s.retiringPem ? parseCertificates(s.retiringPem) : [];
  const roots: RootStatus[] = [];
  for (const [certs, st] of [[retiring, 'Retiring'], [active, 'Active'], [incoming, 'Incoming']] as const) {
    for (const c of certs) roots.push({ fingerprint: await fingerprintOf(c), subject: c.subject, notBefore: rfc3339(c.notBefore), notAfter: rfc3339(c.notAfter), state: st });
  }
  return {
    secret, roots, external: s, externalHome: home,
    signer: s.signer === signerFp ? ca : undefined,
    bundle: new Bundle(td.spec.trustDomain, [...retiring, ...active, ...incoming]),
    retiring: new Set(roots.filter((r) => r.state === 'Retiring').map((r) => r.fingerprint)),
    activeRoot: roots.filter((r) => r.state === 'Active').at(-1)?.fingerprint ?? '',
  };
}

/** A rotation step for a brought-in CA: the same phases, over the state ConfigMap. */
async function applyExternalStep(d: TrustReconcilerDeps, td: TrustDomain, l: Loaded, step: Exclude<Step, { kind: 'Wait' }>): Promise<void> {
  const s: ExternalState = { ...l.external! };
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
  await d.api.replaceConfigMap(writeExternalState({ namespace: d.operatorNamespace, trustDomainObject: td.metadata.name!, existing: l.externalHome }, s));
  d.log.info({ trustDomain: td.metadata.name, step: step.kind }, 'external CA rotation step');
  // Naming the new signer keeps each rotation's events apart (identical events are collapsed for 10 minutes).
  await d.events.record(targetOf(td), 'Normal', step.kind, `external CA rotation to signer ${s.signer}: ${step.kind}`);
}

async function loadPair(certPem: string, keyPem: string, where: string): Promise<CA> {
  try {
    return await loadCA(certPem, keyPem);
  } catch (err) {
    if (err instanceof PkiError) throw new ReconcileFailure('CANotUsable', `CA ${where}: ${err.message}`, { retry: false });
    throw err;
  }
}

/** The CA Secret answered 404: generate, restore, replace or hold (ca-loss.ts). */
async function onCASecretGone(d: TrustReconcilerDeps, td: TrustDomain, held: CAState | undefined): Promise<Secret> {
  const recorded = (td.status?.roots ?? []).map((r) => r.fingerprint);
  const action = onCASecretNotFound({ recordedRoots: recorded, held, requested: td.metadata.annotations?.[ANNOTATION_ROTATE_REQUESTED_AT], lastRequest: td.status?.lastRotationRequest });
  const where = `${d.operatorNamespace}/${caSecretName(td.metadata.name!)}`;
  const lost = `CA Secret ${where} was deleted after this TrustDomain's agents came to trust root ${recorded.join(', ')}`;
  switch (action.kind) {
    case 'Generate':
      return generateCA(d, td);
    case 'Restore': {
      await reportFailure(d, CONTROLLER, td.metadata.name!, targetOf(td), new ReconcileFailure('CASecretLost', `${lost}; writing it back from the copy this operator holds in memory`));
      const restored = await createCASecret(d, td, action.state);
      await d.events.record(targetOf(td), 'Warning', 'CASecretRestored', `restored CA Secret ${where} from memory: same root and intermediate, no certificate re-issued. Back it up: after a restart the operator holds no copy`);
      return restored;
    }
    case 'Replace':
      return replaceLostCA(d, td, action.request, recorded);
    case 'Hold':
      throw new ReconcileFailure('CASecretLost', `${lost}, and this operator holds no copy of it (it restarted since). No new CA was generated: no agent would trust it. Either restore the Secret from a backup, or run "agent-identity ca rotate ${td.metadata.name}" (sets ${ANNOTATION_ROTATE_REQUESTED_AT}) for a new root that is published next to the old ones before it signs`, { retry: false });
  }
}

async function generateCA(d: TrustReconcilerDeps, td: TrustDomain): Promise<Secret> {
  const rootOptions = caOptions(d, td, d.caDurationMs);
  const root = await createRoot(rootOptions);
  const intermediate = await createIntermediate(await loadCA(root.certificatePem, root.privateKeyPem), caOptions(d, td, d.intermediateDurationMs));
  const created = await createCASecret(d, td, { root, intermediate });
  const fingerprint = await rootFingerprint(root);
  d.metrics.caGenerated.inc({ trust_domain: td.metadata.name! });
  d.log.info({ trustDomain: td.metadata.name, fingerprint }, 'generated self-signed CA');
  await d.events.record(targetOf(td), 'Normal', 'CAGenerated', `generated a self-signed ${rootOptions.algorithm} root ${fingerprint} and intermediate in Secret ${d.operatorNamespace}/${created.metadata.name}`);
  return created;
}

/**
 * Asked for a new CA after the old one was lost with its keys: a rotation that
 * cannot sign with the old root but keeps its certificate (public, from any
 * bundle copy) in the bundle as Retiring, so agents holding old leaves keep
 * trusting each other while the new root is published and leaves move to it.
 */
async function replaceLostCA(d: TrustReconcilerDeps, td: TrustDomain, request: string, recorded: string[]): Promise<Secret> {
  const tdName = td.metadata.name!;
  const old = await recordedRootsOf(recorded, bundleCopyPems(d, tdName).flatMap(certificatesIn), fingerprintOf);
  const now = rfc3339(d.now());
  const incoming = await createRoot(caOptions(d, td, d.caDurationMs));
  const created = await createCASecret(d, td, {
    incoming, retiringPem: old.length ? certificatesToPem(old) : undefined, lastRotationRequest: request,
    rotation: { phase: 'PublishingRoot', reason: 'CASecretLost', startedAt: now, phaseStartedAt: now },
  });
  const fingerprint = await rootFingerprint(incoming);
  d.metrics.caGenerated.inc({ trust_domain: tdName });
  const dropped = recorded.length - old.length;
  const event = `root rotation started (CASecretLost): a new root ${fingerprint} replaces the lost CA; it is published next to the ${old.length} old root(s) and signs only once every bundle copy carries them all`
    + (dropped ? `; ${dropped} recorded root(s) were in no bundle copy and are gone` : '');
  d.log.warn({ trustDomain: tdName, fingerprint }, event);
  await d.events.record(targetOf(td), 'Warning', 'StartRotation', event);
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

async function createCASecret(d: TrustReconcilerDeps, td: TrustDomain, state: CAState): Promise<Secret> {
  const secret = writeCAState({ namespace: d.operatorNamespace, trustDomainObject: td.metadata.name! }, state);
  try {
    return await d.api.createSecret(secret);
  } catch (err) {
    // AlreadyExists means another writer won the race; the retry reads theirs.
    throw new ReconcileFailure('CASecretCreateFailed', `cannot create CA Secret ${d.operatorNamespace}/${secret.metadata.name}: ${toKubeError(err).message}`);
  }
}

function caOptions(d: TrustReconcilerDeps, td: TrustDomain, validityMs: number) {
  return { trustDomain: td.spec.trustDomain, algorithm: td.spec.ca.selfSigned?.keyAlgorithm ?? 'ECDSA', validityMs, now: d.now() };
}

// --- Rotation

function rotationInput(d: TrustReconcilerDeps, td: TrustDomain, state: CAState, progress: Progress | undefined) {
  // Rootless only while a lost CA is replaced, so always mid-rotation: the root's dates then decide nothing.
  const root = parseCertificates((state.root ?? state.incoming!).certificatePem)[0]!;
  const inter = state.intermediate ? parseCertificates(state.intermediate.certificatePem)[0]! : undefined;
  return {
    now: d.now(),
    root: { notBefore: root.notBefore, notAfter: root.notAfter },
    intermediate: inter ? { notBefore: inter.notBefore, notAfter: inter.notAfter, issuedByRoot: inter.issuer === root.subject } : undefined,
    rotation: state.rotation ? { phase: state.rotation.phase, phaseStartedAt: new Date(state.rotation.phaseStartedAt) } : undefined,
    requested: td.metadata.annotations?.[ANNOTATION_ROTATE_REQUESTED_AT],
    lastRequest: state.lastRotationRequest,
    bundleCopies: progress?.bundleCopies ?? { total: 0, updated: 0 },
    leavesOnRetiring: progress?.leavesOnRetiring ?? 0,
  };
}

interface Progress { now: Date; bundleCopies: { total: number; updated: number }; leaves: number; leavesOnRetiring: number }

/** How far a rotation got: bundle copies carrying the whole bundle, leaves still on a retiring root (or of unknown root). */
function progressOf(d: TrustReconcilerDeps, td: TrustDomain, l: Loaded, bundlePem: string): Progress {
  const secrets = identitySecretsOf(d, td.metadata.name!);
  const leavesOnRetiring = secrets.filter((s) => {
    const anchor = s.metadata.annotations?.[ANNOTATION_ROOT_FINGERPRINT];
    return !anchor || l.retiring.has(anchor);
  }).length;
  return { now: d.now(), bundleCopies: bundleCopies(d, td.metadata.name!, bundlePem), leaves: secrets.length, leavesOnRetiring };
}

function identitySecretsOf(d: TrustReconcilerDeps, td: string): Secret[] {
  return d.secretList.list().filter((s) => s.metadata.labels?.[LABEL_TRUST_DOMAIN] === td && s.metadata.labels?.[LABEL_IDENTITY]);
}

function bundleCopies(d: TrustReconcilerDeps, td: string, bundlePem: string): { total: number; updated: number } {
  const all = bundleCopyPems(d, td);
  return { total: all.length, updated: all.filter((pem) => pem === bundlePem).length };
}

/**
 * Copies of the bundle: every bundle ConfigMap, and the ca.crt of every identity
 * Secret whose leaf has not expired. An expired leaf is of no use until it is
 * re-issued, which writes the new bundle; while nothing may sign (a lost CA being
 * replaced), waiting on its copy would wait forever.
 */
function bundleCopyPems(d: TrustReconcilerDeps, td: string): string[] {
  const now = d.now().getTime();
  const live = identitySecretsOf(d, td).filter((s) => !(Date.parse(s.metadata.annotations?.[ANNOTATION_NOT_AFTER] ?? '') <= now));
  return [
    ...live.map((s) => Buffer.from(s.data?.[SECRET_BUNDLE] ?? '', 'base64').toString('utf8')),
    ...d.configMaps.list().filter((c) => c.metadata.name === bundleConfigMapName(td)).map((c) => c.data?.[SECRET_BUNDLE] ?? ''),
  ];
}

async function applyStep(d: TrustReconcilerDeps, td: TrustDomain, l: Loaded, step: Exclude<Step, { kind: 'Wait' }>, held: Map<string, CAState>): Promise<void> {
  const state: CAState = { ...l.state! };
  const now = rfc3339(d.now());
  let event: string;
  switch (step.kind) {
    case 'StartRotation':
      state.incoming = await createRoot(caOptions(d, td, d.caDurationMs));
      state.rotation = { phase: 'PublishingRoot', reason: step.reason, startedAt: now, phaseStartedAt: now };
      if (step.reason === 'Requested') state.lastRotationRequest = td.metadata.annotations?.[ANNOTATION_ROTATE_REQUESTED_AT];
      event = `root rotation started (${step.reason}): publishing the new root ${await rootFingerprint(state.incoming)} next to the old one`;
      break;
    case 'SwitchSigner': {
      const incoming = state.incoming!;
      state.intermediate = await createIntermediate(await loadCA(incoming.certificatePem, incoming.privateKeyPem), caOptions(d, td, d.intermediateDurationMs));
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
      state.intermediate = await createIntermediate(await loadCA(state.root!.certificatePem, state.root!.privateKeyPem), caOptions(d, td, d.intermediateDurationMs));
      event = `renewed the intermediate: ${step.reason}`;
      break;
  }
  await d.api.replaceSecret(writeCAState({ namespace: d.operatorNamespace, trustDomainObject: td.metadata.name!, existing: l.secret }, state));
  held.set(td.metadata.name!, state);
  d.log.info({ trustDomain: td.metadata.name, step: step.kind }, event);
  await d.events.record(targetOf(td), 'Normal', step.kind, event);
}

/** Rotation events name the new root, so a second rotation's events are not collapsed into the first's. */
async function rootFingerprint(root: { certificatePem: string }): Promise<string> {
  return fingerprintOf(parseCertificates(root.certificatePem)[0]!);
}

// --- Publication

interface Published { namespaces: number; denyListEntries: number; nextExpiry?: Date; clusterTrustBundleError?: string; bundleConflict?: string }

async function publishBundle(d: TrustReconcilerDeps, td: TrustDomain, bundlePem: string, publishedCTB: Map<string, string>): Promise<Published> {
  const name = bundleConfigMapName(td.metadata.name!);
  const home = d.configMaps.get(name, d.operatorNamespace);
  const denyList = pruned(parseDenyList(td.spec.trustDomain, home?.data?.[BUNDLE_DENYLIST]), d.now());
  const denyJson = serializeDenyList(denyList);
  const want = bundleNamespaces(td, d.identities.list(), d.namespaces.list(), d.operatorNamespace);
  // A copy someone else made is never overwritten (its agents would read it as the bundle): reported instead.
  const conflicts: string[] = [];
  for (const ns of want) {
    const home = ns === d.operatorNamespace;
    const build = (existing?: ConfigMap) => desiredBundleConfigMap(td.metadata.name!, ns, bundlePem, denyJson, existing, home ? undefined : td);
    if (await writeOwnedConfigMap(d.api, d.configMaps.get(name, ns), build, (cm) => home || isOwnBundleCopy(cm, td, bundlePem))) conflicts.push(ns);
  }
  const bundleConflict = conflicts.length ? bundleConflictMessage(name, conflicts) : undefined;
  if (bundleConflict) {
    d.metrics.reconcileErrors.inc({ controller: CONTROLLER, reason: 'BundleConfigMapConflict' });
    d.log.warn({ trustDomain: td.metadata.name }, bundleConflict);
    await d.events.record(targetOf(td), 'Warning', 'BundleConfigMapConflict', bundleConflict);
  }
  for (const cm of d.configMaps.list()) {
    const mayWithdraw = !controllerOf(cm) || isControlledBy(cm, td.metadata.uid);
    if (cm.metadata.name === name && cm.metadata.labels?.[LABEL_TRUST_DOMAIN] === td.metadata.name && !want.has(cm.metadata.namespace!) && mayWithdraw) {
      await d.api.deleteConfigMap(cm.metadata.namespace!, name).catch((e) => { if (!isNotFound(e)) throw e; });
    }
  }
  // Optional: a cluster that refuses it still gets its identities; the failure is reported
  // (BundlePublished condition, event, metric), not fatal.
  let clusterTrustBundleError: string | undefined;
  if (d.clusterTrustBundles && publishedCTB.get(td.metadata.name!) !== bundlePem) {
    await publishClusterTrustBundle(d, td.metadata.name!, bundlePem).then(() => publishedCTB.set(td.metadata.name!, bundlePem), async (err) => {
      clusterTrustBundleError = `cannot publish ClusterTrustBundle ${clusterTrustBundleName(td.metadata.name!)}: ${toKubeError(err).message}`;
      d.metrics.reconcileErrors.inc({ controller: CONTROLLER, reason: 'ClusterTrustBundleFailed' });
      d.log.warn({ trustDomain: td.metadata.name }, clusterTrustBundleError);
      await d.events.record(targetOf(td), 'Warning', 'ClusterTrustBundleFailed', clusterTrustBundleError);
    });
  }
  return { namespaces: want.size, denyListEntries: denyList.entries.length, nextExpiry: nextExpiry(denyList), clusterTrustBundleError, bundleConflict };
}

async function publishClusterTrustBundle(d: TrustReconcilerDeps, td: string, bundlePem: string): Promise<void> {
  const existing = await ifExists(() => d.api.getClusterTrustBundle(clusterTrustBundleName(td)));
  if (!existing) await d.api.createClusterTrustBundle(desiredClusterTrustBundle(td, bundlePem));
  else if (existing.spec.trustBundle !== bundlePem) await d.api.replaceClusterTrustBundle(desiredClusterTrustBundle(td, bundlePem, existing));
}

// --- Status

async function statusOf(d: TrustReconcilerDeps, td: TrustDomain, l: Loaded, p: Published, progress: Progress | undefined, caFingerprint: string | undefined): Promise<TrustDomainStatus> {
  const gen = td.metadata.generation;
  const inter = l.state?.intermediate ? parseCertificates(l.state.intermediate.certificatePem)[0] : undefined;
  const rotation = l.state?.rotation ?? l.external?.rotation;
  const message = rotation ? `rotating the root: ${rotation.phase}` : 'the CA is loaded and signing';
  return {
    ...td.status,
    observedGeneration: gen,
    caSecret: { namespace: l.secret.metadata.namespace!, name: l.secret.metadata.name! },
    caSubject: l.signer?.certificate.subject,
    caFingerprint,
    caNotAfter: l.signer ? rfc3339(l.signer.certificate.notAfter) : undefined,
    roots: l.roots,
    intermediate: inter ? { fingerprint: await fingerprintOf(inter), notAfter: rfc3339(inter.notAfter) } : undefined,
    rotation: rotation && progress ? {
      phase: rotation.phase, reason: rotation.reason, startedAt: rotation.startedAt, phaseStartedAt: rotation.phaseStartedAt,
      bundleCopies: progress.bundleCopies.total, bundleCopiesUpdated: progress.bundleCopies.updated, leaves: progress.leaves, leavesRemaining: progress.leavesOnRetiring,
    } : undefined,
    lastRotationRequest: l.state?.lastRotationRequest,
    bundleNamespaces: p.namespaces,
    denyListEntries: p.denyListEntries,
    conditions: setCondition(
      setCondition(td.status?.conditions, { type: 'Ready', status: 'True', reason: 'CAReady', message, observedGeneration: gen }, d.now()),
      p.bundleConflict
        ? { type: 'BundlePublished', status: 'False', reason: 'BundleConfigMapConflict', message: p.bundleConflict, observedGeneration: gen }
        : p.clusterTrustBundleError
        ? { type: 'BundlePublished', status: 'False', reason: 'ClusterTrustBundleFailed', message: p.clusterTrustBundleError, observedGeneration: gen }
        : { type: 'BundlePublished', status: 'True', reason: 'Published', message: `published in ${p.namespaces} namespaces${d.clusterTrustBundles ? ' and as a ClusterTrustBundle' : ''}`, observedGeneration: gen },
      d.now()),
  };
}

async function writeStatus(d: TrustReconcilerDeps, td: TrustDomain, status: TrustDomainStatus): Promise<void> {
  if (jsonEqual(status, td.status ?? {})) return;
  await d.api.patchTrustDomainStatus(td.metadata.name!, replacingPatch(td.status, status));
}

function targetOf(td: TrustDomain) {
  return { apiVersion: API_VERSION, kind: TRUST_DOMAIN.kind, metadata: td.metadata };
}
