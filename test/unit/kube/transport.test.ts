import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeConfig } from '@kubernetes/client-node';
import { limitRequests, requestOptions, watchConfig } from '../../../src/kube/transport.ts';

interface Hook { pre(ctx: unknown): { toPromise(): Promise<unknown> } }

/** A request as client-node's middleware sees it: authentication has set a fresh dispatcher. */
function request() {
  const ctx = { signal: undefined as AbortSignal | undefined, dispatcher: { close: async () => undefined } as { close(): Promise<void> } };
  return {
    ctx,
    api: {
      setSignal: (s: AbortSignal) => { ctx.signal = s; },
      getDispatcher: () => ctx.dispatcher,
      setDispatcher: (d: { close(): Promise<void> }) => { ctx.dispatcher = d; },
    },
  };
}

const hookOf = (opts: unknown) => (opts as { middleware: [Hook] }).middleware[0];

test("every request of one client is sent through the first request's dispatcher", async () => {
  const hook = hookOf(requestOptions(new KubeConfig()));
  const first = request();
  const firstDispatcher = first.ctx.dispatcher;
  await hook.pre(first.api).toPromise();
  const later = request();
  await hook.pre(later.api).toPromise();
  assert.equal(later.ctx.dispatcher, firstDispatcher);
});

test('clients of one kubeconfig share a pool, whatever their timeout; clients of another do not', async () => {
  const kc = new KubeConfig();
  const a = request(), b = request(), other = request();
  await hookOf(requestOptions(kc)).pre(a.api).toPromise();
  await hookOf(requestOptions(kc, { timeoutMs: 5000, paced: false })).pre(b.api).toPromise();
  await hookOf(requestOptions(new KubeConfig())).pre(other.api).toPromise();
  assert.equal(b.ctx.dispatcher, a.ctx.dispatcher);
  assert.notEqual(other.ctx.dispatcher, a.ctx.dispatcher);
});

test("watches ride the same pool as the kubeconfig's requests", async () => {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:1', caData: Buffer.from('not a real CA').toString('base64') }],
    users: [{ name: 'u', token: 't' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x',
  });
  const req = request();
  await hookOf(requestOptions(kc)).pre(req.api).toPromise();
  const watch = request();
  await watchConfig(kc).applySecurityAuthentication({ ...watch.api, setHeaderParam: () => undefined } as never);
  assert.equal(watch.ctx.dispatcher, req.ctx.dispatcher);
  assert.equal(watchConfig(kc).getCurrentCluster()?.server, 'https://127.0.0.1:1', 'the same cluster');
});

test('a timeout bounds each request; without one, none is set', async () => {
  const bounded = request(), unbounded = request();
  await hookOf(requestOptions(new KubeConfig(), { timeoutMs: 1 })).pre(bounded.api).toPromise();
  await hookOf(requestOptions(new KubeConfig())).pre(unbounded.api).toPromise();
  assert.ok(bounded.ctx.signal instanceof AbortSignal);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(bounded.ctx.signal.aborted, true);
  assert.equal(unbounded.ctx.signal, undefined);
});

/** Sends `n` requests through a hook; resolves to the fake time at which each was let go. */
function send(hook: Hook, n: number): number[] {
  const sent: number[] = [];
  for (let i = 0; i < n; i++) void hook.pre(request().api).toPromise().then(() => sent.push(Date.now()));
  return sent;
}

const flush = () => new Promise<void>((r) => setImmediate(r));

test("one rate limit paces every client of the kubeconfig, except those that opt out", async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
  // The bucket reads performance.now; let it follow the mocked clock.
  t.mock.method(performance, 'now', () => Date.now());
  const kc = new KubeConfig();
  limitRequests(kc, { qps: 10, burst: 2 });
  const operator = hookOf(requestOptions(kc));
  const leader = hookOf(requestOptions(kc, { timeoutMs: 60_000 }));
  const admission = hookOf(requestOptions(kc, { paced: false }));
  const a = send(operator, 2);
  const b = send(leader, 2);
  const c = send(admission, 3);
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

test('without a rate limit nothing waits', async () => {
  const sent = await Promise.all(Array.from({ length: 100 }, () => hookOf(requestOptions(new KubeConfig())).pre(request().api).toPromise()));
  assert.equal(sent.length, 100);
});
