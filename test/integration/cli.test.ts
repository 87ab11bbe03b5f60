// The CLI against a real control plane: `inspect secret` decodes a chain and
// says whether the bundle trusts it; `check` verifies the whole installation,
// reports leader election and the webhook as not in use when the operator runs
// without them (as `make run` does), and exits non-zero when something is
// missing or broken. bin/agent-identity runs it on the pinned Node.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startTestEnv, type TestEnv } from '../support/env.ts';
import { spawnOperator, eventually, ensureNamespace, OPERATOR_NAMESPACE } from '../support/operator.ts';
import { api, isReady } from '../support/objects.ts';
import { runCli } from '../support/cli.ts';
import { DEFAULT_TRUST_DOMAIN } from '../support/suite.ts';
import { webhookConfigurationsFor, WEBHOOKS_YAML } from '../support/webhook.ts';
import { makeClientCert } from '../support/certs.ts';
import { kubeconfigYaml } from '../support/controlplane.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const WRAPPER = join(ROOT, 'bin', 'agent-identity');
const WEBHOOKS = WEBHOOKS_YAML;
let env: TestEnv;
let a: ReturnType<typeof api>;
let operator: ReturnType<typeof spawnOperator> | undefined;

before(async () => { env = await startTestEnv(); a = api(env.kc); await ensureNamespace(env.kc, OPERATOR_NAMESPACE); });
after(async () => { await operator?.kill(); await env?.stop(); });

type Report = { ok: boolean; checks: Array<{ check: string; ok: boolean; state: string; detail: string }> };
const cli = (...args: string[]) => runCli(env.kubeconfigPath, ...args);
const report = async (): Promise<Report & { code: number }> => {
  const r = await cli('check', '-o', 'json');
  return { code: r.code, ...(JSON.parse(r.stdout) as Report) };
};
const state = (r: Report, check: string) => r.checks.find((c) => c.check === check);
const restartOperator = async (flags: string[] = []) => {
  await operator?.kill();
  operator = spawnOperator(env.kubeconfigPath, flags);
};
const kubectl = async (...args: string[]) => {
  const r = await env.kubectl(args);
  assert.equal(r.code, 0, r.stderr);
};

/** bin/agent-identity as a shell runs it: exit code and output. */
function runWrapper(wrapper: string, args: string[], environment: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(wrapper, args, { env: environment }, (err, stdout, stderr) => res({ code: err ? (err as { code?: number }).code ?? 1 : 0, stdout, stderr }));
  });
}

test('check fails before the operator runs, and passes with the operator running without leader election or webhook', async () => {
  // Right after the CRDs are established the API server may still answer "storage is (re)initializing".
  const before = await eventually(async () => { const r = await cli('check'); return /no TrustDomain exists/.test(r.stdout) && r; }, { what: 'check to see the CRDs served' });
  assert.equal(before.code, 1);
  assert.match(before.stdout, /API server reachable\s+yes/);
  assert.match(before.stdout, /CRDs installed\s+yes/);
  assert.match(before.stdout, /leader election\s+-\s+not in use \(no Lease agent-identity-operator in agent-identity-system; fine for a single replica started without --leader-elect\)/);
  assert.match(before.stdout, /webhook\s+-\s+not installed \(no webhook configuration agent-identity-operator\)/);
  assert.match(before.stdout, /TrustDomains Ready\s+NO\s+no TrustDomain exists/);

  await a.createTrustDomain('default', DEFAULT_TRUST_DOMAIN);
  await restartOperator();
  const passing = await eventually(async () => { const r = await report(); return r.code === 0 && r; }, { timeoutMs: 60_000, what: 'check to pass' });
  assert.equal(passing.ok, true);
  assert.deepEqual(passing.checks.map((c) => [c.check, c.state]), [
    ['API server reachable', 'ok'], ['CRDs installed', 'ok'], ['leader election', 'not in use'], ['webhook', 'not in use'], ['TrustDomains Ready', 'ok'],
  ]);
});

test('a Lease no replica renews fails check; without it check passes again', async () => {
  const stale = JSON.stringify({
    apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'agent-identity-operator', namespace: OPERATOR_NAMESPACE },
    spec: { holderIdentity: 'gone-replica', leaseDurationSeconds: 15, renewTime: '2020-01-01T00:00:00.000000Z', acquireTime: '2020-01-01T00:00:00.000000Z' },
  });
  const created = await env.kubectl(['create', '-f', '-'], stale);
  assert.equal(created.code, 0, created.stderr);
  const r = await cli('check');
  assert.equal(r.code, 1);
  assert.match(r.stdout, /leader election\s+NO\s+no replica holds the Lease agent-identity-operator in agent-identity-system \(last renewed \S+ ago\)/);

  await kubectl('delete', 'lease', '-n', OPERATOR_NAMESPACE, 'agent-identity-operator');
  assert.equal((await cli('check')).code, 0);
});

test('an installed webhook configuration fails check until the operator serves it, and again when its caBundle is emptied', async (t) => {
  await kubectl('apply', '-f', WEBHOOKS);
  // Removed however the test ends: a configuration left behind would refuse every later AgentIdentity.
  t.after(() => kubectl('delete', '--ignore-not-found', '-f', WEBHOOKS));
  const shipped = webhookConfigurationsFor(0).flatMap((d) => d.webhooks).length;
  const unserved = await report();
  assert.equal(unserved.code, 1);
  assert.equal(state(unserved, 'webhook')?.state, 'failed');
  assert.match(state(unserved, 'webhook')!.detail, /webhook configuration agent-identity-operator is installed but Secret agent-identity-system\/agent-identity-webhook-tls does not exist: run the operator with --webhook-port/);

  await restartOperator(['--leader-elect', '--webhook-port=0', '--leader-election-retry-period=500ms']);
  const served = await eventually(async () => { const r = await report(); return r.code === 0 && r; }, { timeoutMs: 60_000, what: 'check to pass with the webhook' });
  assert.equal(state(served, 'leader election')?.state, 'ok');
  assert.equal(state(served, 'webhook')!.detail, `${shipped} webhooks trust the serving certificate`);

  // Back to a single replica without webhook: its Secret stays, the shipped configurations (no caBundle) return.
  await restartOperator();
  await kubectl('delete', 'lease', '-n', OPERATOR_NAMESPACE, 'agent-identity-operator');
  await kubectl('replace', '-f', WEBHOOKS);
  const emptied = await report();
  assert.equal(emptied.code, 1);
  assert.equal(state(emptied, 'leader election')?.state, 'not in use');
  assert.match(state(emptied, 'webhook')!.detail, /a webhook's caBundle does not trust the serving certificate: caBundle is empty/);

  await kubectl('delete', '-f', WEBHOOKS);
  assert.equal((await report()).code, 0);
});

test('inspect secret shows the chain and whether the bundle trusts it, and never the key', async () => {
  const ns = await env.namespace('inspect');
  await a.createIdentity(ns, 'planner', { dnsNames: [`planner.${ns}.svc`] });
  await eventually(async () => isReady(await a.getIdentity(ns, 'planner')), { timeoutMs: 30_000, what: 'Ready' });
  const r = await runCli(env.kubeconfigPath, 'inspect', 'secret', 'planner-identity', '-n', ns);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`\\[0\\] leaf  spiffe://cluster.local/ns/${ns}/agent/planner`));
  assert.match(r.stdout, /\[1\] intermediate/);
  assert.match(r.stdout, new RegExp(`DNS\\s+planner\\.${ns}\\.svc`));
  assert.match(r.stdout, /trusted: yes/);
  assert.doesNotMatch(r.stdout, /PRIVATE KEY/);
  const json = JSON.parse((await runCli(env.kubeconfigPath, 'inspect', 'secret', 'planner-identity', '-n', ns, '-o', 'json')).stdout);
  assert.equal(json.trusted, true);
  assert.equal(json.chain.length, 2);
  assert.match(json.chain[0].fingerprint, /^sha256:[0-9a-f]{64}$/);
});

test('bin/agent-identity runs on the pinned Node whatever node is first on PATH', async () => {
  const r = await runWrapper(WRAPPER, ['status', '-A', `--kubeconfig=${env.kubeconfigPath}`], { PATH: '/usr/bin:/bin', HOME: mkdtempSync(join(tmpdir(), 'aio-home-')) });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^NAMESPACE\s+NAME\s+READY/);
  assert.match(r.stdout, /inspect-\S+\s+planner\s+True\s+Issued/);
});

test("a real API server's 401, 403 and 404: one line naming the server and the Status, exit 1", async () => {
  const cp = env.controlPlane;
  if (!cp) throw new Error('this test needs the test control plane: its client CA signs the unprivileged user');
  const dir = mkdtempSync(join(tmpdir(), 'aio-cli-errors-'));
  const write = (name: string, yaml: string) => { const p = join(dir, name); writeFileSync(p, yaml); return p; };
  // A bearer token no authenticator knows, in place of the admin's client certificate.
  const unknownToken = write('token.yaml', kubeconfigYaml(cp.server, cp.pki).replace(/client-certificate-data: .*\n\s*client-key-data: .*/, 'token: not-a-token-this-cluster-knows'));
  const bob = write('bob.yaml', kubeconfigYaml(cp.server, cp.pki, 'bob', await makeClientCert(cp.pki.ca, 'bob')));
  const cases: Array<[string, string[], string]> = [
    [unknownToken, ['status', '-A'], "401 Unauthorized: the kubeconfig's credentials were refused"],
    [bob, ['status', '-A'], '403 Forbidden: agentidentities.agentidentity.dev is forbidden: User "bob" cannot list resource "agentidentities" in API group "agentidentity.dev" at the cluster scope'],
    [env.kubeconfigPath, ['ca', 'status', 'nosuch'], '404 Not Found: trustdomains.agentidentity.dev "nosuch" not found'],
  ];
  for (const [kubeconfig, args, cause] of cases) {
    const r = await runCli(kubeconfig, ...args);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr, `agent-identity: ${cp.server}: ${cause}\n`);
  }
});

test('with no kubeconfig and not in a cluster the CLI says what to set and exits 2', async () => {
  const r = await runWrapper(WRAPPER, ['status', '-A'], { PATH: '/usr/bin:/bin', HOME: mkdtempSync(join(tmpdir(), 'aio-home-')) });
  assert.equal(r.code, 2);
  assert.equal(r.stderr, 'agent-identity: no kubeconfig found: set KUBECONFIG or --kubeconfig, or run in a cluster\n');
});

test('bin/agent-identity in a checkout without node_modules says to run make deps', async () => {
  const checkout = mkdtempSync(join(tmpdir(), 'aio-checkout-'));
  mkdirSync(join(checkout, 'bin'));
  copyFileSync(WRAPPER, join(checkout, 'bin', 'agent-identity'));
  const r = await runWrapper(join(checkout, 'bin', 'agent-identity'), ['status'], { PATH: '/usr/bin:/bin' });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^agent-identity: .*node_modules\/\.bin\/node not found: run make deps first/);
});
