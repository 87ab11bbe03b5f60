// The API client reuses its connections: N sequential requests open one TLS
// connection, not N (client-node alone builds a new connection pool per
// request). Counted as client sockets the process opens, whatever opens them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { startTestEnv, type TestEnv } from '../support/env.ts';
import { eventually } from '../support/operator.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { ifExists } from '../../src/kube/errors.ts';

let env: TestEnv;

before(async () => {
  env = await startTestEnv();
  // Right after the CRDs are Established the API server may still answer 429 "storage is (re)initializing".
  await eventually(async () => (await new KubeClient(env.kc).listIdentities('default'), true), { what: 'AgentIdentities are served' });
});
after(async () => { await env?.stop(); });

const N = 20;

/** Client sockets opened while fn runs. */
async function socketsOpened(fn: () => Promise<void>): Promise<number> {
  let opened = 0;
  const count = () => { opened++; };
  subscribe('net.client.socket', count);
  try {
    await fn();
  } finally {
    unsubscribe('net.client.socket', count);
  }
  return opened;
}

for (const [what, options] of [['without a timeout (operator, CLI)', {}], ['with a per-request timeout (webhook)', { timeoutMs: 5000 }]] as const) {
  test(`${N} sequential requests ${what} share one connection`, async () => {
    const kube = new KubeClient(env.kc, options);
    const ns = await env.namespace('conn');
    const opened = await socketsOpened(async () => {
      for (let i = 0; i < N; i++) {
        // Reads of several kinds, through several client-node API classes: one pool serves them all.
        await ifExists(() => kube.getConfigMap(ns, 'absent'));
        await kube.listIdentities(ns);
        await kube.getNamespace(ns);
      }
    });
    console.log(`${3 * N} requests ${what}: ${opened} client socket(s) opened`);
    assert.ok(opened <= 2, `${3 * N} requests opened ${opened} sockets`);
  });
}
