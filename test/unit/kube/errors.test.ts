// The error shapes the REST transport really produces, reduced to what callers
// decide on. HTTP answers: Status bodies as a kube-apiserver 1.37 sent them
// (recorded), and answers that are no Status. Network failures: real undici
// requests and watches against sockets on 127.0.0.1 that refuse, close or
// never answer (a broken network, not an API server).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { KubeError, ifExists, isAlreadyExists, isConflict, isNotFound, statusError, TIMEOUT, toKubeError, isTransient, transientReason, type TransientReason } from '../../../src/kube/errors.ts';
import { LoadedKubeConfig } from '../../../src/kube/config.ts';
import { send } from '../../../src/kube/transport.ts';
import { watch } from '../../../src/kube/watch.ts';

const status = (code: number, reason: string, message: string, details?: object) =>
  `${JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code })}\n`;

// [body as recorded, code, reason, message, isNotFound, isConflict, isAlreadyExists]
const RECORDED: Array<[string, number, string, string, boolean, boolean, boolean]> = [
  [status(404, 'NotFound', 'secrets "absent" not found', { name: 'absent', kind: 'secrets' }), 404, 'NotFound', 'secrets "absent" not found', true, false, false],
  [status(409, 'AlreadyExists', 'secrets "exists" already exists', { name: 'exists', kind: 'secrets' }), 409, 'AlreadyExists', 'secrets "exists" already exists', false, true, true],
  [status(409, 'Conflict', 'Operation cannot be fulfilled on secrets "exists": the object has been modified; please apply your changes to the latest version and try again', { name: 'exists', kind: 'secrets' }),
    409, 'Conflict', 'Operation cannot be fulfilled on secrets "exists": the object has been modified; please apply your changes to the latest version and try again', false, true, false],
  [status(422, 'Invalid', 'Secret "Not_A_Valid_Name" is invalid: metadata.name: Invalid value: "Not_A_Valid_Name"', {
    name: 'Not_A_Valid_Name', kind: 'Secret', causes: [{ reason: 'FieldValueInvalid', message: 'Invalid value: "Not_A_Valid_Name"', field: 'metadata.name' }],
  }), 422, 'Invalid', 'Secret "Not_A_Valid_Name" is invalid: metadata.name: Invalid value: "Not_A_Valid_Name"', false, false, false],
  [status(403, 'Forbidden', 'secrets is forbidden: User "nobody" cannot list resource "secrets" in API group "" in the namespace "default"', { kind: 'secrets' }),
    403, 'Forbidden', 'secrets is forbidden: User "nobody" cannot list resource "secrets" in API group "" in the namespace "default"', false, false, false],
  [status(401, 'Unauthorized', 'Unauthorized'), 401, 'Unauthorized', 'Unauthorized', false, false, false],
];

test("an API server's Status keeps its code, reason and message, and nothing else of the body", () => {
  for (const [body, code, reason, message, notFound, conflict, alreadyExists] of RECORDED) {
    const e = statusError(code, body);
    assert.ok(e instanceof KubeError);
    assert.deepEqual([e.code, e.reason, e.message], [code, reason, message], body);
    assert.deepEqual([isNotFound(e), isConflict(e), isAlreadyExists(e)], [notFound, conflict, alreadyExists], `${code} ${reason}`);
    assert.equal(toKubeError(e), e, 'a KubeError passes through as it is');
    assert.doesNotMatch(JSON.stringify(e), /details|causes|FieldValueInvalid/, 'the details stay out of the error');
  }
});

test('an answer that is no Status keeps its HTTP code, with the code as message', () => {
  // kube-apiserver's answer for a path it does not serve (a CRD version that is not installed); a proxy's empty 503 or HTML 502.
  for (const [code, body] of [[404, '404 page not found\n'], [503, ''], [502, '<html><body>Bad Gateway</body></html>'], [500, 'null'], [500, '{"message":42}']] as const) {
    const e = statusError(code, body);
    assert.deepEqual([e.code, e.reason, e.message], [code, 'Unknown', `HTTP ${code}`], body);
  }
});

/** A TCP server on 127.0.0.1 doing `onSocket` with each connection; closed after the test. */
async function tcp(t: { after: (fn: () => Promise<void>) => void }, onSocket: (s: Socket) => void): Promise<{ server: Server; kc: LoadedKubeConfig }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => { sockets.add(s); s.on('error', () => undefined); onSocket(s); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(async () => { for (const s of sockets) s.destroy(); await new Promise((r) => server.close(r)); });
  return { server, kc: new LoadedKubeConfig({ server: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }, null) };
}

const GET = { method: 'GET', path: '/api/v1/namespaces/default/secrets/x' } as const;
const rejection = (p: Promise<unknown>) => p.then(() => assert.fail('resolved'), (e: unknown) => e);

/** Each network failure: code 0 with its own reason, and never taken for "absent" by ifExists. */
async function assertNetworkFailure(attempt: () => Promise<unknown>, reason: string) {
  const e = toKubeError(await rejection(attempt()));
  assert.deepEqual([e.code, e.reason], [0, reason], e.message);
  assert.equal(isNotFound(e), false);
  const viaIfExists = await rejection(ifExists(attempt));
  assert.ok(viaIfExists instanceof KubeError, 'ifExists rejects with a KubeError rather than answering "absent"');
  assert.equal(viaIfExists.reason, reason);
}

test('a refused connection is ECONNREFUSED, code 0', async (t) => {
  const { server, kc } = await tcp(t, () => undefined);
  await new Promise((r) => server.close(r));
  await assertNetworkFailure(() => send(kc, {}, GET), 'ECONNREFUSED');
});

test('a connection closed before the answer is undici\'s UND_ERR_SOCKET, code 0', async (t) => {
  const { kc } = await tcp(t, (s) => s.once('data', () => s.destroy()));
  await assertNetworkFailure(() => send(kc, {}, GET), 'UND_ERR_SOCKET');
});

test('a request its timeout ended has reason Timeout, code 0', async (t) => {
  const { kc } = await tcp(t, () => undefined);
  await assertNetworkFailure(() => send(kc, { timeoutMs: 100 }, GET), TIMEOUT);
});

test('a watch cut mid-stream rejects with UND_ERR_SOCKET after handing on what came; one its signal ended, with AbortError', async (t) => {
  const EVENT = '{"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"5"}}}\n';
  const answer = (s: Socket, then: (s: Socket) => void) => s.once('data', () => {
    s.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n${EVENT.length.toString(16)}\r\n${EVENT}\r\n`);
    then(s);
  });
  const query = { resourceVersion: '1', timeoutSeconds: 60 };

  const cut = await tcp(t, (s) => answer(s, () => setImmediate(() => s.destroy())));
  const seen: string[] = [];
  const e = await rejection(watch<{ metadata: { name: string } }>(cut.kc, '/api/v1/secrets', query, (ev) => seen.push(ev.object.metadata.name), new AbortController().signal));
  assert.ok(e instanceof KubeError);
  assert.deepEqual([e.code, e.reason, seen], [0, 'UND_ERR_SOCKET', ['a']]);

  const held = await tcp(t, (s) => answer(s, () => undefined));
  const stop = new AbortController();
  const a = await rejection(watch(held.kc, '/api/v1/secrets', query, () => stop.abort(), stop.signal));
  assert.ok(a instanceof KubeError);
  assert.deepEqual([a.code, a.reason], [0, 'AbortError']);
});

// What a retry can fix, and what it cannot: the table behind "a transient error never stops a CA".
// undici and node:net put the code on the error itself (see the network tests above).
const socket = (code: string) => Object.assign(new Error(code), { code });
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
