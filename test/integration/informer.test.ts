// Watches do not stay dead: when the API server goes away and comes back,
// the informers restart with backoff and the operator keeps issuing. While a
// resource is missing they back off instead of hammering the API server, and
// say once what to do.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { startTestEnv, waitEstablished, type TestEnv } from '../support/env.ts';
import { runOperator, spawnOperator, eventually } from '../support/operator.ts';
import { api, isReady } from '../support/objects.ts';
import type { Operator } from '../../src/operator.ts';

let env: TestEnv;
let op: Operator | undefined;

before(async () => { env = await startTestEnv(); });
after(async () => { await op?.stop(); await env?.stop(); });

const CRD = 'agentidentities.agentidentity.dev';
const CRD_FILE = join(resolve(import.meta.dirname, '..', '..'), 'crds', `${CRD}.yaml`);
const NOT_INSTALLED = `CRD ${CRD} is not installed: run \`make install\` or apply crds/ (retrying with backoff)`;
// A flat 500 ms retry makes ~20 attempts in this window; 500 ms doubling
// with ±20% jitter makes 5 (at 0, ~0.5, ~1.5, ~3.5 and ~7.5 s).
const WINDOW_MS = 10_000;
const MAX_ATTEMPTS = 7;
const WARN = 40;

interface LogLine { level: number; time: number; msg: string; resource?: string; delayMs?: number; port?: number }

function logLines(output: string): LogLine[] {
  return output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);
}

async function uninstallCRD(): Promise<void> {
  const r = await env.kubectl(['delete', 'crd', CRD, '--wait=true']);
  assert.equal(r.code, 0, r.stderr);
  // The API server stops serving the resource a moment after the CRD is gone.
  await eventually(async () => (await env.kubectl(['get', 'agentidentities', '-A'])).code !== 0, { what: 'agentidentities no longer served' });
}

async function installCRD(): Promise<void> {
  const r = await env.kubectl(['apply', '--server-side', '--force-conflicts', '-f', CRD_FILE]);
  assert.equal(r.code, 0, r.stderr);
  await waitEstablished((args) => env.kubectl(args), [CRD]);
}

/** The failed attempts of the agentidentities informer in the window that starts with `first`. */
async function attemptsInWindow(output: () => string, first: LogLine): Promise<LogLine[]> {
  // A window, not a wait: the claim is a rate. Counted by the operator's own timestamps, so a slow
  // test runner cannot stretch it; the extra second lets the last attempt's log line arrive.
  await new Promise((r) => setTimeout(r, Math.max(0, first.time + WINDOW_MS + 1000 - Date.now())));
  return logLines(output()).filter((l) => l.resource === 'agentidentities' && l.delayMs !== undefined && l.time >= first.time && l.time < first.time + WINDOW_MS);
}

test('an informer whose CRD is missing backs off, says once what to do, and syncs soon after the CRD is installed', async (t) => {
  await uninstallCRD();
  const operator = spawnOperator(env.kubeconfigPath, ['--log-level=debug']);
  try {
    const restarts = () => logLines(operator.output()).filter((l) => l.resource === 'agentidentities' && l.delayMs !== undefined);
    const notInstalled = () => restarts().filter((l) => l.msg === NOT_INSTALLED);

    // 1. Missing from the start: the first list never succeeds.
    const first = await eventually(async () => notInstalled()[0], { what: 'the not-installed line' });
    assert.equal(first.level, WARN);
    const missing = await attemptsInWindow(operator.output, first);
    t.diagnostic(`missing CRD: ${missing.length} list attempts in ${WINDOW_MS} ms, delays ${missing.map((l) => l.delayMs).join(', ')}`);
    assert.ok(missing.length >= 3 && missing.length <= MAX_ATTEMPTS, `${missing.length} list attempts in ${WINDOW_MS} ms: ${missing.map((l) => l.delayMs).join(', ')}`);
    assert.deepEqual(missing.map((l) => l.level), [WARN, ...missing.slice(1).map(() => 20)], 'one warning, then debug');
    assert.equal(notInstalled().length, restarts().length, 'every retry says the CRD is missing');
    const { port } = logLines(operator.output()).find((l) => l.msg === 'starting')!;
    const metric = async () => Number(/agentidentity_informer_restarts_total\{resource="agentidentities"\} (\d+)/.exec(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text())?.[1]);
    assert.ok(await metric() >= missing.length, 'the restart metric counts every attempt');

    // 2. Installed: the next retry, at most one capped delay (30 s) away, syncs.
    await installCRD();
    const installedAt = Date.now();
    const synced = await eventually(async () => logLines(operator.output()).find((l) => l.msg === 'caches synced; reconciling'), { timeoutMs: 40_000, what: 'caches synced after the CRD was installed' });
    t.diagnostic(`synced ${synced.time - installedAt} ms after the CRD was Established`);
    assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);

    // 3. Removed after the watch saw events: a new outage, announced again, and
    //    backed off again (a watch restarted at a flat 500 ms before).
    const ns = await env.namespace('crd-gone');
    await api(env.kc).createIdentity(ns, 'seen');
    await eventually(async () => (await api(env.kc).getIdentity(ns, 'seen')).status?.conditions?.length, { what: 'the operator saw the identity' });
    const warned = notInstalled().length;
    await uninstallCRD();
    const again = await eventually(async () => notInstalled()[warned], { what: 'the not-installed line after the CRD was removed' });
    assert.equal(again.level, WARN);
    const removed = await attemptsInWindow(operator.output, again);
    t.diagnostic(`removed CRD: ${removed.length} watch attempts in ${WINDOW_MS} ms, delays ${removed.map((l) => l.delayMs).join(', ')}`);
    assert.ok(removed.length >= 3 && removed.length <= MAX_ATTEMPTS, `${removed.length} watch attempts in ${WINDOW_MS} ms: ${removed.map((l) => l.delayMs).join(', ')}`);
    assert.equal(removed.filter((l) => l.level === WARN).length, 1, 'one warning per outage');
  } finally {
    await operator.kill();
    await installCRD();
  }
});

test('the operator survives an API server restart and reconciles what changed meanwhile', { skip: !process.env.USE_EXISTING_CLUSTER ? false : 'needs a control plane this test can restart' }, async () => {
  const a = api(env.kc);
  await a.createTrustDomain('default', { trustDomain: 'cluster.local', ca: { selfSigned: {} } });
  const ns = await env.namespace('informer');
  op = await runOperator(env.kc);
  await a.createIdentity(ns, 'before');
  await eventually(async () => isReady(await a.getIdentity(ns, 'before')), { what: 'first identity Ready' });

  await env.controlPlane!.restartAPIServer();
  await a.createIdentity(ns, 'after');
  await eventually(async () => isReady(await a.getIdentity(ns, 'after')), { timeoutMs: 60_000, what: 'identity created after the restart Ready' });

  const restarts = (await op.metrics.informerRestarts.get()).values.reduce((s, v) => s + v.value, 0);
  assert.ok(restarts >= 1, `informers restarted ${restarts} times`);
  assert.equal(op.ready(), true);
});
