// Every way an API call of the CLI can fail ends in one line on stderr that
// names the server and the cause in words, and exit status 1; a usage or
// kubeconfig error exits 2; there is no stack trace unless --debug is given.
// The servers here are fakes on 127.0.0.1 that stand for an API server
// answering each failure (a real kube-apiserver answers 500 or 429 only
// when it is broken or overloaded). Their Status bodies are what
// kube-apiserver writes; cli.test.ts checks the CLI against a real one's
// 401, 403 and 404.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeClientCert, makeClusterPki, type ClusterPki, type Pem } from '../support/certs.ts';
import { runCli } from '../support/cli.ts';

const TOKEN = 'tok-3f9a1c-must-never-be-printed';
const STACK_FRAME = /^ {4}at /m;

let dir: string;
let pki: ClusterPki;
let client: Pem;
const servers: Server[] = [];
const tcpServers: TcpServer[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cli-errors-'));
  pki = await makeClusterPki();
  client = await makeClientCert(pki.ca, 'alice');
});
after(() => {
  for (const s of servers) { s.closeAllConnections(); s.close(); }
  for (const s of tcpServers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

const b64 = (s: string) => Buffer.from(s).toString('base64');

/** A kubeconfig whose CA is the test cluster's and whose user carries a token and a client certificate (none of which may be printed). */
function kubeconfig(name: string, server: string): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, [
    'apiVersion: v1', 'kind: Config', 'current-context: c',
    `clusters: [{ name: c, cluster: { server: "${server}", certificate-authority-data: ${b64(pki.ca.cert)} } }]`,
    `users: [{ name: u, user: { token: ${TOKEN}, client-certificate-data: ${b64(client.cert)}, client-key-data: ${b64(client.key)} } }]`,
    'contexts: [{ name: c, context: { cluster: c, user: u } }]',
  ].join('\n'));
  return path;
}

async function listen(s: Server): Promise<string> {
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `https://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

/** An HTTPS server with the given serving certificate; `answer` undefined: it reads the request and never answers. */
function serve(serving: Pem, answer?: (res: ServerResponse) => void): Promise<string> {
  return listen(createServer({ cert: serving.cert, key: serving.key }, (_req, res) => answer?.(res)));
}

/** kube-apiserver's metav1.Status for a failure. */
function status(code: number, reason: string, message: string): (res: ServerResponse) => void {
  return (res) => {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }));
  };
}

/** A port nothing listens on: one the kernel just handed out, closed again. */
async function closedPort(): Promise<string> {
  const s = createTcpServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return `https://127.0.0.1:${port}`;
}

interface Row {
  name: string;
  /** The server URL the kubeconfig names. */
  server: () => Promise<string>;
  args: string[];
  /** The whole line after "agent-identity: <server>: ". */
  cause: RegExp;
}

const ROWS: Row[] = [
  {
    name: '401: the credentials were refused',
    server: () => serve(pki.serving, status(401, 'Unauthorized', 'Unauthorized')),
    args: ['status'],
    cause: /^401 Unauthorized: the kubeconfig's credentials were refused$/,
  },
  {
    name: '403: the Status message says who may not do what',
    server: () => serve(pki.serving, status(403, 'Forbidden', 'agentidentities.agentidentity.dev is forbidden: User "alice" cannot list resource "agentidentities" in API group "agentidentity.dev" at the cluster scope')),
    args: ['status', '-A'],
    cause: /^403 Forbidden: agentidentities\.agentidentity\.dev is forbidden: User "alice" cannot list resource "agentidentities" in API group "agentidentity\.dev" at the cluster scope$/,
  },
  {
    name: '404: a TrustDomain that does not exist',
    server: () => serve(pki.serving, status(404, 'NotFound', 'trustdomains.agentidentity.dev "nosuch" not found')),
    args: ['ca', 'status', 'nosuch'],
    cause: /^404 Not Found: trustdomains\.agentidentity\.dev "nosuch" not found$/,
  },
  {
    name: '404 without a Status body: an API the server does not serve',
    server: () => serve(pki.serving, (res) => { res.writeHead(404, { 'content-type': 'text/plain' }); res.end('404 page not found'); }),
    args: ['status'],
    cause: /^404 Not Found: the API server does not serve this \(are the agent-identity CRDs installed\?\)$/,
  },
  {
    name: '409: a write that lost a race',
    server: () => serve(pki.serving, status(409, 'Conflict', 'Operation cannot be fulfilled on trustdomains.agentidentity.dev "default": the object has been modified; please apply your changes to the latest version and try again')),
    args: ['ca', 'rotate', 'default'],
    cause: /^409 Conflict: Operation cannot be fulfilled on trustdomains\.agentidentity\.dev "default": the object has been modified; please apply your changes to the latest version and try again$/,
  },
  {
    name: '429: too many requests',
    server: () => serve(pki.serving, status(429, 'TooManyRequests', 'Too many requests, please try again later.')),
    args: ['status'],
    cause: /^429 Too Many Requests: Too many requests, please try again later\.$/,
  },
  {
    name: '500 with a message of several lines: still one line',
    server: () => serve(pki.serving, status(500, 'InternalError', 'Internal error occurred:\n  etcdserver: request timed out')),
    args: ['status'],
    cause: /^500 Internal Server Error: Internal error occurred: etcdserver: request timed out$/,
  },
  {
    name: '502 from a proxy in front of the API server (an HTML page, no Status)',
    server: () => serve(pki.serving, (res) => { res.writeHead(502, { 'content-type': 'text/html' }); res.end('<html>\n<body>Bad Gateway</body>\n</html>\n'); }),
    args: ['status'],
    cause: /^502 Bad Gateway: the API server failed to answer; try again$/,
  },
  {
    name: '503: the API server is unavailable',
    server: () => serve(pki.serving, status(503, 'ServiceUnavailable', 'the server is currently unable to handle the request')),
    args: ['status'],
    cause: /^503 Service Unavailable: the server is currently unable to handle the request$/,
  },
  {
    name: "200 with a body that is not JSON (a proxy's login page): none of the body is printed",
    server: () => serve(pki.serving, (res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end('<html>session=0xC0FFEE</html>'); }),
    args: ['status'],
    cause: /^the answer was not JSON \(is the server a Kubernetes API server, not a proxy's page\?\)$/,
  },
  {
    name: 'connection refused',
    server: closedPort,
    args: ['status'],
    cause: /^connection refused: nothing listens there \(is the API server running, and is the server in the kubeconfig right\?\)$/,
  },
  {
    name: 'TLS: a serving certificate the kubeconfig CA did not sign',
    server: async () => serve((await makeClusterPki()).serving, status(200, 'Success', 'never reached')),
    args: ['status'],
    cause: /^TLS failure: the server's certificate is not signed by a CA the kubeconfig trusts \(.+\)$/,
  },
  {
    name: 'timeout: a server that never answers',
    server: () => serve(pki.serving),
    args: ['status', '--request-timeout=1s'],
    cause: /^no answer within 1s \(--request-timeout\)$/,
  },
  {
    name: 'timeout: a frozen server that accepts the connection and never finishes the TLS handshake',
    server: async () => {
      const s = createTcpServer((socket) => socket.on('error', () => undefined));
      tcpServers.push(s);
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      return `https://127.0.0.1:${(s.address() as AddressInfo).port}`;
    },
    // A bare number is seconds, as with kubectl.
    args: ['status', '--request-timeout=1'],
    cause: /^no answer within 1s \(--request-timeout\)$/,
  },
];

/** Nothing of the kubeconfig's credentials: neither the token nor any key or certificate material. */
function assertNoSecrets(stderr: string): void {
  assert.doesNotMatch(stderr, new RegExp(TOKEN));
  assert.doesNotMatch(stderr, /PRIVATE KEY|BEGIN CERTIFICATE/);
  for (const pem of [client.key, client.cert]) assert.equal(stderr.includes(b64(pem).slice(0, 40)), false);
}

for (const row of ROWS) {
  test(`API failure, ${row.name}: one line naming the server and the cause, exit 1, a stack only with --debug`, async () => {
    const server = await row.server();
    const path = kubeconfig(row.name.replace(/\W+/g, '-'), server);
    const [plain, debug] = await Promise.all([runCli(path, ...row.args), runCli(path, ...row.args, '--debug')]);

    assert.equal(plain.code, 1, plain.stderr);
    assert.equal(plain.stdout, '');
    const lines = plain.stderr.split('\n');
    assert.equal(lines.length, 2, `one line and its newline, got:\n${plain.stderr}`);
    assert.equal(lines[1], '');
    const prefix = `agent-identity: ${server}: `;
    assert.ok(lines[0]!.startsWith(prefix), `"${lines[0]}" starts with "${prefix}"`);
    assert.match(lines[0]!.slice(prefix.length), row.cause);
    assert.doesNotMatch(plain.stderr, STACK_FRAME);
    assertNoSecrets(plain.stderr);

    assert.equal(debug.code, 1, debug.stderr);
    assert.equal(debug.stderr.split('\n')[0], lines[0]);
    assert.match(debug.stderr, STACK_FRAME);
    assertNoSecrets(debug.stderr);
  });
}

test('check against a server that refuses the credentials: the first row names the server and the cause, the rest are not run', async () => {
  const server = await serve(pki.serving, status(401, 'Unauthorized', 'Unauthorized'));
  const r = await runCli(kubeconfig('check-401', server), 'check', '-o', 'json');
  assert.equal(r.code, 1, r.stderr);
  const { checks } = JSON.parse(r.stdout) as { checks: Array<{ check: string; ok: boolean; detail: string }> };
  assert.deepEqual(checks.map((c) => [c.check, c.ok, c.detail]), [
    ['API server reachable', false, `${server}: 401 Unauthorized: the kubeconfig's credentials were refused`],
    ...['CRDs installed', 'leader election', 'webhook', 'TrustDomains Ready'].map((c) => [c, false, 'not checked: the API server check failed']),
  ]);
});

test('a kubeconfig file that does not exist: one line naming it, exit 2', async () => {
  const missing = join(dir, 'no-such-kubeconfig.yaml');
  const r = await runCli(missing, 'status');
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr, `agent-identity: kubeconfig ${missing}: no such file\n`);
});

test('a kubeconfig that is not YAML: its line number, never its text (it may hold a token), exit 2', async () => {
  const path = join(dir, 'broken.yaml');
  writeFileSync(path, `users:\n- name: u\n  user: { token: ${TOKEN}\ncontexts: [\n`);
  const r = await runCli(path, 'status');
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^agent-identity: kubeconfig \S+broken\.yaml: invalid YAML: .+ \(line \d+\)\n$/);
  assertNoSecrets(r.stderr);
});

test('usage errors exit 2 with one line and no stack: an unknown flag, a bad --request-timeout, renew without a target', async () => {
  const path = kubeconfig('usage', await closedPort());
  const cases: Array<[string[], RegExp]> = [
    [['status', '--bogus'], /^agent-identity: Unknown option '--bogus'\..* \(agent-identity --help for usage\)\n$/],
    [['status', '--request-timeout=soon'], /^agent-identity: --request-timeout must be a duration such as 30s or 2m, or 0 for none, got "soon"\n$/],
    [['renew'], /^agent-identity: renew needs NAME -n NAMESPACE, --all, or -l SELECTOR\n$/],
  ];
  for (const [args, stderr] of cases) {
    const r = await runCli(path, ...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, stderr);
    const debug = await runCli(path, ...args, '--debug');
    assert.equal(debug.code, 2);
    assert.match(debug.stderr, STACK_FRAME, `${args.join(' ')} --debug prints the stack`);
  }
});
