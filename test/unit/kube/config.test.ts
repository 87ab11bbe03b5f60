import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inClusterConfig, parseKubeConfig } from '../../../src/kube/config.ts';

const kubeconfig = (current: string) => `apiVersion: v1
kind: Config
current-context: ${current}
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: Q0E=
    tls-server-name: kubernetes
- name: remote
  cluster:
    server: https://remote.example:443
    certificate-authority: certs/ca.crt
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
- name: files
  user:
    client-certificate: admin.crt
    client-key: /abs/admin.key
    tokenFile: token
- name: cloud
  user:
    exec: { apiVersion: client.authentication.k8s.io/v1, command: gke-gcloud-auth-plugin }
contexts:
- name: local
  context: { cluster: local, user: admin }
- name: remote
  context: { cluster: remote, user: files }
- name: cloud
  context: { cluster: remote, user: cloud }
`;

test('the current context names the cluster and user; *-data fields stay base64, as in client-node', () => {
  const { cluster, user } = parseKubeConfig([{ text: kubeconfig('local'), dir: '/kube' }]);
  assert.deepEqual(cluster, { server: 'https://127.0.0.1:6443', caData: 'Q0E=', caFile: undefined, skipTLSVerify: false, tlsServerName: 'kubernetes' });
  assert.equal(user?.certData, 'Q0VSVA==');
  assert.equal(user?.keyData, 'S0VZ');
  assert.equal(user?.token, undefined);
});

test('relative file paths are relative to the kubeconfig; insecure-skip-tls-verify and tokenFile are kept', () => {
  const { cluster, user } = parseKubeConfig([{ text: kubeconfig('remote'), dir: '/home/me/.kube' }]);
  assert.equal(cluster?.caFile, '/home/me/.kube/certs/ca.crt');
  assert.equal(cluster?.skipTLSVerify, true);
  assert.deepEqual([user?.certFile, user?.keyFile, user?.tokenFile], ['/home/me/.kube/admin.crt', '/abs/admin.key', '/home/me/.kube/token']);
});

test('an exec user is passed on as is, for client-node to run', () => {
  const { user } = parseKubeConfig([{ text: kubeconfig('cloud'), dir: '/' }]);
  assert.deepEqual(user?.exec, { apiVersion: 'client.authentication.k8s.io/v1', command: 'gke-gcloud-auth-plugin' });
});

test('several files merge as kubectl merges $KUBECONFIG: the first current-context and the first entry of a name win', () => {
  const override = `current-context: other
clusters:
- name: local
  cluster: { server: https://shadowed:1 }
- name: extra
  cluster: { server: https://extra:1 }
users:
- name: u
  user: { token: abc }
contexts:
- name: other
  context: { cluster: extra, user: u }
`;
  assert.equal(parseKubeConfig([{ text: kubeconfig('local'), dir: '/' }, { text: override, dir: '/' }]).cluster?.server, 'https://127.0.0.1:6443');
  const second = parseKubeConfig([{ text: override, dir: '/' }, { text: kubeconfig('local'), dir: '/' }]);
  assert.deepEqual([second.cluster?.server, second.user?.token], ['https://extra:1', 'abc']);
});

test('no current context, or one naming nothing: no cluster and no user', () => {
  assert.deepEqual(parseKubeConfig([{ text: kubeconfig('missing'), dir: '/' }]), { cluster: null, user: null });
  assert.deepEqual(parseKubeConfig([{ text: '', dir: '/' }]), { cluster: null, user: null });
});

test("in a pod: the service's address (IPv6 in brackets), the mounted CA and the token file re-read as it rotates", () => {
  const kc = inClusterConfig({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, '/sa');
  assert.deepEqual(kc.getCurrentCluster(), { server: 'https://[fd00::1]:443', caFile: '/sa/ca.crt' });
  assert.deepEqual(kc.getCurrentUser(), { tokenFile: '/sa/token' });
  assert.equal(inClusterConfig({ KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '8080' }, '/sa').getCurrentCluster()?.server, 'http://10.0.0.1:8080');
});

test('basic auth and impersonation are recognised, so client-node can serve them', () => {
  const text = `current-context: c
clusters: [{ name: k, cluster: { server: "https://k:1" } }]
users: [{ name: u, user: { username: admin, password: pw, as: alice } }]
contexts: [{ name: c, context: { cluster: k, user: u } }]
`;
  const { user } = parseKubeConfig([{ text, dir: '/' }]);
  assert.deepEqual([user?.username, user?.impersonateUser], ['admin', 'alice']);
});
