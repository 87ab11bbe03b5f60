// API errors reduced to what callers decide on: the HTTP status and the
// Status message. Never the raw body, headers or request: that keeps
// request/response bytes (a Secret's data) out of logs.

/** Neither a kubeconfig nor a pod's service account: there is no cluster to talk to. */
export class NoClusterError extends Error {
  constructor() {
    super('no kubeconfig found: set KUBECONFIG or --kubeconfig, or run in a cluster');
    this.name = 'NoClusterError';
  }
}

/** A kubeconfig we will not act on: one line naming the entry, the context and the field. */
export class KubeConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KubeConfigError';
  }
}

// The two above live here, not in config.ts, so that code that only tells errors apart
// (src/cli/errors.ts, which `agent-identity proxy` loads too) does not load the kubeconfig reader and js-yaml.

export class KubeError extends Error {
  readonly code: number;
  readonly reason: string;
  constructor(code: number, reason: string, message: string) {
    super(message);
    this.name = 'KubeError';
    this.code = code;
    this.reason = reason;
  }
}

/** A non-2xx answer: the Status body's reason and message (metav1.Status), when it is one. */
export function statusError(code: number, body: string): KubeError {
  let s: { reason?: unknown; message?: unknown } = {};
  try { s = (JSON.parse(body) ?? {}) as typeof s; } catch { /* not JSON: "404 page not found" */ }
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  return new KubeError(code, str(s.reason) ?? 'Unknown', str(s.message) ?? `HTTP ${code}`);
}

/** The reason of a request that ran past its client's timeout (RequestOptions.timeoutMs). */
export const TIMEOUT = 'Timeout';

/** The reason of an answer (or a credential plugin's output) that did not parse as JSON. */
export const INVALID_JSON = 'InvalidJSON';

/**
 * Normalises anything a request or watch rejects with (transport.ts, watch.ts).
 * A network failure becomes code 0, never a 404, with its own code as reason:
 * undici's (UND_ERR_SOCKET when the connection closed under it) or the
 * socket's (ECONNREFUSED, ECONNRESET, a TLS code such as
 * CERT_SIGNATURE_FAILURE). A request past its client's timeout has reason
 * TIMEOUT; one that another signal ended rejects with a DOMException, whose
 * legacy code is a number: its name (AbortError) is the reason.
 */
export function toKubeError(err: unknown): KubeError {
  if (err instanceof KubeError) return err;
  const e = err as { code?: unknown; message?: unknown; name?: unknown };
  const message = typeof e?.message === 'string' ? e.message : String(err);
  if (e?.name === 'TimeoutError') return new KubeError(0, TIMEOUT, message);
  // JSON.parse quotes the start of what it could not parse: a Secret's bytes, or a plugin's token. Never kept.
  if (err instanceof SyntaxError) return new KubeError(0, INVALID_JSON, 'the answer was not valid JSON');
  const reason = typeof e?.code === 'string' ? e.code : err instanceof DOMException ? err.name : 'NetworkError';
  return new KubeError(0, reason, message);
}

/** True only when the API server positively answered 404 — never for timeouts, 403s or 5xx. */
export function isNotFound(err: unknown): boolean {
  return toKubeError(err).code === 404;
}

export function isConflict(err: unknown): boolean {
  return toKubeError(err).code === 409;
}

export function isAlreadyExists(err: unknown): boolean {
  const e = toKubeError(err);
  return e.code === 409 && e.reason === 'AlreadyExists';
}

/** Wraps an API call so that every rejection is a KubeError. */
export async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toKubeError(err);
  }
}

/** The object, or undefined when the API server answered 404. */
export async function ifExists<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await call(fn);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Why an API call failed for a moment rather than for good: the label of agentidentity_transient_errors_total. */
export type TransientReason = 'Conflict' | 'TooManyRequests' | 'ServerError' | 'Network';

// Socket and HTTP/2 failures (Node's and undici's codes) and timeouts: the
// request may not have reached the API server, or its answer was lost. A
// NetworkError without a code is not here: toKubeError gives that to any
// Error, including our own bugs, which retrying would only hide.
const NETWORK_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', TIMEOUT,
  'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT',
  'ERR_HTTP2_GOAWAY_SESSION', 'ERR_HTTP2_STREAM_ERROR', 'ERR_HTTP2_SESSION_ERROR', 'ERR_HTTP2_STREAM_CANCEL', 'ERR_HTTP2_INVALID_SESSION',
]);

/**
 * The one classifier of transient API errors: a write that lost a race (409),
 * throttling (429), the API server or a proxy failing (5xx), or a reset or
 * timed-out connection. Retrying the same request later can succeed. Never
 * 400/403/404/422: retrying those changes nothing.
 */
export function transientReason(err: unknown): TransientReason | undefined {
  const e = toKubeError(err);
  if (e.code === 409) return 'Conflict';
  if (e.code === 429) return 'TooManyRequests';
  if (e.code >= 500 && e.code <= 599) return 'ServerError';
  if (e.code === 0 && NETWORK_CODES.has(e.reason)) return 'Network';
  return undefined;
}

export function isTransient(err: unknown): boolean {
  return transientReason(err) !== undefined;
}
