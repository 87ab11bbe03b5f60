// The webhook's certificates as a declared controller of one key, run by the
// leader only (main.ts starts the operator's controllers on gaining the
// Lease): no object holds its state, so there is no kind to watch, and it
// reads no cache, so it starts without waiting for the operator's caches. The
// pass (reconciler.ts) runs at start, then again when its result says
// something is due, when a caller asks (reconcileNow), or after a failure
// with backoff up to the resync period.
import type { Logger } from 'pino';
import { isConflict, toKubeError } from '../kube/errors.ts';
import { CONFLICT_REQUEUE_MS } from '../controller/failure.ts';
import { KubeClient, type KubeConfig } from '../kube/client.ts';
import { WEBHOOK_CA_SECRET, WEBHOOK_CONFIGURATION_NAME, WEBHOOK_SERVICE_NAME, WEBHOOK_TLS_SECRET } from '../api/names.ts';
import { controller, Trigger, type ControllerDeclaration } from '../controller/controller.ts';
import { ControllerManager } from '../controller/manager.ts';
import { Metrics } from '../controller/metrics.ts';
import { requeue, type Result } from '../controller/queue.ts';
import { DEFAULT_LIFETIMES, servingNames, type WebhookLifetimes } from './certificates.ts';
import { type CertificateKube, certificatesPass, type PassOptions, type WebhookCertificatesStatus } from './reconciler.ts';

export interface WebhookCertificatesOptions {
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
  /** The API calls a pass makes; default a KubeClient on kubeConfig with a per-request timeout (tests pass fakes). */
  kube?: CertificateKube;
}

export interface WebhookCertificates {
  /** Runs a pass now (and waits for it); throws what the pass threw. */
  reconcileNow(): Promise<void>;
  status(): WebhookCertificatesStatus;
  stop(): Promise<void>;
}

export { type WebhookCertificatesStatus } from './reconciler.ts';

const CONTROLLER = 'webhookcertificates';
const KEY = 'webhook-certificates';

/** The declaration, and the handle its callers use (reconcileNow, status). */
export function webhookCertificatesController(opts: WebhookCertificatesOptions): { declaration: ControllerDeclaration; handle: WebhookCertificates } {
  const log = opts.logger.child({ component: 'webhook-manager' });
  const resyncMs = opts.resyncMs ?? 60_000;
  const status: WebhookCertificatesStatus = { configurationsFound: [], passes: 0 };
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
  const asked = new Trigger();

  const reconcile = async (): Promise<Result> => {
    const answered = waiting.splice(0);
    status.passes++;
    return certificatesPass(pass).then((next) => {
      status.lastError = undefined;
      for (const w of answered) w.resolve();
      // A pass that wrote something (0) looks again at once.
      return next > 0 ? { requeueAfter: next } : requeue(1);
    }, (err: unknown) => {
      // A lost write race (another leader moved first, or a stale read) is no failure: the next pass
      // reads afresh, soon, and answers these callers.
      if (isConflict(err)) {
        waiting.unshift(...answered);
        log.debug({ err: toKubeError(err).message }, 'write conflict; reading again');
        return requeue(CONFLICT_REQUEUE_MS);
      }
      status.lastError = toKubeError(err).message;
      for (const w of answered) w.reject(err);
      throw err;
    });
  };

  const declaration = controller(CONTROLLER)
    .forKey(KEY)
    .watches(asked, (key) => [key])
    // Errors back off exponentially, from 1 s up to the resync period.
    .queue({ concurrency: 1, backoff: { baseMs: Math.min(1000, resyncMs), maxMs: resyncMs } })
    .run(reconcile, async (_key, err) => {
      log.warn({ err: toKubeError(err).message }, 'webhook certificate pass failed');
      throw err;
    });

  const handle: WebhookCertificates = {
    reconcileNow: () => new Promise<void>((resolve, reject) => {
      if (stopped) return reject(new Error('the webhook certificate manager is stopped'));
      waiting.push({ resolve, reject });
      asked.fire(KEY);
    }),
    status: () => ({ ...status, configurationsFound: [...status.configurationsFound] }),
    stop: async () => {
      stopped = true;
      for (const w of waiting.splice(0)) w.reject(new Error('the webhook certificate manager is stopped'));
    },
  };
  log.info({ secret: `${pass.namespace}/${pass.tlsName}`, names: [...pass.names.dnsNames, ...pass.names.ipAddresses] }, 'webhook certificate manager declared');
  return { declaration, handle };
}

/** The controller on its own, for a process (or test) that runs no other: resolves after its first pass, failed or not. */
export async function startWebhookCertificates(opts: WebhookCertificatesOptions & { metrics?: Metrics }): Promise<WebhookCertificates> {
  const { declaration, handle } = webhookCertificatesController(opts);
  const manager = new ControllerManager({ log: opts.logger, metrics: opts.metrics ?? new Metrics(), resyncMs: opts.resyncMs ?? 60_000, concurrency: 1 });
  manager.add(declaration);
  await manager.start();
  await handle.reconcileNow().catch(() => undefined);
  return {
    ...handle,
    stop: async () => {
      await manager.stop();
      await handle.stop();
    },
  };
}
