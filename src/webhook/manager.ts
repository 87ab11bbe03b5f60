// The webhook's certificates, kept current by the leader only (two replicas
// rotating the same CA would race). Each pass is level-based and reads like
// the rule:
//   CA Secret absent (the API server said 404)  → generate the CA;
//   CA due for rotation, or mid-rotation        → take the next step (certs.ts planCA);
//   caBundle of either webhook configuration    → make it the CA Secret's ca.crt;
//   serving certificate missing, wrong or due   → issue it under the active CA.
// A pass that writes nothing is the steady state; the next pass is scheduled
// for the earliest moment something becomes due, or the resync period.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Secret } from '../api/types.ts';
import { isNotFound, toKubeError } from '../kube/errors.ts';
import { type JSONPatchOp, pointer } from './jsonpatch.ts';
import {
  applyCAStep, type CAStep, caSecretOf, planCA, createWebhookCA, DEFAULT_LIFETIMES, describeCertificatePem, issueServingCertificate,
  loadWebhookCA, observeCA, observeServing, readCASecret, renewalTime, servingNames, servingNeedsIssuance,
  servingSecretOf, type WebhookCAState, type WebhookLifetimes,
} from './certs.ts';
import { type TestOp, type WebhookConfiguration, type WebhookConfigurationKind, WebhookKube } from './kube.ts';
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
}

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

export async function startWebhookManager(opts: WebhookManagerOptions): Promise<WebhookManager> {
  const log = opts.logger.child({ component: 'webhook-manager' });
  const kube = new WebhookKube(opts.kubeConfig, opts.requestTimeoutMs ?? 5000);
  const lt: WebhookLifetimes = { ...DEFAULT_LIFETIMES, ...opts.lifetimes };
  const now = opts.now ?? (() => new Date());
  const ns = opts.namespace;
  const caName = opts.caSecretName ?? WEBHOOK_CA_SECRET;
  const tlsName = opts.tlsSecretName ?? WEBHOOK_TLS_SECRET;
  const configName = opts.webhookConfigurationName ?? WEBHOOK_CONFIGURATION_NAME;
  const names = servingNames(opts.serviceName ?? WEBHOOK_SERVICE_NAME, ns, opts.extraDNSNames, opts.ipAddresses);
  const resyncMs = opts.resyncMs ?? 60_000;
  const status: WebhookManagerStatus = { configurationsFound: [], passes: 0 };

  /** Reads the CA Secret; generates a CA only after a confirmed 404 — never after a failed or forbidden read. */
  async function observeOrCreateCA(): Promise<{ state: WebhookCAState; secret: Secret }> {
    let secret: Secret | undefined;
    try {
      secret = await kube.getSecret(ns, caName);
    } catch (err) {
      if (!isNotFound(err)) throw new Error(`cannot read webhook CA Secret ${ns}/${caName}: ${toKubeError(err).message}`);
    }
    if (!secret) {
      const active = await createWebhookCA(now(), lt.caMs);
      const state: WebhookCAState = { active, bundlePem: active.certificatePem };
      // AlreadyExists means another leader won the race: this pass fails and the next reads its CA.
      const created = await kube.createSecret(caSecretOf(ns, caName, state));
      log.info({ secret: `${ns}/${caName}`, notAfter: describeCertificatePem(active.certificatePem)?.notAfter }, 'generated the webhook CA (its Secret did not exist)');
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

  async function readConfigurations(): Promise<Map<WebhookConfigurationKind, WebhookConfiguration>> {
    const found = new Map<WebhookConfigurationKind, WebhookConfiguration>();
    for (const kind of KINDS) {
      const c = await kube.getWebhookConfiguration(kind, configName);
      if (c) found.set(kind, c);
    }
    return found;
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

  const published = (configs: Map<WebhookConfigurationKind, WebhookConfiguration>, bundlePem: string) => {
    const caBundle = Buffer.from(bundlePem).toString('base64');
    return [...configs.values()].every((c) => (c.webhooks ?? []).every((w) => w.clientConfig.caBundle === caBundle));
  };

  /** One pass; returns how long until the next one is due. */
  async function pass(): Promise<number> {
    const t = now();
    const ca = await observeOrCreateCA();
    let state = ca.state;
    const configs = await readConfigurations();
    status.configurationsFound = [...configs.keys()];
    const servingSecret = await readServingSecret();

    // The CA: at most one step per pass; a step is followed at once by another pass.
    let active = await loadWebhookCA(state.active);
    const servingBefore = await observeServing(servingSecret, active);
    const step: CAStep = planCA(await observeCA(state, published(configs, state.bundlePem), servingBefore), t, lt);
    if (step.action !== 'none') {
      state = await applyCAStep(state, step, t, lt);
      // resourceVersion: a step decided on a stale read (another leader moved first) fails with 409 and is re-decided.
      await kube.replaceSecret(withVersion(caSecretOf(ns, caName, state), ca.secret));
      active = await loadWebhookCA(state.active);
      log.info({ step: step.action, why: step.why, cas: bundleSize(state.bundlePem) }, 'webhook CA rotation step');
    }

    // caBundle first, then the serving certificate: the API server must trust a CA before anything it signs is served.
    const bundleChanged = await publishBundle(configs, state.bundlePem);

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
    status.bundleSize = bundleSize(state.bundlePem);
    status.rotation = state.incoming ? 'Publishing' : status.bundleSize > 1 ? 'Retiring' : undefined;
    status.servingNotAfter = servingNotAfter;
    // Anything that changed is looked at again right away; otherwise sleep until the next thing is due.
    if (step.action !== 'none' || bundleChanged || violation) return 0;
    const dueAt = Math.min(servingDue.getTime(), step.nextAt?.getTime() ?? Infinity);
    return Math.max(0, Math.min(resyncMs, dueAt - now().getTime()));
  }

  // --- the loop: one pass at a time; errors back off exponentially (1 s doubling to the resync period)
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let failures = 0;

  const runPass = async (): Promise<void> => {
    status.passes++;
    let delay: number;
    try {
      delay = await pass();
      failures = 0;
      status.lastError = undefined;
    } catch (err) {
      failures++;
      delay = Math.min(resyncMs, 1000 * 2 ** Math.min(failures - 1, 10));
      status.lastError = err instanceof Error ? toKubeError(err).message : String(err);
      log.warn({ err: status.lastError, retryInMs: delay }, 'webhook certificate pass failed');
      if (stopped) return;
      schedule(delay);
      throw err;
    }
    if (!stopped) schedule(delay);
  };
  const schedule = (ms: number) => {
    clearTimeout(timer);
    timer = setTimeout(() => { running = running.then(runPass).catch(() => undefined); }, ms);
  };

  running = runPass().catch(() => undefined);
  await running;
  log.info({ secret: `${ns}/${tlsName}`, names: [...names.dnsNames, ...names.ipAddresses] }, 'webhook certificate manager started');

  return {
    reconcileNow: () => { const p = running.then(runPass); running = p.catch(() => undefined); return p; },
    status: () => ({ ...status, configurationsFound: [...status.configurationsFound] }),
    stop: async () => { stopped = true; clearTimeout(timer); await running; },
  };
}

function withVersion(desired: Secret, current: Secret): Secret {
  return { ...desired, metadata: { ...desired.metadata, resourceVersion: current.metadata.resourceVersion } };
}

function bundleSize(pem: string): number {
  return (pem.match(/-----BEGIN CERTIFICATE-----/g) ?? []).length;
}
