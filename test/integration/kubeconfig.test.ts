// Which server sees which credential: a table of kubeconfig fixtures. For each,
// the real `kubectl config view --minify --raw` on the same KUBECONFIG and
// --context says which context (server and user) kubectl would use; the
// operator's loader and transport then send one request, and fake HTTPS
// servers on 127.0.0.1 (one per cluster, standing for servers that must NOT
// get a credential) record the Authorization and Impersonate-* headers and the
// client certificate they saw. Only kubectl's server may see anything, and
// only that user's credentials. Proxies (CONNECT and SOCKS5) record what they
// forwarded. Unsupported fields are refused by name. Issue 17, item 1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { makeClusterPki, makeClientCert, makeServingCert, type ClusterPki, type Pem } from '../support/certs.ts';
import { resolveBinaries } from '../support/controlplane.ts';
import { startConnectProxy, startFakeServer, startSocksProxy, type FakeServer, type RecordingProxy, type Seen } from '../support/kubeconfig-servers.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import { send } from '../../src/kube/transport.ts';

const CLI = join(resolve(import.meta.dirname, '..', '..'), 'src', 'cli', 'main.ts');

let dir: string;
let kubectl: string;
let pki: ClusterPki;
let servers: Record<'a' | 'b' | 'd', FakeServer>;
let connectProxy: RecordingProxy;
let socksProxy: RecordingProxy;
const certs: Record<string, Pem> = {};

const b64 = (s: string) => Buffer.from(s).toString('base64');

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aio-kubeconfig-'));
  kubectl = resolveBinaries().kubectl;
  pki = await makeClusterPki();
  // a and b answer to 127.0.0.1 and to names only the proxies resolve; d only to a name no URL uses (tls-server-name).
  const ab = await makeServingCert(pki.ca, ['a.test', 'b.test', '127.0.0.1']);
  const d = await makeServingCert(pki.ca, ['api.internal']);
  servers = { a: await startFakeServer(ab, pki.ca.cert), b: await startFakeServer(ab, pki.ca.cert), d: await startFakeServer(d, pki.ca.cert) };
  [connectProxy, socksProxy] = await Promise.all([startConnectProxy(), startSocksProxy()]);
  for (const cn of ['cert-user', 'exec-cert-user', 'data-user']) {
    certs[cn] = await makeClientCert(pki.ca, cn);
    writeFileSync(join(dir, `${cn}.crt`), certs[cn].cert);
    writeFileSync(join(dir, `${cn}.key`), certs[cn].key);
  }
  writeFileSync(join(dir, 'ca.crt'), pki.ca.cert);
  writeFileSync(join(dir, 'token-file'), 'token-from-file\n');
  // An exec plugin: prints an ExecCredential for the apiVersion it was asked for, a token or a client certificate.
  writeFileSync(join(dir, 'plugin.mjs'), `
import { appendFileSync, readFileSync } from 'node:fs';
const { apiVersion } = JSON.parse(process.env.KUBERNETES_EXEC_INFO);
const [mode, value] = process.argv.slice(2);
if (process.env.RUNS) appendFileSync(process.env.RUNS, 'x');
const runs = process.env.RUNS ? readFileSync(process.env.RUNS, 'utf8').length : 0;
const status = mode === 'token' ? { token: value.replace('{run}', String(runs)) }
  : { clientCertificateData: readFileSync(process.env.CERT, 'utf8'), clientKeyData: readFileSync(process.env.KEY, 'utf8') };
if (process.env.EXPIRED) status.expirationTimestamp = '2000-01-01T00:00:00Z';
process.stdout.write(JSON.stringify({ apiVersion, kind: 'ExecCredential', status }));
`);
});

after(async () => {
  await Promise.all([...Object.values(servers ?? {}), connectProxy, socksProxy].map((s) => s?.close()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const ca = () => `certificate-authority-data: ${b64(pki.ca.cert)}`;
const direct = (s: 'a' | 'b') => `https://127.0.0.1:${servers[s].port}`;
const named = (s: 'a' | 'b') => `https://${s}.test:${servers[s].port}`;
const execUser = (mode: 'token' | 'cert', value: string, extra = '', version = 'v1') => `{ exec: { apiVersion: client.authentication.k8s.io/${version}, command: "${process.execPath}", args: ["${join(dir, 'plugin.mjs')}", ${mode}, "${value}"], interactiveMode: Never${
  mode === 'cert' ? `, env: [{ name: CERT, value: "${join(dir, `${value}.crt`)}" }, { name: KEY, value: "${join(dir, `${value}.key`)}" }]` : ''} }${extra} }`;

/** One file: clusters, users and contexts as [name, YAML flow mapping] pairs. */
function file(current: string | undefined, clusters: [string, string][], users: [string, string][], contexts: [string, string, string?][]): string {
  return [
    'apiVersion: v1', 'kind: Config', current ? `current-context: ${current}` : '',
    'clusters:', ...clusters.map(([n, c]) => `- name: ${n}\n  cluster: ${c}`),
    'users:', ...users.map(([n, u]) => `- name: ${n}\n  user: ${u}`),
    'contexts:', ...contexts.map(([n, c, u]) => `- name: ${n}\n  context: { cluster: ${c}${u ? `, user: ${u}` : ''} }`),
  ].join('\n') + '\n';
}

interface Fixture {
  name: string;
  /** File name → text; KUBECONFIG lists them in this order. */
  files: () => Record<string, string>;
  context?: string;
  env?: () => Record<string, string>;
  /** What the proxies forwarded. */
  forwarded?: () => { connect?: string[]; socks?: string[] };
  /** The request fails (and no server sees it): a message the error must match. */
  fails?: RegExp;
}

/** The two files of the original bug: b (current, exec plugin) first, a (token) second. */
const bugFiles = () => ({
  'b.yaml': file('b', [['b', `{ server: "${direct('b')}", ${ca()} }`]], [['b', execUser('token', 'exec-b')]], [['b', 'b', 'b']]),
  'a.yaml': file('a', [['a', `{ server: "${direct('a')}", ${ca()} }`]], [['a', '{ token: token-a }']], [['a', 'a', 'a']]),
});

const FIXTURES: Fixture[] = [
  { name: 'b.yaml:a.yaml, b current with an exec plugin: only b sees only the plugin\'s token (the original bug)', files: bugFiles },
  { name: 'a.yaml:b.yaml: the first file\'s current-context wins', files: () => { const f = bugFiles(); return { 'a.yaml': f['a.yaml'], 'b.yaml': f['b.yaml'] }; } },
  { name: '--context picks b\'s cluster and user from the second file', files: () => { const f = bugFiles(); return { 'a.yaml': f['a.yaml'], 'b.yaml': f['b.yaml'] }; }, context: 'b' },
  {
    name: 'a user named in two files: the first file\'s whole entry, no field of the second',
    files: () => ({
      'one.yaml': file('c', [['k', `{ server: "${direct('a')}", ${ca()} }`]], [['shared', '{ token: first }']], [['c', 'k', 'shared']]),
      'two.yaml': file('other', [['k', `{ server: "${direct('b')}", ${ca()} }`]], [['shared', '{ token: second, as: mallory }']], [['c', 'k', 'shared']]),
    }),
  },
  {
    name: 'a token file (relative to the kubeconfig) with every kind of impersonation',
    files: () => ({ 'k.yaml': file('c', [['k', `{ server: "${direct('a')}", certificate-authority: ca.crt }`]], [['u', '{ tokenFile: token-file, as: alice, as-uid: "42", as-groups: [g1, g2], as-user-extra: { example.com/scope: [s1, s2] } }']], [['c', 'k', 'u']]) }),
  },
  { name: 'client certificate files', files: () => ({ 'k.yaml': file('c', [['k', `{ server: "${direct('b')}", ${ca()} }`]], [['u', '{ client-certificate: cert-user.crt, client-key: cert-user.key }']], [['c', 'k', 'u']]) }) },
  {
    name: 'client certificate data and a token together',
    files: () => ({ 'k.yaml': file('c', [['k', `{ server: "${direct('a')}", ${ca()} }`]], [['u', `{ client-certificate-data: ${b64(certs['data-user']!.cert)}, client-key-data: ${b64(certs['data-user']!.key)}, token: token-with-cert }`]], [['c', 'k', 'u']]) }),
  },
  { name: 'basic auth with impersonation', files: () => ({ 'k.yaml': file('c', [['k', `{ server: "${direct('a')}", ${ca()} }`]], [['u', '{ username: admin, password: "s3cret", as: bob }']], [['c', 'k', 'u']]) }) },
  { name: 'an exec plugin that returns a client certificate, with impersonation', files: () => ({ 'k.yaml': file('c', [['k', `{ server: "${direct('b')}", ${ca()} }`]], [['u', execUser('cert', 'exec-cert-user', ', as: carol, as-groups: [ops]')]], [['c', 'k', 'u']]) }) },
  { name: 'an exec plugin of client.authentication.k8s.io/v1beta1', files: () => ({ 'k.yaml': file('c', [['k', `{ server: "${direct('a')}", ${ca()} }`]], [['u', execUser('token', 'beta-token', '', 'v1beta1')]], [['c', 'k', 'u']]) }) },
  { name: 'tls-server-name: a server whose certificate names only api.internal', files: () => ({ 'k.yaml': file('c', [['k', `{ server: "https://127.0.0.1:${servers.d.port}", tls-server-name: api.internal, ${ca()} }`]], [['u', '{ token: token-d }']], [['c', 'k', 'u']]) }) },
  { name: 'without tls-server-name that server is refused, and sees nothing', files: () => ({ 'k.yaml': file('c', [['k', `{ server: "https://127.0.0.1:${servers.d.port}", ${ca()} }`]], [['u', '{ token: token-d }']], [['c', 'k', 'u']]) }), fails: /altnames|IP: 127.0.0.1 is not in the cert/i },
  { name: 'insecure-skip-tls-verify', files: () => ({ 'k.yaml': file('c', [['k', `{ server: "https://127.0.0.1:${servers.d.port}", insecure-skip-tls-verify: true }`]], [['u', '{ token: token-insecure }']], [['c', 'k', 'u']]) }) },
  {
    name: 'proxy-url http://: tunnelled through the CONNECT proxy (only it can reach a.test)',
    files: () => ({ 'k.yaml': file('c', [['k', `{ server: "${named('a')}", proxy-url: "http://127.0.0.1:${connectProxy.port}", ${ca()} }`]], [['u', '{ token: token-proxied }']], [['c', 'k', 'u']]) }),
    forwarded: () => ({ connect: [`a.test:${servers.a.port}`] }),
  },
  {
    name: 'proxy-url socks5://: through the SOCKS5 proxy',
    files: () => ({ 'k.yaml': file('c', [['k', `{ server: "${named('b')}", proxy-url: "socks5://127.0.0.1:${socksProxy.port}", ${ca()} }`]], [['u', '{ token: token-socks }']], [['c', 'k', 'u']]) }),
    forwarded: () => ({ socks: [`b.test:${servers.b.port}`] }),
  },
  {
    name: 'HTTPS_PROXY without proxy-url: through the proxy it names',
    files: () => ({ 'k.yaml': file('c', [['k', `{ server: "${named('b')}", ${ca()} }`]], [['u', '{ token: token-env-proxy }']], [['c', 'k', 'u']]) }),
    env: () => ({ HTTPS_PROXY: `127.0.0.1:${connectProxy.port}` }),
    forwarded: () => ({ connect: [`b.test:${servers.b.port}`] }),
  },
  {
    name: 'HTTPS_PROXY with the server in NO_PROXY: no proxy sees it (and a.test does not resolve without one)',
    files: () => ({ 'k.yaml': file('c', [['k', `{ server: "${named('a')}", ${ca()} }`]], [['u', '{ token: token-no-proxy }']], [['c', 'k', 'u']]) }),
    env: () => ({ HTTPS_PROXY: `http://127.0.0.1:${connectProxy.port}`, NO_PROXY: 'example.com,.other.test,a.test' }),
    fails: /ENOTFOUND|EAI_AGAIN/,
  },
  {
    name: 'proxy-url wins over HTTPS_PROXY',
    files: () => ({ 'k.yaml': file('c', [['k', `{ server: "${named('a')}", proxy-url: "socks5://127.0.0.1:${socksProxy.port}", ${ca()} }`]], [['u', '{ token: token-both }']], [['c', 'k', 'u']]) }),
    env: () => ({ HTTPS_PROXY: `http://127.0.0.1:${connectProxy.port}` }),
    forwarded: () => ({ socks: [`a.test:${servers.a.port}`] }),
  },
];

function runKubectlView(kubeconfig: string, context?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const args = ['config', 'view', '--minify', '--raw', '-o', 'json', ...(context ? ['--context', context] : [])];
  return new Promise((res) => execFile(kubectl, args, { env: { PATH: process.env.PATH, HOME: dir, KUBECONFIG: kubeconfig } }, (err, stdout, stderr) => res({ code: err ? 1 : 0, stdout, stderr })));
}

interface View {
  clusters: { cluster: { server: string } }[];
  users?: { name: string; user: Record<string, unknown> }[];
}

const pemCN = (pem: string) => /CN=([^\n,]+)/.exec(new X509Certificate(pem).subject)?.[1];
const rel = (p: string) => (p.startsWith('/') ? p : join(dir, p));

/** What kubectl's user would put on the wire, read from kubectl's own view of it. */
function expectedSeen(user: Record<string, unknown> | undefined): Seen {
  const u = user ?? {};
  const seen: Seen = { impersonate: {} };
  const exec = u.exec as { args: string[]; env?: { name: string; value: string }[] } | undefined;
  if (typeof u.token === 'string') seen.authorization = `Bearer ${u.token}`;
  else if (typeof u.tokenFile === 'string') seen.authorization = `Bearer ${readFileSync(rel(u.tokenFile), 'utf8').trim()}`;
  else if (typeof u.username === 'string') seen.authorization = `Basic ${b64(`${u.username}:${String(u.password)}`)}`;
  else if (exec?.args[1] === 'token') seen.authorization = `Bearer ${exec.args[2]}`;
  if (typeof u['client-certificate-data'] === 'string') seen.cn = pemCN(Buffer.from(u['client-certificate-data'], 'base64').toString());
  if (typeof u['client-certificate'] === 'string') seen.cn = pemCN(readFileSync(rel(u['client-certificate']), 'utf8'));
  if (exec?.args[1] === 'cert') seen.cn = pemCN(readFileSync(exec.env!.find((e) => e.name === 'CERT')!.value, 'utf8'));
  if (typeof u.as === 'string') seen.impersonate['impersonate-user'] = [u.as];
  if (typeof u['as-uid'] === 'string') seen.impersonate['impersonate-uid'] = [u['as-uid']];
  if (Array.isArray(u['as-groups'])) seen.impersonate['impersonate-group'] = u['as-groups'] as string[];
  for (const [k, v] of Object.entries((u['as-user-extra'] ?? {}) as Record<string, string[]>)) seen.impersonate[`impersonate-extra-${k.replace('/', '%2F')}`.toLowerCase()] = v;
  return seen;
}

/** Writes a fixture's files; returns its KUBECONFIG. */
function writeFixture(name: string, files: Record<string, string>): string {
  const paths = Object.entries(files).map(([f, text]) => {
    const path = join(dir, `${name.replace(/\W+/g, '-').slice(0, 40)}-${f}`);
    writeFileSync(path, text);
    return path;
  });
  return paths.join(':');
}

/** Runs `fn` with these variables set in this process, as a user's shell would have them. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const set = (v: Record<string, string | undefined>) => { for (const [k, x] of Object.entries(v)) { if (x === undefined) delete process.env[k]; else process.env[k] = x; } };
  set(vars);
  try { return await fn(); } finally { set(saved); }
}

const reset = () => {
  for (const s of Object.values(servers)) s.seen.length = 0;
  connectProxy.forwarded.length = 0;
  socksProxy.forwarded.length = 0;
};

const PROXY_VARS = { HTTPS_PROXY: undefined, https_proxy: undefined, HTTP_PROXY: undefined, http_proxy: undefined, NO_PROXY: undefined, no_proxy: undefined };

for (const f of FIXTURES) {
  test(f.name, async () => {
    reset();
    const kubeconfig = writeFixture(f.name, f.files());
    const view = await runKubectlView(kubeconfig, f.context);
    assert.equal(view.code, 0, `kubectl config view: ${view.stderr}`);
    const want = JSON.parse(view.stdout) as View;
    const port = Number(new URL(want.clusters[0]!.cluster.server).port);
    const target = (Object.keys(servers) as (keyof typeof servers)[]).find((k) => servers[k].port === port)!;

    const result = await withEnv({ ...PROXY_VARS, ...f.env?.(), KUBECONFIG: kubeconfig }, async () => {
      const kc = loadKubeConfig(undefined, f.context);
      return send(kc, { timeoutMs: 10_000 }, { method: 'GET', path: '/version' }).then(() => undefined, (err: Error) => err);
    });

    if (f.fails) {
      assert.ok(result, 'the request fails');
      assert.match(`${result.message} ${String((result as { cause?: Error }).cause?.message)} ${String((result as { cause?: { code?: string } }).cause?.code)}`, f.fails);
    } else {
      assert.equal(result, undefined, `the request succeeds: ${result?.message} ${String((result as { cause?: Error } | undefined)?.cause)}`);
    }
    for (const k of Object.keys(servers) as (keyof typeof servers)[]) {
      const expected = k === target && !f.fails ? [expectedSeen(want.users?.[0]?.user)] : [];
      assert.deepEqual(servers[k].seen, expected, `what server ${k} saw (kubectl's server is ${target})`);
    }
    const forwarded = f.forwarded?.() ?? {};
    assert.deepEqual(connectProxy.forwarded, forwarded.connect ?? [], 'what the CONNECT proxy forwarded');
    assert.deepEqual(socksProxy.forwarded, forwarded.socks ?? [], 'what the SOCKS5 proxy forwarded');
  });
}

test('the CLI as the issue ran it: `agent-identity status` with KUBECONFIG=b.yaml:a.yaml, and with --context a', async () => {
  reset();
  const kubeconfig = writeFixture('cli', bugFiles());
  const cli = (...args: string[]) => new Promise<{ code: number; stderr: string }>((res) => execFile(process.execPath, [CLI, 'status', ...args],
    { env: { PATH: process.env.PATH, HOME: dir, KUBECONFIG: kubeconfig } }, (err, _out, stderr) => res({ code: err ? 1 : 0, stderr })));
  assert.equal((await cli()).code, 0);
  assert.ok(servers.b.seen.length > 0 && servers.b.seen.every((s) => s.authorization === 'Bearer exec-b'), JSON.stringify(servers.b.seen));
  assert.deepEqual([...servers.a.seen], []);
  reset();
  assert.equal((await cli('--context', 'a')).code, 0);
  assert.ok(servers.a.seen.length > 0 && servers.a.seen.every((s) => s.authorization === 'Bearer token-a'), JSON.stringify(servers.a.seen));
  assert.deepEqual(servers.b.seen, []);
  const unknown = await cli('--context', 'nope');
  assert.equal(unknown.code, 1);
  assert.equal(unknown.stderr, 'agent-identity: kubeconfig context "nope" does not exist\n');
});

test('unsupported fields are refused at load, one line naming the field and context, before any server is contacted', async () => {
  reset();
  const cases: Array<[string, string, string]> = [
    ['oidc', '{ auth-provider: { name: oidc, config: { idp-issuer-url: "https://issuer" } } }', 'kubeconfig user "u" (context "c"): auth-provider is not supported; use an exec plugin such as kubelogin'],
    ['unknown', '{ token: t, tokenfile: x }', 'kubeconfig user "u" (context "c"): field "tokenfile" is not supported'],
    ['exec-and-token', `{ token: t, exec: { apiVersion: client.authentication.k8s.io/v1, command: x, interactiveMode: Never } }`, 'kubeconfig user "u" (context "c"): exec and token cannot both be set (kubectl would ignore exec)'],
  ];
  for (const [name, user, message] of cases) {
    const kubeconfig = writeFixture(`refuse-${name}`, { 'k.yaml': file('c', [['k', `{ server: "${direct('a')}", ${ca()} }`]], [['u', user]], [['c', 'k', 'u']]) });
    assert.equal((await runKubectlView(kubeconfig)).code, 0, 'kubectl reads the file: the refusal is ours, by name');
    await assert.rejects(withEnv({ KUBECONFIG: kubeconfig }, async () => loadKubeConfig()), { name: 'KubeConfigError', message });
  }
  assert.deepEqual(servers.a.seen, []);
});

test('an exec credential is cached (one run for two requests), re-run after a 401, and re-run when it has expired', async () => {
  reset();
  const runs = join(dir, 'runs');
  writeFileSync(runs, '');
  const user = (expired: boolean) => `{ exec: { apiVersion: client.authentication.k8s.io/v1, command: "${process.execPath}", args: ["${join(dir, 'plugin.mjs')}", token, "run-{run}"], interactiveMode: Never, env: [{ name: RUNS, value: "${runs}" }${expired ? ', { name: EXPIRED, value: "1" }' : ''}] } }`;
  const load = (expired: boolean) => withEnv({ KUBECONFIG: writeFixture(`cache-${expired}`, { 'k.yaml': file('c', [['k', `{ server: "${direct('a')}", ${ca()} }`]], [['u', user(expired)]], [['c', 'k', 'u']]) }) }, async () => loadKubeConfig());
  const get = (kc: Awaited<ReturnType<typeof load>>) => send(kc, {}, { method: 'GET', path: '/version' }).then(() => 200, (e: { code?: number }) => e.code);
  const seen = () => servers.a.seen.map((s) => s.authorization);

  const kc = await load(false);
  servers.a.refuse.add('run-2');
  assert.deepEqual([await get(kc), await get(kc)], [200, 200]);
  assert.deepEqual(seen(), ['Bearer run-1', 'Bearer run-1'], 'one run served both');
  writeFileSync(runs, 'x'); // the next run prints run-2, which the server refuses
  servers.a.refuse.add('run-1');
  assert.deepEqual([await get(kc), await get(kc), await get(kc)], [401, 401, 200]);
  assert.deepEqual(seen().slice(2), ['Bearer run-1', 'Bearer run-2', 'Bearer run-3'], 'each 401 made the next request run the plugin again');

  reset();
  writeFileSync(runs, '');
  const expiring = await load(true);
  await get(expiring);
  await get(expiring);
  assert.deepEqual(seen(), ['Bearer run-1', 'Bearer run-2'], 'an expired credential is not reused');
});
