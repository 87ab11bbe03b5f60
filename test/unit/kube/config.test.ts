import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inClusterConfig, kubeConfigFiles, parseKubeConfig } from '../../../src/kube/config.ts';

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
    proxy-url: http://proxy.example:3128
    disable-compression: true
    extensions:
    - name: client.authentication.k8s.io/exec
      extension: { audience: remote }
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
    exec: { apiVersion: client.authentication.k8s.io/v1, command: ./bin/plugin, args: [get-token], env: [{ name: A, value: b }], interactiveMode: Never, provideClusterInfo: true }
contexts:
- name: local
  context: { cluster: local, user: admin }
- name: remote
  context: { cluster: remote, user: files }
- name: cloud
  context: { cluster: remote, user: cloud }
- name: anonymous
  context: { cluster: local }
`;

const parse = (text: string, context?: string, dir = '/kube') => parseKubeConfig([{ text, dir }], context);

test('the current context names the cluster and user; *-data fields stay base64', () => {
  const kc = parse(kubeconfig('local'));
  assert.deepEqual(kc.cluster, { server: 'https://127.0.0.1:6443', caData: 'Q0E=', caFile: undefined, skipTLSVerify: false, tlsServerName: 'kubernetes', proxyUrl: undefined });
  assert.deepEqual(kc.user, { certData: 'Q0VSVA==', keyData: 'S0VZ' });
  assert.equal(kc.context, 'local');
});

test('--context picks another context; one that does not exist is an error naming it', () => {
  assert.equal(parse(kubeconfig('local'), 'remote').cluster?.server, 'https://remote.example:443');
  assert.throws(() => parse(kubeconfig('local'), 'nope'), { name: 'KubeConfigError', message: 'kubeconfig context "nope" does not exist' });
  assert.throws(() => parse(kubeconfig('missing')), { message: 'kubeconfig context "missing" does not exist' });
  assert.throws(() => parse(''), { message: 'kubeconfig has no current-context; set one or pass --context' });
});

test('relative file paths are relative to the kubeconfig; proxy-url and the exec extension are kept', () => {
  const { cluster, user } = parse(kubeconfig('remote'), undefined, '/home/me/.kube');
  assert.equal(cluster?.caFile, '/home/me/.kube/certs/ca.crt');
  assert.equal(cluster?.proxyUrl, 'http://proxy.example:3128');
  assert.deepEqual(cluster?.execExtension, { audience: 'remote' });
  assert.deepEqual([user?.certFile, user?.keyFile, user?.tokenFile], ['/home/me/.kube/admin.crt', '/abs/admin.key', '/home/me/.kube/token']);
});

test('an exec user: a command with a path is relative to the kubeconfig, args, env and modes are kept', () => {
  const { user } = parse(kubeconfig('cloud'), undefined, '/home/me/.kube');
  assert.deepEqual(user?.exec, {
    apiVersion: 'client.authentication.k8s.io/v1', command: '/home/me/.kube/bin/plugin', args: ['get-token'], env: [{ name: 'A', value: 'b' }],
    interactiveMode: 'Never', provideClusterInfo: true, installHint: undefined,
  });
});

test('a context without a user is anonymous; one naming a missing user or cluster is an error', () => {
  assert.equal(parse(kubeconfig('anonymous')).user, null);
  const broken = `current-context: c
clusters: [{ name: k, cluster: { server: "https://k:1" } }]
contexts: [{ name: c, context: { cluster: k, user: ghost } }, { name: d, context: { cluster: nowhere } }]
`;
  assert.throws(() => parse(broken), { message: 'kubeconfig context "c": user "ghost" does not exist' });
  assert.throws(() => parse(broken, 'd'), { message: 'kubeconfig context "d": cluster "nowhere" does not exist' });
});

test('several files merge as kubectl merges $KUBECONFIG: the first current-context and the first entry of a name win, whole', () => {
  const override = `current-context: other
clusters:
- name: local
  cluster: { server: https://shadowed:1 }
- name: extra
  cluster: { server: https://extra:1 }
users:
- name: admin
  user: { token: shadowed }
- name: u
  user: { token: abc }
contexts:
- name: other
  context: { cluster: extra, user: u }
`;
  const first = parseKubeConfig([{ text: kubeconfig('local'), dir: '/' }, { text: override, dir: '/' }]);
  assert.equal(first.cluster?.server, 'https://127.0.0.1:6443');
  assert.deepEqual(first.user, { certData: 'Q0VSVA==', keyData: 'S0VZ' }, 'no token from the later file mixed in');
  const second = parseKubeConfig([{ text: override, dir: '/' }, { text: kubeconfig('local'), dir: '/' }]);
  assert.deepEqual([second.context, second.cluster?.server, second.user?.token], ['other', 'https://extra:1', 'abc']);
  assert.equal(parseKubeConfig([{ text: override, dir: '/' }, { text: kubeconfig('local'), dir: '/' }], 'local').user?.token, 'shadowed');
});

test('a name twice in one file is an error, as in kubectl', () => {
  const text = `current-context: c
clusters: [{ name: k, cluster: { server: "https://a:1" } }, { name: k, cluster: { server: "https://b:1" } }]
contexts: [{ name: c, context: { cluster: k } }]
`;
  assert.throws(() => parseKubeConfig([{ text, dir: '/', path: '/x.yaml' }]), { message: 'kubeconfig /x.yaml: cluster "k" is defined twice' });
});

const single = (user: string, cluster = '{ server: "https://k:1" }') => `current-context: c
clusters: [{ name: k, cluster: ${cluster} }]
users: [{ name: u, user: ${user} }]
contexts: [{ name: c, context: { cluster: k, user: u } }]
`;

test('basic auth and every impersonation field are read', () => {
  const { user } = parse(single('{ username: admin, password: pw, as: alice, as-uid: "42", as-groups: [a, b], as-user-extra: { scopes: [x, y] } }'));
  assert.deepEqual(user, {
    username: 'admin', password: 'pw', impersonateUser: 'alice', impersonateUid: '42', impersonateGroups: ['a', 'b'], impersonateExtra: { scopes: ['x', 'y'] },
  });
});

test('fields we do not act on, or combinations kubectl would not honour as written, are refused with one line naming the field and context', () => {
  const cases: Array<[string, string | undefined, string]> = [
    ['{ auth-provider: { name: oidc, config: {} } }', undefined, 'kubeconfig user "u" (context "c"): auth-provider is not supported; use an exec plugin such as kubelogin'],
    ['{ token: t, client-certificate-datta: x }', undefined, 'kubeconfig user "u" (context "c"): field "client-certificate-datta" is not supported'],
    ['{ token: t }', '{ server: "https://k:1", certificate-authority-data: Q0E=, insecure-skip-tls-verify: true }', 'kubeconfig cluster "k" (context "c"): insecure-skip-tls-verify cannot be combined with certificate-authority(-data)'],
    ['{ token: t }', '{ server: "https://k:1", proxy-url: "ftp://p:1" }', 'kubeconfig cluster "k" (context "c"): proxy-url "ftp://p:1" must be an http://, https:// or socks5:// URL'],
    ['{ token: t }', '{ server: "https://k:1", compression: off }', 'kubeconfig cluster "k" (context "c"): field "compression" is not supported'],
    ['{ token: t }', '{ server: "https://k:1", insecure-skip-tls-verify: "yes" }', 'kubeconfig cluster "k" (context "c"): insecure-skip-tls-verify must be true or false'],
    ['{ token: t }', '{ certificate-authority-data: Q0E= }', 'kubeconfig cluster "k" (context "c"): server is not set'],
    ['{ token: t, username: a, password: b }', undefined, 'kubeconfig user "u" (context "c"): username/password and token cannot both be set'],
    ['{ client-certificate-data: Q0E= }', undefined, 'kubeconfig user "u" (context "c"): client-certificate is set without client-key'],
    ['{ client-certificate-data: Q0E=, client-certificate: c.crt, client-key-data: Q0E= }', undefined, 'kubeconfig user "u" (context "c"): client-certificate and client-certificate-data cannot both be set'],
    ['{ token: t }', '{ server: "https://k:1", certificate-authority-data: Q0E=, certificate-authority: ca.crt }', 'kubeconfig cluster "k" (context "c"): certificate-authority and certificate-authority-data cannot both be set'],
    ['{ as-groups: [a] }', undefined, 'kubeconfig user "u" (context "c"): as-groups is set without as'],
    ['{ token: t, exec: { apiVersion: client.authentication.k8s.io/v1, command: p, interactiveMode: Never } }', undefined, 'kubeconfig user "u" (context "c"): exec and token cannot both be set (kubectl would ignore exec)'],
    ['{ exec: { apiVersion: client.authentication.k8s.io/v1alpha1, command: p } }', undefined, 'kubeconfig user "u" (context "c") exec: apiVersion "client.authentication.k8s.io/v1alpha1" is not supported; use client.authentication.k8s.io/v1 or v1beta1'],
    ['{ exec: { apiVersion: client.authentication.k8s.io/v1, command: p } }', undefined, 'kubeconfig user "u" (context "c") exec: interactiveMode must be set for client.authentication.k8s.io/v1 (Never, IfAvailable or Always)'],
    ['{ exec: { apiVersion: client.authentication.k8s.io/v1beta1, command: p, timeout: 5 } }', undefined, 'kubeconfig user "u" (context "c") exec: field "timeout" is not supported'],
  ];
  for (const [user, cluster, message] of cases) assert.throws(() => parse(single(user, cluster)), { name: 'KubeConfigError', message }, message);
});

test('a v1beta1 exec plugin defaults to interactiveMode IfAvailable; disable-compression and extensions are accepted', () => {
  const { user, cluster } = parse(single('{ exec: { apiVersion: client.authentication.k8s.io/v1beta1, command: p } }', '{ server: "https://k:1", disable-compression: true, extensions: [{ name: x, extension: {} }] }'));
  assert.equal(user?.exec?.interactiveMode, 'IfAvailable');
  assert.equal(user?.exec?.command, 'p', 'a bare command is looked up in PATH, not next to the kubeconfig');
  assert.equal(cluster?.server, 'https://k:1');
});

test('only the chosen context is checked: an unsupported user elsewhere in the file does not stop us', () => {
  const text = `current-context: good
clusters: [{ name: k, cluster: { server: "https://k:1" } }]
users: [{ name: oidc, user: { auth-provider: { name: oidc } } }, { name: ok, user: { token: t } }]
contexts: [{ name: good, context: { cluster: k, user: ok } }, { name: bad, context: { cluster: k, user: oidc } }]
`;
  assert.equal(parse(text).user?.token, 't');
  assert.throws(() => parse(text, 'bad'), /auth-provider is not supported/);
});

test('$KUBECONFIG lists files in order, each once, skipping missing ones; --kubeconfig names exactly one', () => {
  const dir = mkdtempSync(join(tmpdir(), 'aio-kc-'));
  const [a, b] = [join(dir, 'a'), join(dir, 'b')];
  writeFileSync(a, '');
  writeFileSync(b, '');
  assert.deepEqual(kubeConfigFiles(undefined, { KUBECONFIG: `${b}:${join(dir, 'missing')}:${a}:${b}` }, dir), [b, a]);
  assert.deepEqual(kubeConfigFiles('/x/y', { KUBECONFIG: a }, dir), ['/x/y']);
  assert.deepEqual(kubeConfigFiles(undefined, {}, dir), [], 'no ~/.kube/config under this home');
});

test("in a pod: the service's address (IPv6 in brackets), the mounted CA and the token file re-read as it rotates", () => {
  const kc = inClusterConfig({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, '/sa');
  assert.deepEqual(kc.getCurrentCluster(), { server: 'https://[fd00::1]:443', caFile: '/sa/ca.crt' });
  assert.deepEqual(kc.getCurrentUser(), { tokenFile: '/sa/token' });
  assert.equal(inClusterConfig({ KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '8080' }, '/sa').getCurrentCluster()?.server, 'http://10.0.0.1:8080');
});
