import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { LoadedKubeConfig } from '../../../src/kube/config.ts';
import { credentialsOf } from '../../../src/kube/credentials.ts';
import { admit, limitRequests, poolOf } from '../../../src/kube/transport.ts';

const config = () => new LoadedKubeConfig({ server: 'https://127.0.0.1:1' }, null);

test('clients of one kubeconfig share a pool; clients of another do not', async () => {
  const kc = config();
  assert.equal(await poolOf(kc), await poolOf(kc));
  assert.notEqual(await poolOf(config()), await poolOf(kc));
});

test("client-node's KubeConfig fits: its cluster's CA and its user's token are what a request carries", async () => {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:1', caData: Buffer.from('not a real CA').toString('base64') }],
    users: [{ name: 'u', token: 't' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x',
  });
  const { headers, tls } = await credentialsOf(kc.getCurrentCluster(), kc.getCurrentUser()).current();
  assert.deepEqual([headers, tls.ca?.toString()], [{ authorization: 'Bearer t' }, 'not a real CA']);
  assert.equal(await poolOf(kc), await poolOf(kc));
});

test('a pool that cannot be built (an unreadable CA file) fails its requests and is retried by the next', async () => {
  const caFile = join(mkdtempSync(join(tmpdir(), 'aio-transport-')), 'ca.crt');
  const kc = new LoadedKubeConfig({ server: 'https://127.0.0.1:1', caFile }, null);
  await assert.rejects(poolOf(kc), /ENOENT/);
  writeFileSync(caFile, 'a CA that appeared since');
  assert.ok(await poolOf(kc), 'read again, not a cached failure');
});

test('a timeout bounds each request; without one, none is set', async () => {
  const bounded = await admit(config(), { timeoutMs: 1 });
  const unbounded = await admit(config(), {});
  assert.ok(bounded instanceof AbortSignal);
  assert.equal(bounded.aborted, false, 'not aborted before its time');
  await once(bounded, 'abort');
  assert.equal(unbounded, undefined);
});

/** Admits `n` requests; resolves to the fake time at which each was let go. */
function send(kc: LoadedKubeConfig, options: { timeoutMs?: number; paced?: boolean }, n: number): number[] {
  const sent: number[] = [];
  for (let i = 0; i < n; i++) void admit(kc, options).then(() => sent.push(Date.now()));
  return sent;
}

const flush = () => new Promise<void>((r) => setImmediate(r));

test("one rate limit paces every client of the kubeconfig, except those that opt out", async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
  // The bucket reads performance.now; let it follow the mocked clock.
  t.mock.method(performance, 'now', () => Date.now());
  const kc = config();
  limitRequests(kc, { qps: 10, burst: 2 });
  const a = send(kc, {}, 2);
  const b = send(kc, { timeoutMs: 60_000 }, 2);
  const c = send(kc, { paced: false }, 3);
  t.mock.timers.tick(0);
  await flush();
  assert.deepEqual([a, b, c], [[0, 0], [], [0, 0, 0]], 'the burst is shared: the second client waits; admission lookups do not');
  t.mock.timers.tick(100);
  await flush();
  assert.deepEqual(b, [100]);
  t.mock.timers.tick(100);
  await flush();
  assert.deepEqual(b, [100, 200]);
});

test('without a rate limit nothing waits: a hundred requests go at once, with the clock standing still', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
  t.mock.method(performance, 'now', () => Date.now());
  const sent = send(config(), {}, 100);
  await flush();
  assert.deepEqual(sent, Array.from({ length: 100 }, () => 0));
});
