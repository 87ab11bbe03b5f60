// The operator as users run it: `node src/main.ts` against a kubeconfig.
// /readyz turns 200 once caches sync, /metrics exposes the documented
// metrics, bad flags and a missing cluster are refused clearly, --help lists
// every flag, a taken port is named, and SIGTERM exits cleanly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startTestEnv, type TestEnv } from '../support/env.ts';
import { eventually, ensureNamespace, OPERATOR_NAMESPACE } from '../support/operator.ts';
import { api, isReady } from '../support/objects.ts';
import { OPTIONS, envName, loadConfig } from '../../src/config.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const MAIN = join(ROOT, 'src', 'main.ts');
let env: TestEnv;

before(async () => { env = await startTestEnv(); await ensureNamespace(env.kc, OPERATOR_NAMESPACE); });
after(async () => { await env?.stop(); });

/** `node src/main.ts ARGS` to completion; `environment` replaces the whole environment when given. */
function runMain(args: string[], environment?: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(process.execPath, [MAIN, ...args], { env: environment ?? process.env, timeout: 30_000 }, (err, stdout, stderr) => res({ code: err ? (err as { code?: number }).code ?? 1 : 0, stdout, stderr }));
  });
}

test('a bad flag exits 2 with a message that names it', async () => {
  const r = await runMain(['--qps=lots']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--qps must be an integer >= 1, got "lots"/);
  const unknown = await runMain(['--bogus=1']);
  assert.equal(unknown.code, 2);
  assert.equal(unknown.stderr, 'agent-identity-operator: Unknown option --bogus; run with --help for the list of flags\n');
});

test('--help lists every flag with its variable and default, each one the parser accepts and docs/configuration.md documents', async () => {
  const r = await runMain(['--help']);
  assert.equal(r.code, 0, r.stderr);
  const listed = [...r.stdout.matchAll(/^ {2}--([a-z-]+)/gm)].map((m) => m[1]!);
  assert.deepEqual(listed, [...Object.keys(OPTIONS), 'help']);
  const docs = readFileSync(join(ROOT, 'docs', 'configuration.md'), 'utf8');
  for (const [flag, o] of Object.entries(OPTIONS) as Array<[keyof typeof OPTIONS, { default: string; boolean?: true }]>) {
    const entry = r.stdout.slice(r.stdout.indexOf(`  --${flag}`)).split('\n  --')[0]!;
    assert.match(entry, new RegExp(`env ${envName(flag)}[; ]`), `--${flag} names its variable`);
    assert.ok(entry.includes(`default ${o.default || 'unset'}`), `--${flag} shows its default: ${entry}`);
    assert.doesNotThrow(() => loadConfig(o.boolean ? [`--${flag}`] : [`--${flag}=${o.default}`], {}), `the parser accepts --${flag}`);
    assert.ok(docs.includes(`\`--${flag}\``), `docs/configuration.md documents --${flag}`);
  }
});

test('with no kubeconfig and not in a cluster it says what to set and exits 2', async () => {
  const home = mkdtempSync(join(tmpdir(), 'aio-home-'));
  const r = await runMain([], { PATH: process.env.PATH, HOME: home });
  assert.equal(r.code, 2);
  assert.equal(r.stderr, 'agent-identity-operator: no kubeconfig found: set KUBECONFIG or --kubeconfig, or run in a cluster\n');
});

test('a taken HTTP port is named with its flag and variable, without a stack trace', async () => {
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
  const port = (taken.address() as { port: number }).port;
  try {
    const r = await runMain([`--kubeconfig=${env.kubeconfigPath}`, '--http-host=127.0.0.1', `--http-port=${port}`]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `agent-identity-operator: port ${port} is already in use (--http-port / AGENT_IDENTITY_HTTP_PORT)\n`);
  } finally {
    taken.close();
  }
});

test('a taken bundle endpoint port is named with its flag and variable, without a stack trace', async () => {
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
  const port = (taken.address() as { port: number }).port;
  try {
    const r = await runMain([`--kubeconfig=${env.kubeconfigPath}`, '--http-host=127.0.0.1', '--http-port=0', '--bundle-endpoint-host=127.0.0.1', `--bundle-endpoint-port=${port}`]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `agent-identity-operator: port ${port} is already in use (--bundle-endpoint-port / AGENT_IDENTITY_BUNDLE_ENDPOINT_PORT)\n`);
  } finally {
    taken.close();
  }
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

test('--memory-limit sizes V8\'s heap: the operator re-executes itself once, same PID, with the heap the limit less its reserve', async () => {
  const MiB = 2 ** 20;
  /** The operator's "memory" log line, then it is killed. */
  const memoryLine = async (nodeFlags: string[], flags: string[]) => {
    const proc = spawn(process.execPath, [...nodeFlags, MAIN, `--kubeconfig=${env.kubeconfigPath}`, '--http-port=0', '--http-host=127.0.0.1', '--log-level=info', ...flags], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    try {
      const line = await eventually(async () => {
        const l = out.split('\n').find((x) => x.includes('"msg":"memory"'));
        return l ? JSON.parse(l) as { heapLimitBytes: number; memoryLimit?: { bytes: number; source: string }; why?: string } : undefined;
      }, { what: 'the memory line in the log' });
      // Read while it runs: the command line of the PID that was spawned.
      return { ...line, cmdline: readFileSync(`/proc/${proc.pid}/cmdline`, 'utf8').split('\0') };
    } finally {
      proc.kill('SIGKILL');
    }
  };
  const sized = await memoryLine([], ['--memory-limit=300Mi']);
  assert.ok(sized.cmdline.includes('--max-heap-size=150'), `the spawned PID now runs with the sized heap (execve: signals and PID 1 stay as they were): ${sized.cmdline.join(' ')}`);
  assert.deepEqual(sized.memoryLimit, { bytes: 300 * MiB, source: '--memory-limit' });
  // 300 Mi less half of it in reserve: young and old generation together.
  assert.equal(sized.heapLimitBytes, 150 * MiB);

  const chosen = await memoryLine(['--max-old-space-size=500'], ['--memory-limit=300Mi']);
  assert.equal(chosen.why, 'the heap size was given to Node (--max-old-space-size or --max-heap-size)', 'the user\'s own choice wins');
  assert.ok(chosen.heapLimitBytes >= 500 * MiB, `heap limit ${chosen.heapLimitBytes / MiB} MiB`);
});
