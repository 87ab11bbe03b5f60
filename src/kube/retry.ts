// Which failed requests are sent again, on a new connection, before the
// caller hears of it: client-go's and Go's HTTP/2 transport's rules, as pure
// functions so the whole table is unit-tested; transport.ts does the I/O.
//
// undici already replays, once, a stream the API server refused (GOAWAY with
// a lower last-stream-id, REFUSED_STREAM). What it gives up on reaches here.
import { backoffDelay, type Backoff } from './backoff.ts';

/**
 * Why a request is retried (the metric's label):
 * - not_sent: the API server never saw it (no connection, or the stream was refused);
 * - connection_lost: the connection broke (reset, closed, no PING answer) before the
 *   answer was read; the API server may have acted on it.
 */
export type RetryReason = 'not_sent' | 'connection_lost';

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/**
 * A request is tried at most this often, and never retried once this long has
 * passed since its first failure. Longer than two PING intervals (transport.ts,
 * 15 s each): a retry that lands on a connection that died without a word (seen
 * right after a cut: undici hands it new streams until its PING goes unanswered)
 * fails only up to 30 s later, and must still earn a try on a fresh connection.
 */
export const RETRY_ATTEMPTS = 5;
export const RETRY_WITHIN_MS = 60_000;
/** 250 ms, 500 ms, 1 s, 2 s between tries (±20%): a new connection, not a hammered one. */
export const RETRY_BACKOFF: Backoff = { baseMs: 250, maxMs: 4_000, jitter: 0.2 };

/** Errors raised before a request left this process: nothing to undo, any method may go again. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ERR_HTTP2_GOAWAY_SESSION']);
/** A connection that broke under a request: reset, closed by the other side, or declared dead for want of a PING answer. */
const LOST_CODES = new Set(['UND_ERR_SOCKET', 'UND_ERR_INFO', 'ECONNRESET', 'EPIPE', 'ERR_HTTP2_STREAM_ERROR', 'ERR_HTTP2_SESSION_ERROR', 'ERR_HTTP2_INVALID_SESSION']);
/** RFC 9113 8.7: a REFUSED_STREAM reset means the server did not process the stream. */
const REFUSED_STREAM = 7;

interface ErrorShape { code?: unknown; message?: unknown; http2ErrorCode?: unknown; cause?: unknown }

/** What went wrong with the connection under a request, if that is what failed; undefined for anything else (an abort, a timeout, a TLS refusal). */
export function connectionFailure(err: unknown): RetryReason | undefined {
  // fetch-style wrappers put the socket's error in cause.
  for (let e = err as ErrorShape | undefined, depth = 0; e && depth < 3; e = e.cause as ErrorShape | undefined, depth++) {
    const code = typeof e.code === 'string' ? e.code : '';
    // undici fails a stream above a GOAWAY's last-stream-id with this message once its own replay is spent.
    if (e.http2ErrorCode === REFUSED_STREAM || NOT_SENT_CODES.has(code) || (typeof e.message === 'string' && e.message.includes('"GOAWAY" frame received'))) return 'not_sent';
    if (LOST_CODES.has(code)) return 'connection_lost';
  }
  return undefined;
}

/**
 * Whether a request that failed with `reason` may be sent again.
 * GET (reads, lists) always. POST (create) too: every create here either
 * names its object, so a create the API server did apply comes back 409
 * AlreadyExists and the level-based caller re-reads (a reconcile, the leader
 * election), or is an Event, where a rare duplicate is harmless and a lost
 * one is not. PUT, PATCH and DELETE only when the API server never saw them:
 * a JSON Patch with `test` operations or a precondition applied twice answers
 * an error for a write that succeeded (client-go retries no writes at all).
 */
export function mayRetry(method: Method, reason: RetryReason): boolean {
  return reason === 'not_sent' || method === 'GET' || method === 'POST';
}

/**
 * The delay before try number `attempt + 1` after try `attempt` failed for
 * `reason`, or undefined to give up: past RETRY_ATTEMPTS tries, or when the
 * retry would start more than RETRY_WITHIN_MS after the first failure.
 */
export function retryDelay(method: Method, reason: RetryReason | undefined, attempt: number, elapsedMs: number, random: () => number = Math.random): number | undefined {
  if (!reason || !mayRetry(method, reason) || attempt >= RETRY_ATTEMPTS) return undefined;
  const delayMs = backoffDelay(attempt, RETRY_BACKOFF, random);
  return elapsedMs + delayMs <= RETRY_WITHIN_MS ? delayMs : undefined;
}
