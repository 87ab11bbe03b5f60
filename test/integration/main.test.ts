// The operator as users run it: `node src/main.ts` against a kubeconfig.
// /readyz turns 200 once caches sync, /metrics exposes the documented
// metrics, bad flags are refused clearly, and SIGTERM exits cleanly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { startTestEnv, type TestEnv } from '../support/env.ts';
import { eventually, ensureNamespace, OPERATOR_NAMESPACE } from '../support/operator.ts';
import { api, isReady } from '../support/objects.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const MAIN = join(ROOT, 'src', 'main.ts');
let env: TestEnv;

before(async () => { env = await startTestEnv(); await ensureNamespace(env.kc, OPERATOR_NAMESPACE); });
after(async () => { await env?.stop(); });

test('a bad flag exits 2 with a message that names it', async () => {
  const r = await new Promise<{ code: number | null; stderr: string }>((res) => {
    execFile(process.execPath, [MAIN, '--qps=lots'], (err, _o, stderr) => res({ code: err ? (err as { code?: number }).code ?? 1 : 0, stderr }));
  });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--qps must be an integer >= 1, got "lots"/);
});

test('serves /healthz, /readyz and /metrics, issues, and shuts down on SIGTERM', async () => {
  const a = api(env.kc);
  await a.createTrustDomain('default', { trustDomain: 'cluster.local', ca: { selfSigned: {} } });
  const ns = await env.namespace('main');
  const proc = spawn(process.execPath, [MAIN, `--kubeconfig=${env.kubeconfigPath}`, '--http-port=0', '--http-host=127.0.0.1', '--log-level=info'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => proc.on('exit', (c) => r(c)));
  try {
    const port = await eventually(async () => Number(/"port":(\d+)/.exec(out)?.[1]) || undefined, { what: 'the listening port in the log' });
    const get = async (path: string) => { const r = await fetch(`http://127.0.0.1:${port}${path}`); return { status: r.status, body: await r.text() }; };
    assert.equal((await get('/healthz')).status, 200);
    await eventually(async () => (await get('/readyz')).status === 200, { what: '/readyz 200' });

    await a.createIdentity(ns, 'svc');
    await eventually(async () => isReady(await a.getIdentity(ns, 'svc')), { what: 'identity Ready' });
    const metrics = await eventually(async () => { const m = (await get('/metrics')).body; return m.includes(`agentidentity_certificate_expiration_timestamp_seconds{namespace="${ns}",name="svc"}`) && m; }, { what: 'expiry metric' });
    assert.match(metrics, /agentidentity_issuance_total\{trust_domain="default",reason="SecretDoesNotExist",result="success"\} 1/);
    assert.match(metrics, new RegExp(`agentidentity_certificate_ready_status\\{namespace="${ns}",name="svc",condition="True"\\} 1`));
    assert.match(metrics, /agentidentity_issuance_duration_seconds_count\{trust_domain="default"\} 1/);
    assert.match(metrics, /agentidentity_workqueue_depth\{controller="agentidentity"\} \d+/);
    assert.match(metrics, /agentidentity_ca_generated_total\{trust_domain="default"\} 1/);
    assert.match(metrics, /agentidentity_process_resident_memory_bytes/);
    assert.equal((await get('/nope')).status, 404);

    proc.kill('SIGTERM');
    assert.equal(await exited, 0, 'clean exit on SIGTERM');
    assert.match(out, /shutting down/);
    assert.doesNotMatch(out, /PRIVATE KEY/, 'no key material in the logs');
  } finally {
    proc.kill('SIGKILL');
  }
});
