import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs } from 'node:util';
import { KubeError, statusError, toKubeError, TIMEOUT } from '../../../src/kube/errors.ts';
import { NoClusterError } from '../../../src/kube/config.ts';
import { ApiFailure, ConfigError, UsageError, causeOf, displayServer, exitStatusOf, kubeconfigError, report } from '../../../src/cli/errors.ts';

const SERVER = 'https://127.0.0.1:6443';

test('an API answer of 401 is a failure (exit 1) reported in one line: its code is a number, which once crashed the CLI', () => {
  // The old main.ts called err.code?.startsWith(...) on every error; a KubeError's code is the HTTP status.
  const e = statusError(401, JSON.stringify({ kind: 'Status', status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 }));
  assert.equal(typeof e.code, 'number');
  assert.equal(exitStatusOf(e), 1);
  const failure = new ApiFailure(SERVER, e, 30_000);
  assert.equal(exitStatusOf(failure), 1);
  assert.equal(report(failure, false), "agent-identity: https://127.0.0.1:6443: 401 Unauthorized: the kubeconfig's credentials were refused\n");
});

test('errors whose code is not a string (a DOMException, a plain object, null) are failures, not crashes', () => {
  for (const err of [new DOMException('The operation was aborted due to timeout', 'TimeoutError'), { code: 7 }, null, 'text']) {
    assert.equal(exitStatusOf(err), 1);
    assert.match(report(err, false), /^agent-identity: .*\n$/);
  }
});

test('usage and kubeconfig errors exit 2: parseArgs, UsageError, ConfigError, and a kubeconfig loader that finds no cluster', () => {
  let parseError: unknown;
  try { parseArgs({ args: ['--bogus'], options: {}, strict: true }); } catch (err) { parseError = err; }
  assert.equal(exitStatusOf(parseError), 2);
  assert.match(report(parseError, false), /^agent-identity: Unknown option '--bogus'.*\(agent-identity --help for usage\)\n$/);
  assert.equal(exitStatusOf(new UsageError('x')), 2);
  assert.equal(exitStatusOf(new ConfigError('x')), 2);
  assert.equal(exitStatusOf(kubeconfigError(new NoClusterError())), 2);
});

test('a request past its timeout is a Timeout, whatever the DOMException carries as code', () => {
  const e = toKubeError(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
  assert.deepEqual([e.code, e.reason], [0, TIMEOUT]);
  assert.equal(causeOf(e, 2500), 'no answer within 2.5s (--request-timeout)');
});

test('an answer that is not JSON: none of its text is kept (JSON.parse quotes its start, which may be a Secret\'s bytes)', () => {
  let parseError: unknown;
  try { JSON.parse('tok-abc123 is what the plugin printed'); } catch (err) { parseError = err; }
  assert.match((parseError as Error).message, /tok-abc/);
  const e = toKubeError(parseError);
  assert.doesNotMatch(e.message, /tok-abc/);
  assert.equal(causeOf(e), "the answer was not JSON (is the server a Kubernetes API server, not a proxy's page?)");
});

test('the cause: the Status message where it says more than the status text, a hint in words where it does not', () => {
  const cases: Array<[KubeError, string]> = [
    [new KubeError(403, 'Forbidden', 'secrets "x" is forbidden: User "bob" cannot get resource "secrets"'), '403 Forbidden: secrets "x" is forbidden: User "bob" cannot get resource "secrets"'],
    [new KubeError(403, 'Forbidden', 'forbidden'), "403 Forbidden: the kubeconfig's user is not allowed to do this"],
    [statusError(404, '404 page not found'), '404 Not Found: the API server does not serve this (are the agent-identity CRDs installed?)'],
    [statusError(504, '<html>gateway timeout</html>'), '504 Gateway Timeout: the API server failed to answer; try again'],
    [statusError(418, ''), "418 I'm a Teapot"],
    [new KubeError(0, 'ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:6443'), 'connection refused: nothing listens there (is the API server running, and is the server in the kubeconfig right?)'],
    [new KubeError(0, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate'), "TLS failure: the server's certificate is not signed by a CA the kubeconfig trusts (unable to verify the first certificate)"],
    [new KubeError(0, 'ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames"), "TLS failure: the server's certificate is not for this host name (Hostname/IP does not match certificate's altnames)"],
    [new KubeError(0, 'CERT_HAS_EXPIRED', 'certificate has expired'), "TLS failure: the server's certificate is not valid now (certificate has expired)"],
    [new KubeError(0, 'ENOENT', "ENOENT: no such file or directory, open '/ca.crt'"), "ENOENT: no such file or directory, open '/ca.crt'"],
    [new KubeError(0, 'EMFILE', 'too many open files'), 'too many open files (EMFILE)'],
    [new KubeError(0, 'NetworkError', 'the kubeconfig names no cluster server'), 'the kubeconfig names no cluster server'],
  ];
  for (const [e, cause] of cases) assert.equal(causeOf(e), cause);
});

test('the server is shown without user:password or a query, which may hold credentials', () => {
  assert.equal(displayServer('https://admin:hunter2@k8s.example:6443/'), 'https://k8s.example:6443');
  assert.equal(displayServer('https://rancher.example/k8s/clusters/c-1/?token=abc'), 'https://rancher.example/k8s/clusters/c-1');
  assert.equal(displayServer('not a url'), 'not a url');
});

test('a YAML error in the kubeconfig keeps its line, never the quoted text around it (a token may be there)', async () => {
  const { load } = await import('js-yaml');
  let yamlError: unknown;
  try { load('users:\n- user: { token: s3cr3t\n'); } catch (err) { yamlError = err; }
  const c = kubeconfigError(yamlError);
  assert.match(c.message, /^cannot load the kubeconfig: invalid YAML: .+ \(line \d+\)$/);
  assert.doesNotMatch(c.message, /s3cr3t/);
});

test('--debug adds the stack after the line; without it there is none', () => {
  const failure = new ApiFailure(SERVER, new KubeError(503, 'ServiceUnavailable', 'etcd is\nunavailable'), undefined);
  const plain = report(failure, false);
  assert.equal(plain, 'agent-identity: https://127.0.0.1:6443: 503 Service Unavailable: etcd is unavailable\n');
  const debug = report(failure, true);
  assert.ok(debug.startsWith(plain));
  assert.match(debug, /^ {4}at /m);
});
