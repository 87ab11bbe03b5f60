// The HTTPS admission server: /mutate and /validate (pods),
// /validate-agentidentity (AgentIdentities), all AdmissionReview v1, and
// /healthz and /readyz. It runs on every replica and needs no leadership: it
// only reads. Its certificate comes from the Secret the leader's manager
// keeps current, re-read every few seconds and swapped in with
// setSecureContext, so a renewal or CA rotation needs no restart; open
// connections keep the certificate they started with.
//
// It listens only once the caBundle of the webhook configurations verifies
// the certificate it holds (readiness.ts): before that the port is closed,
// so a caller gets "connection refused" (and a Service routes elsewhere)
// instead of a TLS handshake failure. On shutdown it drains: not ready at
// once, every answer closes its connection so callers reconnect elsewhere,
// and the listener closes only when the caller says so.
//
// Anyone who can reach the port can send a review, so what one costs is
// bounded before any of it is read: bodies past the API server's own request
// cap are refused (413) and never buffered, at most a few reviews are read and
// decided at once (gate.ts: the rest wait briefly, then get 429), and slow or
// idle connections are closed.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';
import { SECRET_CERT, SECRET_KEY } from '../api/group.ts';
import type { AgentIdentity, Secret } from '../api/types.ts';
import { KubeClient, type KubeConfig } from '../kube/client.ts';
import { ifExists, isNotFound, toKubeError } from '../kube/errors.ts';
import { type AdmissionRequest, type AdmissionReview, type Outcome, mutate, reviewResponse, validate } from './admission.ts';
import { describeCertificatePem } from './certs.ts';
import { Gate } from './gate.ts';
import { validateIdentity } from './identity.ts';
import { WEBHOOK_CONFIGURATION_NAME, WEBHOOK_TLS_SECRET } from '../api/names.ts';
import type { ProxySidecarConfig } from './sidecar.ts';
import { type CaBundleOf, type Readiness, notReady, servingTrusted } from './readiness.ts';
import type { WebhookConfigurationKind } from '../kube/client.ts';

export interface WebhookServerOptions {
  kubeConfig: KubeConfig;
  /** Where the serving certificate Secret lives: the operator's namespace. */
  namespace: string;
  /** Default agent-identity-webhook-tls. */
  tlsSecretName?: string;
  /** The configurations whose caBundle must verify the certificate before the server listens; default agent-identity-operator. */
  webhookConfigurationName?: string;
  /** Default 0.0.0.0. */
  host?: string;
  /** Default 9443; 0 picks a free port once the server listens (nobody can register a URL for it in advance). */
  port?: number;
  /** Bound on each AgentIdentity GET/LIST; keep well under the configurations' timeoutSeconds (5). Default 2000. */
  lookupTimeoutMs?: number;
  /** How often the serving certificate Secret and the caBundle are re-read. Default 10 s; keep it well under the CA rotation's grace period (readiness.ts). */
  certificatePollMs?: number;
  /** Default /var/run/agentidentity. */
  mountPath?: string;
  /** The identity proxy sidecar (--proxy-image, --proxy-resources); absent: pods of identities with spec.proxy are refused. */
  proxy?: ProxySidecarConfig;
  logger: Logger;
  /** Called once per review, e.g. to count it in Prometheus metrics. */
  onReview?: (review: ReviewRecord) => void;
  /** Overrides of LIMITS (tests). */
  limits?: Partial<Limits>;
}

/** What one client may cost the server. */
export interface Limits {
  /** Larger bodies get 413 and are never buffered. */
  maxBodyBytes: number;
  /** Reviews read and decided at once; the rest wait in line. */
  maxInFlight: number;
  /** Request bytes read and decided at once. */
  maxInFlightBytes: number;
  maxQueued: number;
  /** A review still waiting after this gets 429. */
  maxQueueWaitMs: number;
  /** TLS handshake, request headers, and the whole request, each from the connection's start. */
  handshakeTimeoutMs: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** Between two requests on one connection. */
  keepAliveTimeoutMs: number;
  /** A socket with no traffic at all for this long is closed. */
  idleTimeoutMs: number;
}

export const LIMITS: Limits = {
  // The API server refuses request bodies over 3 MiB, so no pod it accepted yields a larger review.
  maxBodyBytes: 3 << 20,
  // A real review (a few KiB) takes well under a millisecond to decide: 32 at once keeps up with any
  // burst; the byte budget keeps ten maximal bodies, parsed, far below the chart's 512 Mi limit.
  maxInFlight: 32,
  maxInFlightBytes: 32 << 20,
  maxQueued: 256,
  // The configurations give us timeoutSeconds: 5, and a lookup may take 2 s of it.
  maxQueueWaitMs: 2000,
  handshakeTimeoutMs: 5000,
  headersTimeoutMs: 5000,
  requestTimeoutMs: 10_000,
  // Longer than a burst's gaps, so the API server keeps its connections; idle ones do not linger.
  keepAliveTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
};

export type WebhookName = 'mutate' | 'validate' | 'validate-agentidentity';

export interface ReviewRecord {
  webhook: WebhookName;
  /** rejected: answered with an HTTP error before any decision (BodyTooLarge, Overloaded, Malformed). */
  result: Outcome['result'] | 'rejected';
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
  /** The port asked for; once listening, the one bound (differs only for 0). */
  readonly port: number;
  /** Ready: listening, with a certificate every webhook's caBundle verifies, and not draining. */
  readiness(): Readiness;
  ready(): boolean;
  /** Whether it ever listened: only then is there anything to drain. */
  listened(): boolean;
  /** Not ready from now on, and every answer closes its connection; keeps serving until close(). */
  drain(): void;
  servingCertificate(): ServingCertificateInfo | undefined;
  /** Reviews received so far, per webhook: tests prove unrelated pods never arrive. */
  reviews(): Record<WebhookName, number>;
  close(): Promise<void>;
}

const TLS_FLOOR = { minVersion: 'TLSv1.2' } as const;

/** The fields of an AgentIdentity that name its Secret, selectable (crds/: selectableFields) so a review never lists the namespace. */
const SECRET_NAME_FIELDS = ['spec.secretName', 'status.secretName'];

/**
 * IdentityLookup.claimants by field selectors. A CRD from before they were
 * selectable answers 400: the review then lists the namespace and filters, as
 * older releases did (slow at thousands of identities, but correct), and the
 * log says once to apply this release's CRDs; each review tries the selectors
 * again, so applying them is enough.
 */
function claimantsReader(kube: KubeClient, log: Logger): (namespace: string, secretName: string) => Promise<AgentIdentity[]> {
  let warned = false;
  return async (namespace, secretName) => {
    try {
      return (await Promise.all(SECRET_NAME_FIELDS.map((f) => kube.listIdentities(namespace, undefined, `${f}=${secretName}`)))).flat();
    } catch (err) {
      if (toKubeError(err).code !== 400) throw err;
      if (!warned) log.warn({ fields: SECRET_NAME_FIELDS }, 'the AgentIdentity CRD cannot select by these fields: apply this release\'s crds/; until then each pod review lists every AgentIdentity of its namespace');
      warned = true;
      return (await kube.listIdentities(namespace)).filter((i) => i.spec.secretName === secretName || i.status?.secretName === secretName);
    }
  };
}

export async function startWebhookServer(opts: WebhookServerOptions): Promise<WebhookServer> {
  const log = opts.logger.child({ component: 'webhook-server' });
  const limits = { ...LIMITS, ...opts.limits };
  const gate = new Gate({ maxInFlight: limits.maxInFlight, maxBytes: limits.maxInFlightBytes, maxQueued: limits.maxQueued, maxWaitMs: limits.maxQueueWaitMs });
  // Live reads, so a just-created AgentIdentity counts at once; undefined only when the API server answered 404.
  const kube = new KubeClient(opts.kubeConfig, { timeoutMs: opts.lookupTimeoutMs ?? 2000, paced: false });
  const identities = { get: (ns: string, name: string) => ifExists(() => kube.getIdentity(ns, name)), claimants: claimantsReader(kube, log) };
  const admission = {
    identities,
    secretMetadata: (ns: string, name: string) => ifExists(() => kube.getMetadata('Secret', ns, name)),
    configMapMetadata: (ns: string, name: string) => ifExists(() => kube.getMetadata('ConfigMap', ns, name)),
    trustDomain: (name: string) => ifExists(() => kube.getTrustDomain(name)),
    ...(opts.mountPath ? { mountPath: opts.mountPath } : {}),
    ...(opts.proxy ? { proxy: opts.proxy } : {}),
  };
  const identityAdmission = {
    ...admission,
    namespaceLabels: async (name: string) => { const ns = await ifExists(() => kube.getNamespace(name)); return ns && (ns.metadata.labels ?? {}); },
  };
  const webhooks: Record<WebhookName, (req: AdmissionRequest) => Promise<Outcome>> = {
    mutate: (req) => mutate(req, admission),
    validate: (req) => validate(req, admission),
    'validate-agentidentity': (req) => validateIdentity(req, identityAdmission),
  };
  const counts: Record<WebhookName, number> = { mutate: 0, validate: 0, 'validate-agentidentity': 0 };
  let serving: ServingCertificateInfo | undefined;
  let servingPem: string | undefined;
  let verdict: Readiness = notReady('the webhook has no serving certificate yet');
  let draining = false;

  /** An HTTP error instead of an AdmissionReview: the API server then refuses the pod (failurePolicy Fail). */
  function reject(webhook: WebhookName, res: ServerResponse, started: number, code: 400 | 413 | 429, reason: string, text: string): void {
    // Debug only: a flood must not become a flood of log lines. The metric counts them.
    log.debug({ webhook, code, reason }, 'admission review rejected');
    opts.onReview?.({ webhook, result: 'rejected', reason, durationMs: performance.now() - started });
    // The unread rest of the body is not worth reading: close the connection instead.
    res.writeHead(code, { 'content-type': 'text/plain', connection: 'close', ...(code === 429 ? { 'retry-after': '1' } : {}) }).end(`${text}\n`);
  }

  async function review(webhook: WebhookName, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    counts[webhook]++;
    const declared = Number(req.headers['content-length'] ?? NaN);
    const tooLarge = `request body larger than ${limits.maxBodyBytes} bytes`;
    if (declared > limits.maxBodyBytes) return reject(webhook, res, started, 413, 'BodyTooLarge', tooLarge);
    const release = await gate.enter(Number.isInteger(declared) ? declared : limits.maxBodyBytes);
    if (!release) return reject(webhook, res, started, 429, 'Overloaded', 'too many admission reviews in progress; retry shortly');
    try {
      const raw = await readBody(req, limits.maxBodyBytes);
      if (raw === undefined) {
        reject(webhook, res, started, 413, 'BodyTooLarge', tooLarge);
        // Past the cap nothing more is read: the socket goes once the answer is out.
        res.once('finish', () => req.socket.destroy());
        return;
      }
      let body: AdmissionReview;
      try {
        body = JSON.parse(raw) as AdmissionReview;
        if (!body.request?.uid) throw new Error('no request.uid');
      } catch (err) {
        log.debug({ webhook, err: (err as Error).message }, 'malformed AdmissionReview');
        return reject(webhook, res, started, 400, 'Malformed', 'expected an admission.k8s.io/v1 AdmissionReview');
      }
      const request = body.request;
      const outcome = await webhooks[webhook](request);
      const durationMs = performance.now() - started;
      const pod = (request.object as { metadata?: { name?: string; generateName?: string } } | undefined)?.metadata;
      log.debug({ webhook, namespace: request.namespace, pod: pod?.name || pod?.generateName, result: outcome.result, reason: outcome.reason, durationMs: Math.round(durationMs) }, 'admission review');
      // The API server's own words go to the log; the requester got ours.
      if (outcome.result === 'error') log.warn({ webhook, namespace: request.namespace, message: outcome.response.status?.message, err: outcome.error }, 'admission lookup failed');
      opts.onReview?.({ webhook, result: outcome.result, ...(outcome.reason ? { reason: outcome.reason } : {}), ...(request.namespace ? { namespace: request.namespace } : {}), durationMs });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reviewResponse(outcome.response)));
    } finally {
      release();
    }
  }

  // connectionsCheckingInterval: headersTimeout and requestTimeout are only enforced this often (default 30 s).
  const server: Server = createServer({ ...TLS_FLOOR, handshakeTimeout: limits.handshakeTimeoutMs, connectionsCheckingInterval: 1000 }, (req, res) => {
    // Draining: this answer is the connection's last, so the caller's next request opens one to a replica still in the Service.
    if (draining) res.setHeader('connection', 'close');
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    if (path === '/readyz') {
      const r = readiness();
      return void res.writeHead(r.ready ? 200 : 503, { 'content-type': 'text/plain' }).end(r.ready ? 'ok\n' : `${r.reason}\n`);
    }
    const webhook = path?.slice(1) ?? '';
    if (!Object.hasOwn(webhooks, webhook)) return void res.writeHead(404).end();
    if (req.method !== 'POST') return void res.writeHead(405, { allow: 'POST' }).end();
    review(webhook as WebhookName, req, res).catch((err: unknown) => {
      // A client that hung up (or was timed out) is not our failure.
      if (req.destroyed) return void log.debug({ err: (err as Error).message }, 'admission review abandoned');
      log.error({ err: (err as Error).message }, 'admission review failed');
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.timeout = limits.idleTimeoutMs;
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
    servingPem = cert;
    log.info({ serialNumber: serving?.serialNumber, notAfter: serving?.notAfter, issuer: serving?.issuer }, 'serving certificate loaded');
  }

  // --- the caBundle: what the API server trusts, read from the configurations the leader keeps current
  const configName = opts.webhookConfigurationName ?? WEBHOOK_CONFIGURATION_NAME;
  const KINDS: WebhookConfigurationKind[] = ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration'];
  let bundles: CaBundleOf[] | undefined;
  let bundleError: string | undefined;
  /** Every webhook's caBundle; on a failed read the last one read stays (a 429 or timeout says nothing about trust). */
  async function readBundles(): Promise<void> {
    try {
      const found: CaBundleOf[] = [];
      for (const kind of KINDS) {
        const c = await kube.getWebhookConfiguration(kind, configName);
        for (const w of c?.webhooks ?? []) found.push({ webhook: `${kind}/${configName}: ${w.name}`, caBundle: w.clientConfig.caBundle });
      }
      bundles = found;
      bundleError = undefined;
    } catch (err) {
      const message = toKubeError(err).message;
      if (message !== bundleError) log.warn({ configuration: configName, err: message }, 'could not read the webhook configurations; judging by the caBundle read last');
      bundleError = message;
    }
  }

  // --- listening: only from the first moment the caBundle verifies what is served
  const port0 = opts.port ?? 9443;
  let boundPort: number | undefined;
  let listenError: string | undefined;
  async function listen(): Promise<void> {
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port0, opts.host ?? '0.0.0.0', () => resolve());
      });
    } catch (err) {
      // Retried at the next poll; until then the replica stays unready.
      const message = (err as Error).message;
      if (message !== listenError) log.error({ port: port0, err: message }, 'the admission webhook cannot listen');
      listenError = message;
      return;
    }
    // close() came while the port was being bound: nothing may stay open after it.
    if (stopped) return void server.close();
    boundPort = (server.address() as { port: number }).port;
    log.info({ port: boundPort }, 'admission webhook listening: the caBundle verifies its serving certificate');
  }

  /** The Secret first, then the configurations: never an old certificate judged against a newer caBundle than the Secret held. */
  async function refresh(): Promise<void> {
    await reload().catch((err: unknown) => log.warn({ err: (err as Error).message }, 'serving certificate reload failed'));
    await readBundles();
    const before = verdict;
    verdict = bundles ? await servingTrusted(servingPem, bundles, new Date()) : notReady(`the webhook configurations ${configName} could not be read yet`);
    if (verdict.ready && boundPort === undefined && !stopped) await listen();
    const after = readiness();
    if (after.ready !== before.ready || (!after.ready && !before.ready && after.reason !== before.reason)) {
      log.info({ ready: after.ready, ...(after.ready ? {} : { reason: after.reason }) }, after.ready ? 'webhook ready' : 'webhook not ready');
    }
  }

  function readiness(): Readiness {
    if (draining) return notReady('shutting down');
    if (!verdict.ready) return verdict;
    return boundPort === undefined ? notReady('the admission webhook is not listening yet') : verdict;
  }

  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const pollMs = opts.certificatePollMs ?? 10_000;
  // Not ready yet: look again every second, so a fresh install or a new pod serves within a second of its
  // certificate being trusted, not up to a whole poll later. Three GETs a second, for a replica nobody calls.
  const unreadyPollMs = Math.min(pollMs, 1000);
  const poll = async () => {
    await refresh().catch((err: unknown) => log.warn({ err: (err as Error).message }, 'webhook readiness check failed'));
    if (!stopped) timer = setTimeout(() => void poll(), readiness().ready ? pollMs : unreadyPollMs);
  };

  // A taken port is refused at start-up, by name, not at the first verified certificate minutes later.
  if (port0 !== 0) await portIsFree(port0, opts.host ?? '0.0.0.0');
  await poll();
  log.info({ port: port0, ready: readiness().ready }, 'admission webhook started');

  return {
    get port() { return boundPort ?? port0; },
    readiness,
    ready: () => readiness().ready,
    listened: () => boundPort !== undefined,
    servingCertificate: () => serving,
    reviews: () => ({ ...counts }),
    drain: () => { draining = true; },
    close: async () => {
      stopped = true;
      clearTimeout(timer);
      if (!server.listening) return;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // Reviews in flight get their answer (each is bounded by requestTimeout); whatever is left then is cut.
      const cut = setTimeout(() => server.closeAllConnections(), limits.requestTimeoutMs);
      await closed;
      clearTimeout(cut);
    },
  };
}

/** Binds and at once releases `port`, so that a taken port fails now; the probe never accepts a connection. */
function portIsFree(port: number, host: string): Promise<void> {
  const probe = createNetServer();
  return new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen({ port, host, backlog: 0 }, () => probe.close(() => resolve()));
  });
}

/** The body as text, counted as it arrives; undefined as soon as it passes `max` (reading stops there). */
function readBody(req: IncomingMessage, max: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    if (req.destroyed) return reject(new Error('the client went away'));
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size <= max) return void chunks.push(c);
      req.off('data', onData);
      req.pause();
      chunks.length = 0;
      resolve(undefined);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks, size).toString('utf8')));
    req.on('error', reject);
    req.on('close', () => reject(new Error('the client went away')));
  });
}
