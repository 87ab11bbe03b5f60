import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execInfo, isInteractive, parseExecCredential } from '../../../src/kube/exec.ts';
import type { ExecConfig } from '../../../src/kube/config.ts';

const exec: ExecConfig = { apiVersion: 'client.authentication.k8s.io/v1', command: 'plugin', interactiveMode: 'Never' };
const answer = (status: unknown, apiVersion = exec.apiVersion) => JSON.stringify({ apiVersion, kind: 'ExecCredential', status });

test('an ExecCredential gives a token, a client certificate (PEM text, not base64) and when they expire', () => {
  assert.deepEqual(parseExecCredential(answer({ token: 't' }), exec), { token: 't', cert: undefined, key: undefined, expiresAt: undefined });
  const c = parseExecCredential(answer({ clientCertificateData: 'CERT', clientKeyData: 'KEY', expirationTimestamp: '2030-01-02T03:04:05Z' }), exec);
  assert.deepEqual([c.cert?.toString(), c.key?.toString(), c.expiresAt], ['CERT', 'KEY', Date.UTC(2030, 0, 2, 3, 4, 5)]);
});

test('a bad answer is an error naming the plugin and what is wrong, never the output itself', () => {
  const cases: Array<[string, RegExp]> = [
    ['secret-token-text', /^exec plugin "plugin": its output is not JSON$/],
    [answer({ token: 'secret' }, 'client.authentication.k8s.io/v1beta1'), /answered apiVersion "client.authentication.k8s.io\/v1beta1", the kubeconfig asked for "client.authentication.k8s.io\/v1"/],
    [answer({}), /status holds neither a token nor a client certificate/],
    [answer({ clientCertificateData: 'secret' }), /needs both clientCertificateData and clientKeyData/],
    [answer({ token: 'secret', expirationTimestamp: 'soon' }), /expirationTimestamp "soon" is not a time/],
  ];
  for (const [out, message] of cases) {
    assert.throws(() => parseExecCredential(out, exec), (err: Error) => message.test(err.message) && !err.message.includes('secret'), out);
  }
});

test('KUBERNETES_EXEC_INFO carries the cluster only when the plugin asks for it', () => {
  const cluster = { server: 'https://k:1', caData: 'Q0E=', tlsServerName: 'kubernetes', execExtension: { audience: 'a' } };
  assert.deepEqual(JSON.parse(execInfo(exec, cluster, false)), { apiVersion: exec.apiVersion, kind: 'ExecCredential', spec: { interactive: false } });
  assert.deepEqual(JSON.parse(execInfo({ ...exec, provideClusterInfo: true }, cluster, true)).spec, {
    interactive: true, cluster: { server: 'https://k:1', 'tls-server-name': 'kubernetes', 'certificate-authority-data': 'Q0E=', config: { audience: 'a' } },
  });
});

test('interactive: Always, or IfAvailable with a terminal; never with Never', () => {
  assert.deepEqual([true, false].map((tty) => isInteractive({ ...exec, interactiveMode: 'IfAvailable' }, tty)), [true, false]);
  assert.equal(isInteractive({ ...exec, interactiveMode: 'Never' }, true), false);
  assert.equal(isInteractive({ ...exec, interactiveMode: 'Always' }, false), true);
});
