import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectionFailure, mayRetry, retryDelay, RETRY_ATTEMPTS, RETRY_WITHIN_MS, type Method } from '../../../src/kube/retry.ts';

/** An error as undici or node:net raises it. */
const err = (code: string | number | undefined, message = 'x', extra: object = {}) => Object.assign(new Error(message), { code, ...extra });

test('errors are sorted by whether the API server can have seen the request', () => {
  const cases: [string, unknown, ReturnType<typeof connectionFailure>][] = [
    ['connection refused', err('ECONNREFUSED'), 'not_sent'],
    ['connect timeout (a frozen API server never finishes the handshake)', err('UND_ERR_CONNECT_TIMEOUT'), 'not_sent'],
    ['name lookup failed', err('ENOTFOUND'), 'not_sent'],
    ['GOAWAY above our stream, undici\'s replay spent', err('UND_ERR_INFO', 'HTTP/2: "GOAWAY" frame received with code 0'), 'not_sent'],
    ['GOAWAY with an error code', err('UND_ERR_SOCKET', 'HTTP/2: "GOAWAY" frame received with code 2'), 'not_sent'],
    ['REFUSED_STREAM reset', err('ERR_HTTP2_STREAM_ERROR', 'Stream closed with error code NGHTTP2_REFUSED_STREAM', { http2ErrorCode: 7 }), 'not_sent'],
    ['a new stream on a session that received GOAWAY', err('ERR_HTTP2_GOAWAY_SESSION'), 'not_sent'],
    ['the server closed the connection under the request', err('UND_ERR_SOCKET', 'other side closed', { http2ErrorCode: 2 }), 'connection_lost'],
    ['PING unanswered', err('UND_ERR_SOCKET', 'HTTP/2: connection unresponsive'), 'connection_lost'],
    ['reset by peer', err('ECONNRESET'), 'connection_lost'],
    ['stream reset with INTERNAL_ERROR', err('ERR_HTTP2_STREAM_ERROR', 'x', { http2ErrorCode: 2 }), 'connection_lost'],
    ['fetch-style wrapper: the socket error is the cause', Object.assign(new TypeError('fetch failed'), { cause: err('UND_ERR_SOCKET', 'other side closed') }), 'connection_lost'],
    ['the caller\'s timeout', new DOMException('The operation was aborted due to timeout', 'TimeoutError'), undefined],
    ['the caller aborted', err('UND_ERR_ABORTED', 'Request aborted'), undefined],
    ['TLS: wrong CA', err('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), undefined],
    ['headers timeout (a slow server, not a lost one)', err('UND_ERR_HEADERS_TIMEOUT'), undefined],
    ['an answer of the API server', Object.assign(new Error('conflict'), { code: 409 }), undefined],
    ['not an error at all', 'boom', undefined],
  ];
  for (const [what, e, want] of cases) assert.equal(connectionFailure(e), want, what);
});

test('reads and creates go again after a lost connection; other writes only when never sent', () => {
  const table: Record<Method, [boolean, boolean]> = {
    GET: [true, true], POST: [true, true], PUT: [true, false], PATCH: [true, false], DELETE: [true, false],
  };
  for (const [method, [notSent, lost]] of Object.entries(table) as [Method, [boolean, boolean]][]) {
    assert.deepEqual([mayRetry(method, 'not_sent'), mayRetry(method, 'connection_lost')], [notSent, lost], method);
  }
});

const mid = () => 0.5;

test('retries back off from 250 ms and stop after the last attempt', () => {
  const delays = Array.from({ length: RETRY_ATTEMPTS }, (_, i) => retryDelay('GET', 'connection_lost', i + 1, 0, mid));
  assert.deepEqual(delays, [250, 500, 1000, 2000, undefined]);
});

test('no retry starts later than RETRY_WITHIN_MS after the first failure', () => {
  assert.equal(retryDelay('GET', 'not_sent', 1, RETRY_WITHIN_MS - 250, mid), 250);
  assert.equal(retryDelay('GET', 'not_sent', 1, RETRY_WITHIN_MS - 249, mid), undefined);
});

test('no reason, or a write the API server may have applied, is not retried', () => {
  assert.equal(retryDelay('GET', undefined, 1, 0, mid), undefined);
  assert.equal(retryDelay('PATCH', 'connection_lost', 1, 0, mid), undefined);
  assert.equal(retryDelay('PATCH', 'not_sent', 1, 0, mid), 250);
});
