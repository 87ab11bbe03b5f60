// A frozen API server (SIGSTOP) is the dead connection TCP cannot see: its
// kernel keeps the connection open and answers keep-alive probes, so only an
// HTTP/2 PING that goes unanswered tells. The client must notice within 60 s:
// the informer's watch fails and restarts, and a read that was waiting on the
// dead connection is sent again on a new one and answers once the API server
// thaws, with no error reaching its caller. A connection closed under
// requests in flight (a load balancer, a NAT) costs its callers nothing
// either, and a leader cut off from the API server steps down in time.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { KubeConfig } from '@kubernetes/client-node';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestEnv, type TestEnv } from '../support/env.ts';
import { eventually, ensureNamespace, spawnOperator, OPERATOR_NAMESPACE } from '../support/operator.ts';
import { kubeconfigYaml } from '../support/controlplane.ts';
import { startTcpRelay } from '../support/tcp-relay.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { isAlreadyExists, toKubeError, type KubeError } from '../../src/kube/errors.ts';
import { observeRetries } from '../../src/kube/transport.ts';
import type { RetryReason } from '../../src/kube/retry.ts';

let env: TestEnv;

before(async () => { env = await startTestEnv(); });
after(async () => { await env?.stop(); });

interface Failure { at: number; err: KubeError }

/** The bound: a watch on a dead connection is restarted within this long. */
const DETECT_WITHIN_MS = 60_000;

test('a frozen API server is noticed within 60 s: the watch restarts, a read in flight is retried on a new connection, and the informer sees what was created after the thaw', { skip: process.env.USE_EXISTING_CLUSTER === 'true' ? 'needs a control plane this test can freeze' : false }, async (t) => {
  const cp = env.controlPlane!;
  const kube = new KubeClient(env.kc);
  const retries: RetryReason[] = [];
  observeRetries(env.kc, (reason) => retries.push(reason));
  const seen = new Set<string>();
  const failures: Failure[] = [];
  const informer = kube.namespaceInformer({
    resyncMs: 3_600_000,
    onChange: (ns) => seen.add(ns.metadata.name!),
    onRestart: (err) => failures.push({ at: Date.now(), err: toKubeError(err) }),
  });
  await informer.start();
  try {
    const before = await env.namespace('before');
    await eventually(async () => seen.has(before), { what: 'the informer watching' });
    assert.deepEqual(failures, [], 'the watch was healthy before the freeze');

    cp.signalAPIServer('SIGSTOP');
    const frozenAt = Date.now();
    let read: Promise<unknown>;
    try {
      // Sent on the connection that is now dead: it can only answer after a retry on a new one.
      read = kube.getNamespace(before).catch((e: unknown) => toKubeError(e));
      // Measured when the informer's watch fails, not after a sleep; the bound on the wait
      // only lets the old code's minute-and-more show up as a number instead of a timeout.
      const noticed = await eventually<Failure>(async () => failures[0], { timeoutMs: 3 * DETECT_WITHIN_MS, intervalMs: 50, what: 'the watch failing on the frozen API server' });
      const detectMs = noticed.at - frozenAt;
      t.diagnostic(`the dead connection was noticed ${detectMs} ms after the freeze: ${noticed.err.reason}: ${noticed.err.message}`);
      assert.equal(noticed.err.code, 0, 'a connection failure, not an answer of the API server');
      assert.ok(detectMs < DETECT_WITHIN_MS, `noticed ${detectMs} ms after the freeze`);
    } finally {
      cp.signalAPIServer('SIGCONT');
    }

    const answer = await read;
    assert.ok(!(answer instanceof Error), `the read in flight failed: ${answer instanceof Error ? answer.message : ''}`);
    assert.equal((answer as { metadata: { name: string } }).metadata.name, before);
    assert.equal(retries[0], 'connection_lost', 'the read was retried (and counted) because its connection died under it');

    // The informer re-watched (or relisted) after its failure and delivers what happens next.
    const thawed = await env.namespace('after');
    await eventually(async () => seen.has(thawed), { timeoutMs: 60_000, what: 'the informer seeing a namespace created after the thaw' });
  } finally {
    await informer.stop();
  }
});

const OBJECTS = 300;
const AT_ONCE = 50;
/** A cut after every this many finished objects, alternating FIN and RST. */
const CUT_EVERY = 50;

test(`connections closed under ${AT_ONCE} requests in flight, ${OBJECTS / CUT_EVERY} times: every create and read still succeeds`, { skip: process.env.USE_EXISTING_CLUSTER === 'true' ? 'needs the control plane\'s CA to reach it through a relay' : false }, async (t) => {
  const cp = env.controlPlane!;
  const relay = await startTcpRelay(cp.server);
  const kc = new KubeConfig();
  kc.loadFromString(kubeconfigYaml(relay.server, cp.pki));
  const kube = new KubeClient(kc);
  const retries = new Map<RetryReason, number>();
  observeRetries(kc, (reason) => retries.set(reason, (retries.get(reason) ?? 0) + 1));
  const ns = await env.namespace('cut');
  const cuts: number[] = [];
  const errors: string[] = [];
  let applied = 0;
  let next = 0;
  let finished = 0;
  try {
    await Promise.all(Array.from({ length: AT_ONCE }, async () => {
      for (let i = next++; i < OBJECTS; i = next++) {
        const name = `cm-${i}`;
        try {
          // A create whose first try the API server did apply answers AlreadyExists to its retry: the caller's business (a reconcile re-reads).
          await kube.createConfigMap({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns }, data: { i: String(i) } })
            .catch((e: unknown) => { if (!isAlreadyExists(e)) throw e; applied++; });
          assert.equal((await kube.getConfigMap(ns, name)).data?.i, String(i));
        } catch (err) {
          errors.push(`${name}: ${toKubeError(err).reason}: ${toKubeError(err).message}`);
        }
        // Cut while the other workers' requests are on the wire.
        if (++finished % CUT_EVERY === 0) cuts.push(relay.cut(cuts.length % 2 ? 'reset' : 'end'));
      }
    }));
  } finally {
    await relay.close();
  }
  t.diagnostic(`connections cut: ${cuts.join(', ')}; retried: ${JSON.stringify(Object.fromEntries(retries))}; creates applied before their retry: ${applied}; errors: ${errors.length}`);
  assert.ok(cuts.filter((n) => n > 0).length >= 3, `cuts ${cuts.join(', ')}: too few hit a connection`);
  assert.ok((retries.get('connection_lost') ?? 0) >= 1, 'no request was in flight when a connection was cut');
  assert.deepEqual(errors, []);
});

const LEASE_MS = 15_000;

test('a leader cut off from the API server steps down before its Lease can pass to another replica', { skip: process.env.USE_EXISTING_CLUSTER === 'true' ? 'needs the control plane\'s CA to reach it through a relay' : false }, async (t) => {
  const cp = env.controlPlane!;
  await ensureNamespace(env.kc, OPERATOR_NAMESPACE);
  const relay = await startTcpRelay(cp.server);
  const kubeconfig = join(mkdtempSync(join(tmpdir(), 'aio-partition-')), 'kubeconfig');
  writeFileSync(kubeconfig, kubeconfigYaml(relay.server, cp.pki), { mode: 0o600 });
  // The defaults, spelled out: another replica may take the Lease LEASE_MS after the last renewal it saw.
  const op = spawnOperator(kubeconfig, ['--leader-elect', `--leader-election-lease-duration=${LEASE_MS / 1000}s`, '--leader-election-renew-deadline=10s', '--leader-election-retry-period=2s'], { POD_NAME: 'cut-off' });
  const lines = () => op.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { time: number; msg: string });
  try {
    await eventually(async () => lines().some((l) => l.msg === 'became leader'), { timeoutMs: 60_000, what: 'the replica leading' });
    relay.partition();
    const partitionedAt = Date.now();
    // Bounded only so the old code's wait on the dead connection shows up as a number.
    const lost = await eventually(async () => lines().find((l) => l.msg === 'lost leadership; exiting'), { timeoutMs: 120_000, what: 'the leader stepping down' });
    const stepDownMs = lost.time - partitionedAt;
    t.diagnostic(`the cut-off leader stepped down ${stepDownMs} ms after the partition`);
    // Its last renewal was at most one retry period before the partition, so this leaves it that much margin.
    assert.ok(stepDownMs < LEASE_MS, `the leader stepped down ${stepDownMs} ms after the partition: another replica could lead by then`);
  } finally {
    await op.kill();
    await relay.close();
  }
});
