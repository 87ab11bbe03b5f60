// How every KubeClient and every watch of the process reaches the API server:
// plain REST over one shared undici connection pool per kubeconfig, paced by
// one token bucket (client-go's QPS/burst), and, when the caller needs an
// answer in bounded time (the webhook), with a per-request timeout. Replaces
// client-node at runtime (issue 12): its generated API and ObjectSerializer
// cost ~32 MB of heap and CPU on every request, for ~40 calls we make.
import { Agent, ProxyAgent, type Dispatcher } from 'undici';
import type { KubeConfig } from './config.ts';
import { credentialsOf, type Credentials, type Tls } from './credentials.ts';
import { statusError } from './errors.ts';
import { proxyFor } from './proxy.ts';
import { TokenBucket, type RateLimit } from './ratelimit.ts';
import { connectionFailure, retryDelay, type RetryReason } from './retry.ts';

// Names the writer of a request without a field manager (the CLI's annotations) in managedFields.
const USER_AGENT = 'agent-identity';
/**
 * An HTTP/2 connection is PINGed this often; one whose PING is still
 * unanswered at the next is closed, and what ran on it fails over to a new
 * one: a frozen or unreachable API server is noticed within 15 to 30 s (undici
 * defaults to 60 s, so up to 2 min; client-go notices within 30 + 15 s).
 * TCP keep-alive cannot do this: a stopped process's kernel still answers it.
 */
const PING_INTERVAL_MS = 15_000;
/**
 * TCP keep-alive probes start after this much silence (client-go's dialer: 30 s,
 * undici's default 60 s): they keep idle-timeout middleboxes from dropping the
 * connection and notice a vanished host or path, over HTTP/1.1 too.
 */
const TCP_KEEPALIVE_MS = 30_000;

/** A pool for one set of TLS settings, direct or through the context's proxy (http, https or socks5). */
function newPool(tls: Tls, proxy: URL | undefined, allowH2: boolean): Dispatcher {
  const options = poolOptions(tls, allowH2);
  if (!proxy) return new Agent(options);
  // TLS stays end to end with the API server, through the tunnel; the PINGs ride it too.
  return new ProxyAgent({ uri: proxy.href, allowH2, h2Options: options.h2Options, requestTls: tls });
}

/**
 * What the clients and watches of one kubeconfig (so one set of credentials)
 * share in this process: one connection pool and one rate limit. undici
 * negotiates HTTP/2 with the API server, so one connection carries every
 * request and watch at once (and pings it, so a dead one is noticed:
 * poolOptions); over HTTP/1.1 a watch holds a connection of its own and the pool
 * opens another for requests, so a watch never starves requests either way.
 */
class Transport {
  limit?: TokenBucket;
  onRetry?: (reason: RetryReason) => void;
  readonly origin?: string;
  readonly prefix: string;
  readonly credentials: Credentials;
  /** Read once, as Go reads the proxy environment once per process. */
  private readonly proxy?: URL;
  private pool?: { dispatcher: Dispatcher; tls: Tls };

  constructor(kc: KubeConfig) {
    // Server, proxy, TLS and credentials: all of one resolved context (config.ts).
    const cluster = kc.getCurrentCluster();
    const url = cluster?.server ? new URL(cluster.server) : undefined;
    this.origin = url?.origin;
    // A server behind a proxy may live under a path (https://proxy/k8s/clusters/c-1).
    this.prefix = url?.pathname.replace(/\/$/, '') ?? '';
    this.credentials = credentialsOf(cluster, kc.getCurrentUser());
    this.proxy = url ? proxyFor(url, cluster?.proxyUrl) : undefined;
  }

  /** The pool for these TLS settings: a new one when they change (a file re-read, a plugin's new certificate). */
  dispatcher(tls: Tls): Dispatcher {
    if (this.pool?.tls !== tls) {
      // Closed a while later, not now: a request handed the old pool a moment ago may not have
      // dispatched yet. close() then lets what is in flight (a watch, until it ends) finish.
      const old = this.pool?.dispatcher;
      if (old) setTimeout(() => void old.close().catch(() => undefined), 30_000).unref();
      this.pool = { dispatcher: newPool(tls, this.proxy, !this.credentials.http1), tls };
    }
    return this.pool.dispatcher;
  }
}

/** How a pool's connections are made and kept healthy; the TLS settings come from the credentials. */
export function poolOptions(tls: Tls, allowH2 = true): Agent.Options {
  return {
    allowH2,
    h2Options: { pingInterval: PING_INTERVAL_MS },
    connect: { ...tls, keepAlive: true, keepAliveInitialDelay: TCP_KEEPALIVE_MS },
  };
}

// Keyed by the config object: main.ts loads one and hands it to every client
// (operator, events, leader election, webhook), so they all share.
const transports = new WeakMap<KubeConfig, Transport>();

function transportOf(kc: KubeConfig): Transport {
  let t = transports.get(kc);
  if (!t) transports.set(kc, t = new Transport(kc));
  return t;
}

/** The connection pool every request and watch of `kc` uses now. */
export async function poolOf(kc: KubeConfig): Promise<Dispatcher> {
  const t = transportOf(kc);
  // A failure (an unreadable CA file) is not cached: the next request reads again.
  return t.dispatcher((await t.credentials.current()).tls);
}

/**
 * Paces every later request of every client built on `kc` (those built before
 * too): one bucket for the process, as client-go's QPS/burst for one rest
 * config. Watches are not paced: one is a single request held open for
 * minutes, and its restarts are already spaced by the informer's backoff.
 */
export function limitRequests(kc: KubeConfig, rate: RateLimit): void {
  transportOf(kc).limit = new TokenBucket(rate);
}

/** Tells `onRetry` of every request of `kc` sent again after its connection failed (the operator counts them as a metric). */
export function observeRetries(kc: KubeConfig, onRetry: (reason: RetryReason) => void): void {
  transportOf(kc).onRetry = onRetry;
}

export interface RequestOptions {
  /** Abort each request after this long (the call then fails as a network error, code 0, never as a 404). */
  timeoutMs?: number;
  /** false: not paced by limitRequests (admission lookups, see KubeClientOptions.paced). */
  paced?: boolean;
}

/**
 * Lets a request go: waits for its token unless it is not paced, and returns
 * the signal bounding it. The bound starts first, so a bounded request's wait
 * for a token counts against it.
 */
export async function admit(kc: KubeConfig, options: RequestOptions): Promise<AbortSignal | undefined> {
  const signal = options.timeoutMs === undefined ? undefined : AbortSignal.timeout(options.timeoutMs);
  await pace(kc, options);
  signal?.throwIfAborted();
  return signal;
}

/** Waits for a token of the kubeconfig's rate limit, unless the request is not paced. */
async function pace(kc: KubeConfig, options: RequestOptions): Promise<void> {
  const waitMs = options.paced === false ? 0 : transportOf(kc).limit?.take() ?? 0;
  if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface Request {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  query?: Query;
  body?: unknown;
  /** application/json unless a patch says otherwise. */
  contentType?: string;
  accept?: string;
}

function pathAndQuery(t: Transport, path: string, query: Query = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, String(v));
  const qs = q.toString();
  return `${t.prefix}${path}${qs ? `?${qs}` : ''}`;
}

/** Opens a request on the shared pool; the caller reads (or streams) the body. */
export async function open(kc: KubeConfig, req: Request, signal: AbortSignal | undefined, extra: Partial<Dispatcher.RequestOptions> = {}): Promise<Dispatcher.ResponseData> {
  const t = transportOf(kc);
  if (!t.origin) throw new Error('the kubeconfig names no cluster server');
  // Headers and TLS of one answer of the credentials: a plugin's token never travels on another's connection.
  const credentials = await t.credentials.current();
  const headers: Record<string, string | string[]> = { accept: req.accept ?? 'application/json', 'user-agent': USER_AGENT, ...credentials.headers };
  if (req.body !== undefined) headers['content-type'] = req.contentType ?? 'application/json';
  const res = await t.dispatcher(credentials.tls).request({
    origin: t.origin, path: pathAndQuery(t, req.path, req.query), method: req.method, headers, signal,
    body: req.body === undefined ? undefined : JSON.stringify(req.body), ...extra,
  });
  if (res.statusCode === 401) t.credentials.unauthorized();
  return res;
}

/** Waits `ms`, or less if `signal` aborts first. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => { clearTimeout(timer); signal?.removeEventListener('abort', done); resolve(); };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Runs `attempt` again, on whatever connection the pool has by then, when
 * the connection under it failed and retry.ts allows it: bounded in tries and
 * time, backed off, each try paced by the rate limit like any request, and
 * never past the caller's own deadline (`signal`). The last error is thrown
 * when it gives up, so the caller sees the cause, not a retry counter.
 */
async function retrying<T>(kc: KubeConfig, req: Request, options: RequestOptions, signal: AbortSignal | undefined, attempt: () => Promise<T>): Promise<T> {
  // Counted from the first failure: a try that hung on a dead connection until its PING went unanswered still earns a retry.
  let failedAt: number | undefined;
  for (let tries = 1; ; tries++) {
    try {
      return await attempt();
    } catch (err) {
      failedAt ??= performance.now();
      const reason = signal?.aborted ? undefined : connectionFailure(err);
      const delayMs = retryDelay(req.method, reason, tries, performance.now() - failedAt);
      if (delayMs === undefined || !reason) throw err;
      transportOf(kc).onRetry?.(reason);
      await sleep(delayMs, signal);
      await pace(kc, options);
      if (signal?.aborted) throw err;
    }
  }
}

/** One API call: the parsed JSON answer, or a KubeError with the Status's code, reason and message. */
export async function send<T>(kc: KubeConfig, options: RequestOptions, req: Request): Promise<T> {
  return JSON.parse(await sendText(kc, options, req)) as T;
}

/** One API call whose answer is text (a container's log), or the same KubeError as send's. */
export async function sendText(kc: KubeConfig, options: RequestOptions, req: Request): Promise<string> {
  const signal = await admit(kc, options);
  return retrying(kc, req, options, signal, async () => {
    const res = await open(kc, req, signal);
    const text = await res.body.text();
    if (res.statusCode < 200 || res.statusCode >= 300) throw statusError(res.statusCode, text);
    return text;
  });
}
