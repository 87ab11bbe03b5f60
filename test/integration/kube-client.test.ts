// The API client reuses its connections: N sequential requests open one TLS
// connection, not N (client-node alone builds a new connection pool per
// request). Counted as client sockets the process opens, whatever opens them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { startTestEnv, type TestEnv } from '../support/env.ts';
import { eventually, runOperator } from '../support/operator.ts';
import { api } from '../support/objects.ts';
import type { Operator } from '../../src/operator.ts';
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

/** Client sockets opened while fn runs; the protocols they negotiated (ALPN) are logged. */
async function socketsOpened(fn: () => Promise<void>): Promise<number> {
  let opened = 0;
  const protocols = new Map<string, number>();
  const count = (msg: unknown) => {
    opened++;
    const socket = (msg as { socket: { once(e: string, f: () => void): void; alpnProtocol?: string | false } }).socket;
    socket.once('secureConnect', () => { const p = String(socket.alpnProtocol || 'http/1.1'); protocols.set(p, (protocols.get(p) ?? 0) + 1); });
  };
  subscribe('net.client.socket', count);
  try {
    await fn();
  } finally {
    unsubscribe('net.client.socket', count);
  }
  console.log(`protocols negotiated: ${JSON.stringify(Object.fromEntries(protocols))}`);
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

// The whole operator in-process: every client it builds (controllers, events,
// leader election, webhook) shares one pool, so a burst of issuances opens a
// handful of connections in all, not a few per issuance. Counted from start to
// the last issuance; the identities exist before, so only the operator's
// sockets are counted (the test polls the metric in-process, not the API).
const BURST = 50;
test(`an operator issuing ${BURST} identities opens a small constant number of connections`, async () => {
  const a = api(env.kc);
  await a.createTrustDomain('default', { trustDomain: 'cluster.local', ca: { selfSigned: {} } });
  const ns = await env.namespace('burst');
  await Promise.all(Array.from({ length: BURST }, (_, i) => a.createIdentity(ns, `agent-${i}`)));
  let op: Operator | undefined;
  const issued = async () => (await op!.metrics.issuances.get()).values.reduce((s, v) => s + v.value, 0);
  try {
    const started = performance.now();
    const opened = await socketsOpened(async () => {
      op = await runOperator(env.kc);
      await eventually(async () => (await issued()) >= BURST, { timeoutMs: 90_000, what: `${BURST} issuances` });
    });
    console.log(`${BURST} issuances: ${opened} client socket(s) opened, ${(opened / BURST).toFixed(2)} per issuance`);
    // One HTTP/2 connection carries every request and watch (each watch had its own before: 9 in all).
    assert.ok(opened <= 3, `${opened} sockets for ${BURST} issuances`);

    // The TrustDomain's pass that identity, Secret and policy events cause is coalesced (1 s): about one
    // pass per second of the burst, not one per event (4 events per issuance here, about 200 in all).
    await op!.idle();
    const seconds = (performance.now() - started) / 1000;
    const trustPasses = (await op!.metrics.reconciles.get()).values.filter((v) => v.labels.controller === 'trustdomain').reduce((n, v) => n + v.value, 0);
    console.log(`${BURST} issuances in ${seconds.toFixed(1)} s: ${trustPasses} TrustDomain passes`);
    assert.ok(trustPasses <= Math.ceil(seconds) + 5, `${trustPasses} TrustDomain passes in ${seconds.toFixed(1)} s`);
  } finally {
    await op?.stop();
  }
});
