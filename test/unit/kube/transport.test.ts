import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requestOptions } from '../../../src/kube/transport.ts';

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
  const hook = hookOf(requestOptions());
  const first = request();
  const firstDispatcher = first.ctx.dispatcher;
  await hook.pre(first.api).toPromise();
  const later = request();
  await hook.pre(later.api).toPromise();
  assert.equal(later.ctx.dispatcher, firstDispatcher);
});

test('two clients do not share a pool', async () => {
  const a = request(), b = request();
  await hookOf(requestOptions()).pre(a.api).toPromise();
  await hookOf(requestOptions()).pre(b.api).toPromise();
  assert.notEqual(a.ctx.dispatcher, b.ctx.dispatcher);
});

test('a timeout bounds each request; without one, none is set', async () => {
  const bounded = request(), unbounded = request();
  await hookOf(requestOptions(1)).pre(bounded.api).toPromise();
  await hookOf(requestOptions()).pre(unbounded.api).toPromise();
  assert.ok(bounded.ctx.signal instanceof AbortSignal);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(bounded.ctx.signal.aborted, true);
  assert.equal(unbounded.ctx.signal, undefined);
});
