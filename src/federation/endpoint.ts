// The bundle endpoint every replica serves (SPIFFE Trust Domain and Bundle,
// 5.2): GET /bundles/<trustDomain> answers the SPIFFE bundle document the
// leader recorded (publisher.ts), over HTTPS with the certificate recorded
// beside it (https_spiffe: the endpoint's SVID; https_web: the admin's
// Secret). It needs no leadership, and reads the records every few seconds
// like the webhook server re-reads its certificate, so a new Root or a renewed
// SVID is served without a restart. With several TrustDomains on the port the
// certificate is chosen by TLS SNI among their dnsNames; without a match, the
// first TrustDomain by name answers the handshake.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import { MANAGED_SELECTOR, SECRET_CERT, SECRET_KEY } from '../api/group.ts';
import type { ConfigMap, Secret } from '../api/types.ts';
import { KubeClient, type KubeConfig } from '../kube/client.ts';
import { ifExists, toKubeError } from '../kube/errors.ts';
import { DOCUMENT_KEY, ENDPOINT_KEY, LABEL_BUNDLE_ENDPOINT, bundlePath } from './names.ts';
import type { ServedEndpoint } from './publisher.ts';

export interface BundleEndpointOptions {
  kubeConfig: KubeConfig;
  /** The operator's namespace: where the records and serving Secrets live. */
  namespace: string;
  host: string;
  /** 0: any free port (tests). */
  port: number;
  logger: Logger;
  /** How often the records are re-read. Default 5 s: well inside any refresh hint. */
  pollMs?: number;
}

export interface BundleEndpoint {
  readonly port: number;
  /** Re-reads the records now (tests; the poll does it every pollMs). */
  reload(): Promise<void>;
  /** Trust domains served, by name. */
  served(): string[];
  close(): Promise<void>;
}

interface Served {
  trustDomain: string;
  document: string;
  dnsNames: string[];
  context?: SecureContext;
  tls?: { cert: string; key: string };
}

const TIMEOUTS = { headersTimeout: 5000, requestTimeout: 10_000, keepAliveTimeout: 5000 };

const text = (s: Secret | undefined, k: string) => (s?.data?.[k] ? Buffer.from(s.data[k], 'base64').toString() : undefined);

export async function startBundleEndpoint(opts: BundleEndpointOptions): Promise<BundleEndpoint> {
  const api = new KubeClient(opts.kubeConfig);
  const log = opts.logger;
  let byTrustDomain = new Map<string, Served>();
  /** The default context's certificate (clients that send no SNI, e.g. to an IP address), as last set. */
  let defaultTls: string | undefined;
  let contexts = new Map<string, SecureContext>();
  // Reported once per distinct problem, not every poll.
  const reported = new Set<string>();
  const problem = (key: string, message: string) => { if (!reported.has(key)) { reported.add(key); log.warn(message); } };

  async function load(cm: ConfigMap, nextContexts: Map<string, SecureContext>): Promise<Served | undefined> {
    let endpoint: ServedEndpoint;
    try {
      endpoint = JSON.parse(cm.data?.[ENDPOINT_KEY] ?? '');
    } catch {
      problem(`record/${cm.metadata.name}`, `bundle endpoint: ConfigMap ${cm.metadata.name} has no readable ${ENDPOINT_KEY}; not serving it`);
      return undefined;
    }
    const document = cm.data?.[DOCUMENT_KEY];
    if (!document) return undefined;
    const secret = await ifExists(() => api.getSecret(opts.namespace, endpoint.secretName));
    const cert = text(secret, SECRET_CERT);
    const key = text(secret, SECRET_KEY);
    const served: Served = { trustDomain: endpoint.trustDomain, document, dnsNames: endpoint.dnsNames ?? [] };
    if (!cert || !key) {
      problem(`tls/${endpoint.secretName}/${secret?.metadata.resourceVersion}`, `bundle endpoint: Secret ${opts.namespace}/${endpoint.secretName} (tls.crt, tls.key) for ${endpoint.trustDomain} is missing or incomplete; its bundle is served once it is there`);
      return served;
    }
    const id = `${cert}\n${key}`;
    try {
      const context = contexts.get(id) ?? createSecureContext({ cert, key, minVersion: 'TLSv1.2' });
      nextContexts.set(id, context);
      return { ...served, context, tls: { cert, key } };
    } catch {
      // Never the library's message: it may quote the key.
      problem(`tls/${endpoint.secretName}/${secret?.metadata.resourceVersion}`, `bundle endpoint: Secret ${endpoint.secretName} does not hold a usable tls.crt and tls.key for ${endpoint.trustDomain}`);
      return served;
    }
  }

  async function reload(): Promise<void> {
    const records = (await api.listConfigMaps(opts.namespace, `${MANAGED_SELECTOR},${LABEL_BUNDLE_ENDPOINT}`))
      .sort((a, b) => a.metadata.name!.localeCompare(b.metadata.name!));
    const next = new Map<string, Served>();
    const nextContexts = new Map<string, SecureContext>();
    for (const cm of records) {
      const s = await load(cm, nextContexts);
      if (s) next.set(s.trustDomain, s);
    }
    byTrustDomain = next;
    contexts = nextContexts;
    const first = [...next.values()].find((s) => s.tls)?.tls;
    const id = first && `${first.cert}\n${first.key}`;
    if (first && id !== defaultTls) {
      server.setSecureContext({ ...first, minVersion: 'TLSv1.2' });
      defaultTls = id;
    }
  }

  const server: Server = createServer({
    minVersion: 'TLSv1.2', ...TIMEOUTS,
    // A name no TrustDomain lists gets the default context (the first TrustDomain's certificate).
    SNICallback: (servername, cb) => cb(null, [...byTrustDomain.values()].find((s) => s.context && s.dnsNames.includes(servername.toLowerCase()))?.context),
  }, (req: IncomingMessage, res: ServerResponse) => {
    const prefix = bundlePath('');
    const served = req.url?.startsWith(prefix) ? byTrustDomain.get(decodeURIComponent(req.url.slice(prefix.length).split('?')[0]!)) : undefined;
    if (req.method !== 'GET' && req.method !== 'HEAD') res.writeHead(405, { allow: 'GET, HEAD' }).end();
    else if (!served) res.writeHead(404, { 'content-type': 'text/plain' }).end('no such trust domain is served here\n');
    else res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(req.method === 'HEAD' ? undefined : served.document);
  });
  await reload().catch((err) => log.warn({ err: toKubeError(err).message }, 'bundle endpoint: cannot read what to serve yet; retrying'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => { server.off('error', reject); resolve(); });
  });
  const timer = setInterval(() => {
    reload().catch((err) => log.warn({ err: toKubeError(err).message }, 'bundle endpoint: re-reading what to serve failed; serving what was read before'));
  }, opts.pollMs ?? 5000);
  timer.unref();
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : opts.port,
    reload,
    served: () => [...byTrustDomain.keys()],
    close: () => {
      clearInterval(timer);
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}
