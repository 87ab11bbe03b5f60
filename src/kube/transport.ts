// How every KubeClient of the process reaches the API server: over one shared
// connection pool per kubeconfig, paced by one token bucket (client-go's
// QPS/burst), and, when the caller needs an answer in bounded time (the
// webhook), with a per-request timeout.
import type { ConfigurationOptions, KubeConfig } from '@kubernetes/client-node';
import { TokenBucket, type RateLimit } from './ratelimit.ts';

/** The parts of client-node's RequestContext and undici's Dispatcher the middleware touches. */
interface Dispatcher { close(): Promise<void> }
interface RequestContext {
  setSignal(signal: AbortSignal): void;
  getDispatcher(): Dispatcher | undefined;
  setDispatcher(dispatcher: Dispatcher): void;
}

/**
 * One connection pool for every request. client-node builds a new undici
 * Agent, with its own connections and TLS sessions, for each request and each
 * watch: a new TLS handshake per request, and under admission traffic hundreds
 * of MB that never came back. The first Agent serves all later requests (theirs
 * are dropped unused), and is replaced every few minutes, so a rotated cluster
 * CA or client certificate in the kubeconfig still takes effect. undici
 * negotiates HTTP/2 with the API server, so one connection carries every
 * request and watch at once.
 */
class SharedDispatcher {
  private current?: { dispatcher: Dispatcher; since: number };
  private readonly maxAgeMs: number;

  constructor(maxAgeMs: number) {
    this.maxAgeMs = maxAgeMs;
  }

  adopt(ctx: RequestContext): void {
    const fresh = ctx.getDispatcher();
    if (!fresh) return;
    const now = performance.now();
    if (!this.current || now - this.current.since > this.maxAgeMs) {
      // Closed a while later, not now: a request handed the old one a moment ago may not have
      // dispatched yet. close() then lets what is in flight finish and drops the connections.
      const old = this.current?.dispatcher;
      if (old) setTimeout(() => void old.close().catch(() => undefined), 30_000).unref();
      this.current = { dispatcher: fresh, since: now };
    }
    ctx.setDispatcher(this.current.dispatcher);
  }
}

/** What the clients of one kubeconfig (so one set of credentials) share in this process. */
interface Transport {
  pool: SharedDispatcher;
  limit?: TokenBucket;
}

// Keyed by the KubeConfig object: main.ts loads one and hands it to every
// client (operator, events, leader election, webhook), so they all share.
const transports = new WeakMap<KubeConfig, Transport>();

function transportOf(kc: KubeConfig): Transport {
  let t = transports.get(kc);
  if (!t) transports.set(kc, t = { pool: new SharedDispatcher(5 * 60_000) });
  return t;
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

export interface RequestOptions {
  /** Abort each request after this long (the call then fails as a network error, code 0, never as a 404). */
  timeoutMs?: number;
  /** false: not paced by limitRequests (admission lookups, see KubeClientOptions.paced). */
  paced?: boolean;
}

/** Options for every API call of one client: the process's pool, its rate limit and the client's timeout. */
export function requestOptions(kc: KubeConfig, options: RequestOptions = {}): ConfigurationOptions {
  const transport = transportOf(kc);
  // Object-param APIs run observable middleware after authentication (which
  // sets the dispatcher), and only `toPromise()` of what a hook returns is
  // used: a promise that resolves once a token is due holds the request back.
  const observable = <T>(value: T | Promise<T>) => ({ toPromise: () => Promise.resolve(value) });
  const middleware = {
    pre: (ctx: RequestContext) => {
      // Set first, so a bounded request's wait for a token counts against its bound.
      if (options.timeoutMs !== undefined) ctx.setSignal(AbortSignal.timeout(options.timeoutMs));
      transport.pool.adopt(ctx);
      const waitMs = options.paced === false ? 0 : transport.limit?.take() ?? 0;
      return observable(waitMs > 0 ? new Promise<RequestContext>((resolve) => setTimeout(() => resolve(ctx), waitMs)) : ctx);
    },
    post: <T>(res: T) => observable(res),
  };
  return { middleware: [middleware], middlewareMergeStrategy: 'append' } as unknown as ConfigurationOptions;
}

/**
 * The kubeconfig to hand client-node's Watch: the same cluster and
 * credentials, but its watches ride the process's pool instead of a new
 * Agent (and TLS connection) each. Over HTTP/2 a watch is one stream of the
 * shared connection; over HTTP/1.1 it holds a connection of its own and the
 * pool opens another for requests (undici's pool has no connection cap), so
 * a watch never starves requests either way.
 */
export function watchConfig(kc: KubeConfig): KubeConfig {
  const { pool } = transportOf(kc);
  const shared = Object.create(kc) as KubeConfig;
  shared.applySecurityAuthentication = async (ctx) => {
    await kc.applySecurityAuthentication(ctx);
    pool.adopt(ctx as unknown as RequestContext);
  };
  return shared;
}
