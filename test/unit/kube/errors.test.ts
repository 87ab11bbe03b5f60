import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toKubeError, isNotFound } from '../../../src/kube/errors.ts';

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
