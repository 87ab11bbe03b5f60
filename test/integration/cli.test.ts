// The CLI against a real control plane: `inspect secret` decodes a chain and
// says whether the bundle trusts it; `check` verifies the whole installation
// and exits non-zero when something is missing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { startTestEnv, type TestEnv } from '../support/env.ts';
import { spawnOperator, eventually, ensureNamespace, OPERATOR_NAMESPACE } from '../support/operator.ts';
import { api, isReady } from '../support/objects.ts';
import { runCli } from '../support/cli.ts';
import { DEFAULT_TRUST_DOMAIN } from '../support/suite.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
let env: TestEnv;
let a: ReturnType<typeof api>;
let operator: ReturnType<typeof spawnOperator> | undefined;

before(async () => { env = await startTestEnv(); a = api(env.kc); await ensureNamespace(env.kc, OPERATOR_NAMESPACE); });
after(async () => { await operator?.kill(); await env?.stop(); });

test('check fails clearly before the operator runs, and passes once it does', async () => {
  const cli = (...args: string[]) => runCli(env.kubeconfigPath, ...args);
  const before = await cli('check');
  assert.equal(before.code, 1);
  assert.match(before.stdout, /API server reachable\s+yes/);
  assert.match(before.stdout, /CRDs installed\s+yes/);
  assert.match(before.stdout, /operator running\s+NO/);

  const applied = await env.kubectl(['apply', '-f', join(ROOT, 'config', 'webhook', 'webhooks.yaml')]);
  assert.equal(applied.code, 0, applied.stderr);
  await a.createTrustDomain('default', DEFAULT_TRUST_DOMAIN);
  operator = spawnOperator(env.kubeconfigPath, ['--leader-elect', '--webhook-port=0', '--leader-election-retry-period=500ms']);
  const after = await eventually(async () => { const r = await cli('check', '-o', 'json'); return r.code === 0 && r; }, { timeoutMs: 30_000, what: 'check to pass' });
  const report = JSON.parse(after.stdout) as { ok: boolean; checks: Array<{ check: string; ok: boolean; detail: string }> };
  assert.equal(report.ok, true);
  assert.deepEqual(report.checks.map((c) => c.check), ['API server reachable', 'CRDs installed', 'operator running', 'webhook caBundle current', 'TrustDomains Ready']);
  assert.match(report.checks[3]!.detail, /2 webhooks trust the serving certificate/);
});

test('inspect secret shows the chain and whether the bundle trusts it, and never the key', async () => {
  const ns = await env.namespace('inspect');
  await a.createIdentity(ns, 'planner', { dnsNames: ['planner.inspect.svc'] });
  await eventually(async () => isReady(await a.getIdentity(ns, 'planner')), { timeoutMs: 30_000, what: 'Ready' });
  const r = await runCli(env.kubeconfigPath, 'inspect', 'secret', 'planner-identity', '-n', ns);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`\\[0\\] leaf  spiffe://cluster.local/ns/${ns}/agent/planner`));
  assert.match(r.stdout, /\[1\] intermediate/);
  assert.match(r.stdout, /DNS\s+planner\.inspect\.svc/);
  assert.match(r.stdout, /trusted: yes/);
  assert.doesNotMatch(r.stdout, /PRIVATE KEY/);
  const json = JSON.parse((await runCli(env.kubeconfigPath, 'inspect', 'secret', 'planner-identity', '-n', ns, '-o', 'json')).stdout);
  assert.equal(json.trusted, true);
  assert.equal(json.chain.length, 2);
  assert.match(json.chain[0].fingerprint, /^sha256:[0-9a-f]{64}$/);
});
