// The HTTPS admission server: /mutate, /validate (AdmissionReview v1),
// /healthz and /readyz. It runs on every replica and needs no leadership: it
// only reads. Its certificate comes from the Secret the leader's manager
// keeps current, re-read every few seconds and swapped in with
// setSecureContext, so a renewal or CA rotation needs no restart; open
// connections keep the certificate they started with.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createSecureContext } from 'node:tls';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { SECRET_CERT, SECRET_KEY } from '../api/group.ts';
import type { Secret } from '../api/types.ts';
import { isNotFound, toKubeError } from '../kube/errors.ts';
import { type AdmissionReview, type Outcome, mutate, reviewResponse, validate } from './admission.ts';
import { describeCertificatePem } from './certs.ts';
import { WebhookKube } from './kube.ts';
import { WEBHOOK_TLS_SECRET } from './names.ts';

export interface WebhookServerOptions {
  kubeConfig: KubeConfig;
  /** Where the serving certificate Secret lives: the operator's namespace. */
  namespace: string;
  /** Default agent-identity-webhook-tls. */
  tlsSecretName?: string;
  /** Default 0.0.0.0. */
  host?: string;
  /** Default 9443; 0 picks a free port (tests). */
  port?: number;
  /** Bound on each AgentIdentity GET/LIST; keep well under the configurations' timeoutSeconds (5). Default 2000. */
  lookupTimeoutMs?: number;
  /** How often the serving certificate Secret is re-read. Default 10 s. */
  certificatePollMs?: number;
  /** Default /var/run/agentidentity. */
  mountPath?: string;
  logger: Logger;
  /** Called once per review, e.g. to count it in Prometheus metrics. */
  onReview?: (review: ReviewRecord) => void;
}

export type WebhookName = 'mutate' | 'validate';

export interface ReviewRecord {
  webhook: WebhookName;
  result: Outcome['result'];
  reason?: string;
  namespace?: string;
  durationMs: number;
}

export interface ServingCertificateInfo {
  serialNumber: string;
  notAfter: Date;
  issuer: string;
}

export interface WebhookServer {
  port: number;
  /** True once a serving certificate is loaded. */
  ready(): boolean;
  servingCertificate(): ServingCertificateInfo | undefined;
  /** Reviews received so far, per webhook: tests prove unrelated pods never arrive. */
  reviews(): Record<WebhookName, number>;
  close(): Promise<void>;
}

const MAX_BODY = 4 << 20;
const TLS_FLOOR = { minVersion: 'TLSv1.2' } as const;

export async function startWebhookServer(opts: WebhookServerOptions): Promise<WebhookServer> {
  const log = opts.logger.child({ component: 'webhook-server' });
  const kube = new WebhookKube(opts.kubeConfig, opts.lookupTimeoutMs ?? 2000);
  const identities = { get: (ns: string, name: string) => kube.getIdentity(ns, name), list: (ns: string) => kube.listIdentities(ns) };
  const admission = { identities, ...(opts.mountPath ? { mountPath: opts.mountPath } : {}) };
  const webhooks: Record<WebhookName, typeof mutate> = { mutate, validate };
  const counts: Record<WebhookName, number> = { mutate: 0, validate: 0 };
  let serving: ServingCertificateInfo | undefined;

  async function review(webhook: WebhookName, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    counts[webhook]++;
    let body: AdmissionReview;
    try {
      body = JSON.parse(await readBody(req)) as AdmissionReview;
      if (!body.request?.uid) throw new Error('no request.uid');
    } catch (err) {
      log.warn({ webhook, err: (err as Error).message }, 'malformed AdmissionReview');
      return void res.writeHead(400, { 'content-type': 'text/plain' }).end('expected an admission.k8s.io/v1 AdmissionReview\n');
    }
    const request = body.request;
    const outcome = await webhooks[webhook](request, admission);
    const durationMs = performance.now() - started;
    const pod = (request.object as { metadata?: { name?: string; generateName?: string } } | undefined)?.metadata;
    log.debug({ webhook, namespace: request.namespace, pod: pod?.name || pod?.generateName, result: outcome.result, reason: outcome.reason, durationMs: Math.round(durationMs) }, 'admission review');
    if (outcome.result === 'error') log.warn({ webhook, namespace: request.namespace, message: outcome.response.status?.message }, 'admission lookup failed');
    opts.onReview?.({ webhook, result: outcome.result, ...(outcome.reason ? { reason: outcome.reason } : {}), ...(request.namespace ? { namespace: request.namespace } : {}), durationMs });
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reviewResponse(outcome.response)));
  }

  const server: Server = createServer({ ...TLS_FLOOR }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    if (path === '/readyz') return void res.writeHead(serving ? 200 : 503, { 'content-type': 'text/plain' }).end(serving ? 'ok\n' : 'no serving certificate yet\n');
    if (path !== '/mutate' && path !== '/validate') return void res.writeHead(404).end();
    if (req.method !== 'POST') return void res.writeHead(405, { allow: 'POST' }).end();
    review(path.slice(1) as WebhookName, req, res).catch((err: unknown) => {
      log.error({ err: (err as Error).message }, 'admission review failed');
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  // A handshake that fails (no certificate yet, a scanner) is not worth more than debug.
  server.on('tlsClientError', (err) => log.debug({ err: err.message }, 'TLS handshake failed'));

  // --- the serving certificate: poll the one Secret, swap on change
  const secretName = opts.tlsSecretName ?? WEBHOOK_TLS_SECRET;
  let loadedVersion: string | undefined;
  let waitingLogged = false;
  async function reload(): Promise<void> {
    let secret: Secret;
    try {
      secret = await kube.getSecret(opts.namespace, secretName);
    } catch (err) {
      if (isNotFound(err)) {
        if (!waitingLogged) log.info({ secret: `${opts.namespace}/${secretName}` }, 'waiting for the serving certificate Secret');
        waitingLogged = true;
      } else {
        log.warn({ secret: `${opts.namespace}/${secretName}`, err: toKubeError(err).message }, 'could not read the serving certificate Secret; keeping the current certificate');
      }
      return;
    }
    if (secret.metadata.resourceVersion === loadedVersion) return;
    const cert = Buffer.from(secret.data?.[SECRET_CERT] ?? '', 'base64').toString('utf8');
    const key = Buffer.from(secret.data?.[SECRET_KEY] ?? '', 'base64').toString('utf8');
    try {
      // createSecureContext checks that the key matches the certificate before anything is swapped.
      createSecureContext({ cert, key });
      server.setSecureContext({ cert, key, ...TLS_FLOOR });
    } catch {
      // OpenSSL's message could in principle quote input; say only what is wrong.
      log.warn({ secret: `${opts.namespace}/${secretName}` }, 'the serving certificate Secret holds no usable certificate and key; keeping the current certificate');
      loadedVersion = secret.metadata.resourceVersion;
      return;
    }
    loadedVersion = secret.metadata.resourceVersion;
    serving = describeCertificatePem(cert);
    log.info({ serialNumber: serving?.serialNumber, notAfter: serving?.notAfter, issuer: serving?.issuer }, 'serving certificate loaded');
  }

  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const pollMs = opts.certificatePollMs ?? 10_000;
  const poll = async () => {
    await reload().catch((err: unknown) => log.warn({ err: (err as Error).message }, 'serving certificate reload failed'));
    if (!stopped) timer = setTimeout(() => void poll(), pollMs);
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 9443, opts.host ?? '0.0.0.0', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  await poll();
  log.info({ port, ready: serving !== undefined }, 'admission webhook listening');

  return {
    port,
    ready: () => serving !== undefined,
    servingCertificate: () => serving,
    reviews: () => ({ ...counts }),
    close: async () => {
      stopped = true;
      clearTimeout(timer);
      await new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); });
    },
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) { reject(new Error('request body too large')); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
