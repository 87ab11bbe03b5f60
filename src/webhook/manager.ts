// The webhook's certificates, kept current by the leader only (two replicas
// rotating the same CA would race). Each pass is level-based and reads like
// the rule:
//   CA Secret absent (the API server said 404)  → generate the CA;
//   CA due for rotation, or mid-rotation        → take the next step (certs.ts planCA, on src/ca/rotation.ts);
//   caBundle of either webhook configuration    → make it the CA Secret's ca.crt;
//   serving certificate missing, wrong or due   → issue it under the active CA.
// A pass that writes nothing is the steady state; the next pass is scheduled
// for the earliest moment something becomes due, or the resync period. The
// pass runs as the one key of a WorkQueue, which owns retries and backoff.
import type { Logger } from 'pino';
import type { Secret } from '../api/types.ts';
import { isConflict, isNotFound, toKubeError } from '../kube/errors.ts';
import { type JSONPatchOp, pointer } from './jsonpatch.ts';
import { type CAState, trustedRootsPem } from '../ca/state.ts';
import { certificatePemBlocks } from '../pki/pem.ts';
import { WorkQueue } from '../controller/queue.ts';
import { CONFLICT_REQUEUE_MS } from '../controller/failure.ts';
import {
  applyCAStep, type CAStep, caSecretOf, createWebhookCA, DEFAULT_LIFETIMES, describeCertificatePem, issueServingCertificate, loadWebhookCA,
  observeCA, observeServing, planCA, readCASecret, renewalTime, rotationConfig, type ServingNames, servingNames, servingNeedsIssuance,
  servingSecretOf, storedBundleOf, type WebhookLifetimes,
} from './certs.ts';
import { KubeClient, type KubeConfig, type TestOp, type WebhookConfiguration, type WebhookConfigurationKind } from '../kube/client.ts';
import { WEBHOOK_CA_SECRET, WEBHOOK_CONFIGURATION_NAME, WEBHOOK_SERVICE_NAME, WEBHOOK_TLS_SECRET } from './names.ts';

export interface WebhookManagerOptions {
  kubeConfig: KubeConfig;
  /** The operator's namespace: both Secrets live here, and it is part of the serving DNS names. */
  namespace: string;
  /** The Service in front of the webhook; default agent-identity-operator-webhook. */
  serviceName?: string;
  /** Extra DNS SANs for the serving certificate. */
  extraDNSNames?: string[];
  /** IP SANs for the serving certificate (tests register the webhook at https://127.0.0.1:<port>). */
  ipAddresses?: string[];
  /** Name of the MutatingWebhookConfiguration and the ValidatingWebhookConfiguration; default agent-identity-operator. */
  webhookConfigurationName?: string;
  caSecretName?: string;
  tlsSecretName?: string;
  /** Partial: the rest come from DEFAULT_LIFETIMES (CA 365 d, serving 30 d, renew at 2/3, propagation 1 m, grace 2 m). */
  lifetimes?: Partial<WebhookLifetimes>;
  /** Longest pause between passes; default 1 m. */
  resyncMs?: number;
  /** Bound on each API request; default 5 s. */
  requestTimeoutMs?: number;
  logger: Logger;
  now?: () => Date;
  /** The API calls the manager makes; default a KubeClient on kubeConfig with a per-request timeout (tests pass fakes). */
  kube?: CertificateKube;
}

/** The API calls of a pass. */
export type CertificateKube = Pick<KubeClient, 'getSecret' | 'createSecret' | 'replaceSecret' | 'getWebhookConfiguration' | 'patchWebhookConfiguration'>;

export interface WebhookManagerStatus {
  caNotAfter?: Date;
  /** CAs currently in caBundle. */
  bundleSize?: number;
  rotation?: 'Publishing' | 'Retiring';
  servingSerialNumber?: string;
  servingNotAfter?: Date;
  /** Configurations found and patched; a missing one is skipped (the chart creates them). */
  configurationsFound: WebhookConfigurationKind[];
  lastError?: string;
  passes: number;
}

export interface WebhookManager {
  /** Runs one pass now (and waits for it); throws what the pass threw. */
  reconcileNow(): Promise<void>;
  status(): WebhookManagerStatus;
  stop(): Promise<void>;
}

const KINDS: WebhookConfigurationKind[] = ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration'];
const KEY = 'webhook-certificates';

// The words the manager logged its CA steps with before the shared machine; log readers match them.
const LOGGED_STEP: Record<Exclude<CAStep['kind'], 'Wait'>, string> = {
  RepairBundle: 'repairBundle', ReplaceRoot: 'replaceExpired', StartRotation: 'publishIncoming', SwitchSigner: 'promoteIncoming', FinishRotation: 'retireOld',
};

export interface PassOptions {
  kube: CertificateKube;
  namespace: string;
  caName: string;
  tlsName: string;
  configName: string;
  names: ServingNames;
  lifetimes: WebhookLifetimes;
  resyncMs: number;
  log: Logger;
  now: () => Date;
  /** Updated by every pass. */
  status: WebhookManagerStatus;
}

/** One pass: observe, decide, write. Resolves to how long until the next pass is due. */
export async function certificatesPass(o: PassOptions): Promise<number> {
  const { kube, namespace: ns, caName, tlsName, configName, names, lifetimes: lt, log, now, status } = o;
  const t = now();

  /** Reads the CA Secret; generates a CA only after a confirmed 404 — never after a failed or forbidden read. */
  async function observeOrCreateCA(): Promise<{ state: CAState; secret: Secret }> {
    let secret: Secret | undefined;
    try {
      secret = await kube.getSecret(ns, caName);
    } catch (err) {
      if (!isNotFound(err)) throw new Error(`cannot read webhook CA Secret ${ns}/${caName}: ${toKubeError(err).message}`);
    }
    if (!secret) {
      const state: CAState = { root: await createWebhookCA(t, lt.caMs) };
      // AlreadyExists means another leader won the race: this pass fails and the next reads its CA.
      const created = await kube.createSecret(caSecretOf(ns, caName, state));
      log.info({ secret: `${ns}/${caName}`, notAfter: describeCertificatePem(state.root!.certificatePem)?.notAfter }, 'generated the webhook CA (its Secret did not exist)');
      return { state, secret: created };
    }
    const state = readCASecret(secret);
    if (!state) throw new Error(`Secret ${ns}/${caName} holds no webhook CA (tls.crt and tls.key); it is never replaced automatically: delete it to have a new CA generated`);
    return { state, secret };
  }

  async function readServingSecret(): Promise<Secret | undefined> {
    try {
      return await kube.getSecret(ns, tlsName);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw new Error(`cannot read webhook serving Secret ${ns}/${tlsName}: ${toKubeError(err).message}`);
    }
  }

  /** caBundle := ca.crt in every webhook of each configuration that differs; index writes are guarded by a test of the name. */
  async function publishBundle(configs: Map<WebhookConfigurationKind, WebhookConfiguration>, bundlePem: string): Promise<boolean> {
    const caBundle = Buffer.from(bundlePem).toString('base64');
    let changed = false;
    for (const [kind, config] of configs) {
      const ops: (TestOp | JSONPatchOp)[] = [];
      (config.webhooks ?? []).forEach((w, i) => {
        if (w.clientConfig.caBundle === caBundle) return;
        ops.push(
          { op: 'test', path: pointer('webhooks', i, 'name'), value: w.name },
          { op: 'add', path: pointer('webhooks', i, 'clientConfig', 'caBundle'), value: caBundle },
        );
      });
      if (ops.length === 0) continue;
      await kube.patchWebhookConfiguration(kind, configName, ops);
      changed = true;
      log.info({ configuration: `${kind}/${configName}`, cas: bundleSize(bundlePem) }, 'caBundle updated');
    }
    return changed;
  }

  const ca = await observeOrCreateCA();
  let state = ca.state;
  const configs = new Map<WebhookConfigurationKind, WebhookConfiguration>();
  for (const kind of KINDS) {
    const c = await kube.getWebhookConfiguration(kind, configName);
    if (c) configs.set(kind, c);
  }
  status.configurationsFound = [...configs.keys()];
  const servingSecret = await readServingSecret();

  // The CA: at most one step per pass; a step is followed at once by another pass.
  let active = await loadWebhookCA(state.root!);
  const servingBefore = await observeServing(servingSecret, active);
  const copies = bundleCopies(configs, trustedRootsPem(state));
  const step = planCA(observeCA(state, storedBundleOf(ca.secret), copies, servingBefore), t, rotationConfig(lt, o.resyncMs));
  if (step.kind !== 'Wait') {
    state = await applyCAStep(state, step, t, lt);
    // resourceVersion: a step decided on a stale read (another leader moved first) fails with 409 and is re-decided.
    await kube.replaceSecret(caSecretOf(ns, caName, state, ca.secret));
    active = await loadWebhookCA(state.root!);
    log.info({ step: LOGGED_STEP[step.kind], why: 'reason' in step ? step.reason : undefined, cas: bundleSize(trustedRootsPem(state)) }, 'webhook CA rotation step');
  }

  // caBundle first, then the serving certificate: the API server must trust a CA before anything it signs is served.
  const bundlePem = trustedRootsPem(state);
  const bundleChanged = await publishBundle(configs, bundlePem);

  const serving = await observeServing(servingSecret, active);
  const violation = servingNeedsIssuance(serving, names, t, lt);
  let servingNotAfter = serving.certificate?.notAfter;
  let servingDue = serving.certificate ? renewalTime(serving.certificate, lt.renewAtFraction) : t;
  if (violation) {
    const issued = await issueServingCertificate(active, names, t, lt.servingMs);
    const body = servingSecretOf(ns, tlsName, issued);
    if (servingSecret) await kube.replaceSecret(withVersion(body, servingSecret));
    else await kube.createSecret(body);
    log.info({ reason: violation.reason, why: violation.message, serialNumber: issued.serialNumber, notAfter: issued.notAfter }, 'issued the webhook serving certificate');
    status.servingSerialNumber = issued.serialNumber;
    servingNotAfter = issued.notAfter;
    servingDue = renewalTime(issued, lt.renewAtFraction);
  } else {
    status.servingSerialNumber = serving.certificate?.serialNumber;
  }

  status.caNotAfter = active.certificate.notAfter;
  status.bundleSize = bundleSize(bundlePem);
  status.rotation = state.incoming ? 'Publishing' : state.retiringPem ? 'Retiring' : undefined;
  status.servingNotAfter = servingNotAfter;
  // Anything that changed is looked at again right away; otherwise sleep until the next thing is due.
  if (step.kind !== 'Wait' || bundleChanged || violation) return 0;
  const dueAt = Math.min(servingDue.getTime(), t.getTime() + (step.afterMs ?? Infinity));
  return Math.max(0, Math.min(o.resyncMs, dueAt - now().getTime()));
}

export async function startWebhookManager(opts: WebhookManagerOptions): Promise<WebhookManager> {
  const log = opts.logger.child({ component: 'webhook-manager' });
  const resyncMs = opts.resyncMs ?? 60_000;
  const status: WebhookManagerStatus = { configurationsFound: [], passes: 0 };
  const pass: PassOptions = {
    kube: opts.kube ?? new KubeClient(opts.kubeConfig, { timeoutMs: opts.requestTimeoutMs ?? 5000 }),
    namespace: opts.namespace,
    caName: opts.caSecretName ?? WEBHOOK_CA_SECRET,
    tlsName: opts.tlsSecretName ?? WEBHOOK_TLS_SECRET,
    configName: opts.webhookConfigurationName ?? WEBHOOK_CONFIGURATION_NAME,
    names: servingNames(opts.serviceName ?? WEBHOOK_SERVICE_NAME, opts.namespace, opts.extraDNSNames, opts.ipAddresses),
    lifetimes: { ...DEFAULT_LIFETIMES, ...opts.lifetimes },
    resyncMs, log, status,
    now: opts.now ?? (() => new Date()),
  };

  // Callers of reconcileNow, answered by the next pass to start.
  const waiting: Array<{ resolve: () => void; reject: (err: unknown) => void }> = [];
  let stopped = false;
  const queue = new WorkQueue(async () => {
    const answered = waiting.splice(0);
    status.passes++;
    try {
      const next = await certificatesPass(pass);
      status.lastError = undefined;
      for (const w of answered) w.resolve();
      // requeueAfter 0 means "never" to the queue; 1 ms is "right away".
      return { requeueAfter: Math.max(1, next) };
    } catch (err) {
      // A lost write race (another leader moved first, or a stale read) is no failure: the next pass
      // reads afresh, soon, and answers these callers.
      if (isConflict(err)) {
        waiting.unshift(...answered);
        log.debug({ err: toKubeError(err).message }, 'write conflict; reading again');
        return { requeueAfter: CONFLICT_REQUEUE_MS };
      }
      status.lastError = toKubeError(err).message;
      for (const w of answered) w.reject(err);
      throw err;
    }
  }, {
    concurrency: 1,
    // Errors back off exponentially, from 1 s up to the resync period.
    backoff: { baseMs: Math.min(1000, resyncMs), maxMs: resyncMs },
    onError: (_key, _err, _attempt, retryInMs) => log.warn({ err: status.lastError, retryInMs }, 'webhook certificate pass failed'),
  });

  const reconcileNow = () => new Promise<void>((resolve, reject) => {
    if (stopped) return reject(new Error('the webhook certificate manager is stopped'));
    waiting.push({ resolve, reject });
    queue.add(KEY);
  });

  await reconcileNow().catch(() => undefined);
  log.info({ secret: `${pass.namespace}/${pass.tlsName}`, names: [...pass.names.dnsNames, ...pass.names.ipAddresses] }, 'webhook certificate manager started');

  return {
    reconcileNow,
    status: () => ({ ...status, configurationsFound: [...status.configurationsFound] }),
    stop: async () => {
      stopped = true;
      await queue.shutdown();
      for (const w of waiting.splice(0)) w.reject(new Error('the webhook certificate manager is stopped'));
    },
  };
}

/** How many webhooks, across the configurations found, carry `bundlePem` as their caBundle. */
function bundleCopies(configs: Map<WebhookConfigurationKind, WebhookConfiguration>, bundlePem: string): { total: number; updated: number } {
  const caBundle = Buffer.from(bundlePem).toString('base64');
  const webhooks = [...configs.values()].flatMap((c) => c.webhooks ?? []);
  return { total: webhooks.length, updated: webhooks.filter((w) => w.clientConfig.caBundle === caBundle).length };
}

function withVersion(desired: Secret, current: Secret): Secret {
  return { ...desired, metadata: { ...desired.metadata, resourceVersion: current.metadata.resourceVersion } };
}

function bundleSize(pem: string): number {
  return certificatePemBlocks(pem).length;
}
