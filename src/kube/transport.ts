// How a KubeClient's requests travel: over one connection pool, and, when the
// caller needs an answer in bounded time (the webhook), with a per-request timeout.
import type { ConfigurationOptions } from '@kubernetes/client-node';

/** The parts of client-node's RequestContext and undici's Dispatcher the middleware touches. */
interface Dispatcher { close(): Promise<void> }
interface RequestContext {
  setSignal(signal: AbortSignal): void;
  getDispatcher(): Dispatcher | undefined;
  setDispatcher(dispatcher: Dispatcher): void;
}

/**
 * One connection pool for every request. client-node builds a new undici
 * Agent, with its own connections and TLS sessions, for each request: a new
 * TLS handshake per request, and under admission traffic hundreds of MB that
 * never came back. The first request's Agent serves all later ones (theirs are
 * dropped unused), and is replaced every few minutes, so a rotated cluster CA
 * or client certificate in the kubeconfig still takes effect.
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

/**
 * Options for every API call of one client: its requests share one pool, and
 * with `timeoutMs` are aborted after it (the call then fails as a network
 * error, code 0, never as a 404).
 */
export function requestOptions(timeoutMs?: number): ConfigurationOptions {
  const pool = new SharedDispatcher(5 * 60_000);
  // Object-param APIs run observable middleware after authentication (which
  // sets the dispatcher), and only `toPromise()` of what a hook returns is
  // used: a resolved promise behind it is enough.
  const observable = <T>(value: T) => ({ toPromise: () => Promise.resolve(value) });
  const middleware = {
    pre: (ctx: RequestContext) => {
      if (timeoutMs !== undefined) ctx.setSignal(AbortSignal.timeout(timeoutMs));
      pool.adopt(ctx);
      return observable(ctx);
    },
    post: <T>(res: T) => observable(res),
  };
  return { middleware: [middleware], middlewareMergeStrategy: 'append' } as unknown as ConfigurationOptions;
}
