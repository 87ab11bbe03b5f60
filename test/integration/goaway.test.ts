// An API server that sends GOAWAY (a restart, a rolling update of an HA
// control plane, or --goaway-chance, which kube-apiserver offers for exactly
// this: to spread clients over replicas) must cost a client nothing: what it
// had in flight goes again on a new connection and no error reaches the
// caller (a reconcile). undici replays a stream the GOAWAY refused once;
// transport.ts retries what that leaves, so the test counts both the GOAWAYs
// received (so it cannot pass without any) and the errors (there must be none).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { startTestEnv, type TestEnv } from '../support/env.ts';
import { eventually } from '../support/operator.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { toKubeError } from '../../src/kube/errors.ts';
import { observeRetries, poolOf } from '../../src/kube/transport.ts';

let env: TestEnv;

// The most kube-apiserver allows: 2% of HTTP/2 requests answer with GOAWAY.
before(async () => { env = await startTestEnv({ apiServerArgs: ['--goaway-chance=0.02'] }); });
after(async () => { await env?.stop(); });

const OBJECTS = 400;
const AT_ONCE = 100;

test(`with GOAWAY on 2% of requests, ${OBJECTS} creates and ${OBJECTS} reads, ${AT_ONCE} at a time, all succeed`, { skip: process.env.USE_EXISTING_CLUSTER === 'true' ? 'needs a control plane started with --goaway-chance' : false }, async (t) => {
  const kube = new KubeClient(env.kc);
  const ns = await env.namespace('goaway');
  // Right after the CRDs are Established the API server may still answer 429 "storage is (re)initializing".
  await eventually(async () => (await kube.listIdentities(ns), true), { what: 'the API server serving' });
  const goaways: string[] = [];
  (await poolOf(env.kc)).on('disconnect', (_origin, _clients, err) => { if (/GOAWAY/.test(err.message)) goaways.push(err.message); });
  const retries = new Map<string, number>();
  observeRetries(env.kc, (reason) => retries.set(reason, (retries.get(reason) ?? 0) + 1));

  // undici's own replays: a request whose headers went out more than once.
  const sends = new Map<object, number>();
  const sent = (msg: unknown) => { const { request } = msg as { request: object }; sends.set(request, (sends.get(request) ?? 0) + 1); };
  subscribe('undici:client:sendHeaders', sent);

  const errors: string[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: AT_ONCE }, async () => {
    for (let i = next++; i < OBJECTS; i = next++) {
      const name = `cm-${i}`;
      try {
        await kube.createConfigMap({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns }, data: { i: String(i) } });
        assert.equal((await kube.getConfigMap(ns, name)).data?.i, String(i));
      } catch (err) {
        errors.push(`${name}: ${toKubeError(err).reason}: ${toKubeError(err).message}`);
      }
    }
  })).finally(() => unsubscribe('undici:client:sendHeaders', sent));

  const replayed = [...sends.values()].reduce((n, times) => n + times - 1, 0);
  const retried = [...retries.values()].reduce((n, times) => n + times, 0);
  t.diagnostic(`${goaways.length} GOAWAYs received; requests sent again: ${replayed} by undici, ${retried} by transport.ts ${JSON.stringify(Object.fromEntries(retries))}; errors: ${errors.length}`);
  // 800 requests at 2% make about 16 GOAWAYs; fewer than 3 happens about once in 10^4 runs.
  assert.ok(goaways.length >= 3, `only ${goaways.length} GOAWAYs: the test did not test anything`);
  assert.ok(replayed + retried >= 1, 'no request was in flight when a GOAWAY came: nothing was retried');
  assert.deepEqual(errors, []);
});
