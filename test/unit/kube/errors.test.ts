import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeError, isNotFound, isTransient, statusError, toKubeError, transientReason, type TransientReason } from '../../../src/kube/errors.ts';

test('a fetch failure keeps the socket error code as its reason', () => {
  const err = new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' }) });
  const e = toKubeError(err);
  assert.deepEqual([e.code, e.reason, e.message], [0, 'ECONNREFUSED', 'fetch failed']);
});

test('an error without any code is a NetworkError', () => {
  assert.equal(toKubeError(new Error('socket hang up')).reason, 'NetworkError');
});

test('a watch that the API server refused keeps its HTTP status', () => {
  // client-node's Watch rejects with the status text and statusCode.
  const err = Object.assign(new Error('Not Found'), { statusCode: 404 });
  assert.equal(toKubeError(err).code, 404);
  assert.equal(isNotFound(err), true);
});

// What a retry can fix, and what it cannot: the table behind "a transient error never stops a CA".
const socket = (code: string) => new TypeError('fetch failed', { cause: Object.assign(new Error(code), { code }) });
const transientTable: Array<[string, unknown, TransientReason | undefined]> = [
  ['409 Conflict (stale resourceVersion)', new KubeError(409, 'Conflict', 'the object has been modified'), 'Conflict'],
  ['409 AlreadyExists (another writer created it first)', new KubeError(409, 'AlreadyExists', 'already exists'), 'Conflict'],
  ['429 TooManyRequests', new KubeError(429, 'TooManyRequests', 'slow down'), 'TooManyRequests'],
  ['500 InternalError', new KubeError(500, 'InternalError', 'etcd'), 'ServerError'],
  ['502 from a proxy (not JSON)', statusError(502, 'Bad Gateway'), 'ServerError'],
  ['503 ServiceUnavailable', new KubeError(503, 'ServiceUnavailable', 'unavailable'), 'ServerError'],
  ['504 Timeout', new KubeError(504, 'Timeout', 'timed out'), 'ServerError'],
  ['a reset connection', socket('ECONNRESET'), 'Network'],
  ['a refused connection (API server restarting)', socket('ECONNREFUSED'), 'Network'],
  ['a socket timeout', socket('ETIMEDOUT'), 'Network'],
  ['undici closing the socket', socket('UND_ERR_SOCKET'), 'Network'],
  ['undici headers timeout', socket('UND_ERR_HEADERS_TIMEOUT'), 'Network'],
  ['an HTTP/2 GOAWAY', socket('ERR_HTTP2_GOAWAY_SESSION'), 'Network'],
  ['AbortSignal.timeout() firing', new DOMException('The operation was aborted due to timeout', 'TimeoutError'), 'Network'],
  ['400 BadRequest', new KubeError(400, 'BadRequest', 'bad'), undefined],
  ['401 Unauthorized', new KubeError(401, 'Unauthorized', 'who'), undefined],
  ['403 Forbidden', new KubeError(403, 'Forbidden', 'no'), undefined],
  ['404 NotFound', new KubeError(404, 'NotFound', 'gone'), undefined],
  ['422 Invalid', new KubeError(422, 'Invalid', 'bad field'), undefined],
  ['an Error with no code (our own bug, not the network)', new TypeError('x is undefined'), undefined],
  ['a TLS failure (retrying presents the same certificate)', socket('ERR_TLS_CERT_ALTNAME_INVALID'), undefined],
];
for (const [name, err, want] of transientTable) {
  test(`transient? ${name}: ${want ?? 'no'}`, () => {
    assert.equal(transientReason(err), want);
    assert.equal(isTransient(err), want !== undefined);
    assert.equal(isTransient(toKubeError(err)), want !== undefined, 'the same once normalised by call()');
  });
}
