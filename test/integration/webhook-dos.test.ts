// The webhook port is reachable by anyone on the network, and the API server
// retries nothing: a review that costs seconds of CPU or hundreds of MB holds
// back every pod in the cluster. The webhook server runs in-process as main.ts
// starts it, with the RBAC of config/webhook/rbac.yaml, behind a real API
// server; requests go to it directly (as an attacker's would) and, for the
// label, through the API server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startTestEnv, type TestEnv } from '../support/env.ts';
import { OPERATOR_NAMESPACE } from '../support/operator.ts';
import { api } from '../support/objects.ts';
import { createPod, createServiceAccounts, markIssued, podManifest, startShippedWebhook, type ShippedWebhook, untilWebhookAnswers } from '../support/webhook.ts';
import { review, send, webhookCA } from '../support/admission-client.ts';
import type { WebhookServer } from '../../src/webhook/index.ts';

const MiB = 1 << 20;
let env: TestEnv;
let webhook: ShippedWebhook;
let server: WebhookServer;
let ns: string;
let ca: string;

before(async () => {
  env = await startTestEnv();
  ns = await env.namespace('agents');
  await createServiceAccounts(env.kc, ns, ['planner']);
  await api(env.kc).createIdentity(ns, 'planner', { serviceAccountName: 'planner' });
  await markIssued(env.kc, ns, 'planner', `spiffe://cluster.local/ns/${ns}/agent/planner`);

  webhook = await startShippedWebhook(env);
  server = webhook.server;
  ca = await webhookCA(env.kc, OPERATOR_NAMESPACE);
  await untilWebhookAnswers(env.kc, ns, async () => (await createPod(env.kc, ns, podManifest(`warmup-${Date.now()}`, { agent: 'planner', serviceAccountName: 'planner' }))).admitted);
});

after(async () => {
  await webhook?.stop();
  await env?.stop();
});

const healthz = () => send(server.port, ca, '/healthz', { method: 'GET' });

test('a body declared larger than 3 MiB gets 413 before any of it is sent; the server stays responsive', { timeout: 60_000 }, async () => {
  // Only the headers: a server that waits for the body never answers.
  const r = await send(server.port, ca, '/mutate', { headers: { 'content-length': String(4 * MiB) } });
  assert.equal(r.status, 413);
  assert.match(r.body, /larger than 3145728 bytes/);
  assert.equal((await healthz()).status, 200);
});

test('undeclared bodies are counted as they arrive and cut off past 3 MiB; 48 of them at once do not take the memory', { timeout: 120_000 }, async () => {
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const chunks = function* () { for (let i = 0; i < 62; i++) yield chunk; }; // 3.9 MB, the size of the report
  const rss0 = process.memoryUsage().rss;
  let peak = rss0;
  const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20);
  const answers = await Promise.all(Array.from({ length: 48 }, () => send(server.port, ca, '/validate', { chunks: chunks() })));
  clearInterval(sampler);
  // 413 when the answer beat the reset, 0 when the closed socket did, 429 for those that waited too long.
  const statuses = [...new Set(answers.map((a) => a.status))].sort();
  assert.ok(statuses.every((s) => s === 0 || s === 413 || s === 429), `statuses ${statuses.join(', ')}`);
  assert.ok(answers.every((a) => a.status !== 200), 'none was read to the end');
  // The old server buffered every body whole (48 × 3.9 MB, then a copy each); now at most 32 MiB are read at once.
  const grewMiB = (peak - rss0) / MiB;
  assert.ok(grewMiB < 150, `RSS grew ${grewMiB.toFixed(0)} MiB`);
  assert.equal((await healthz()).status, 200);
});

test('a 40,000-container review with 200,000 inject-containers names is answered without blocking the event loop', { timeout: 120_000 }, async () => {
  const containers = Array.from({ length: 40_000 }, (_, i) => ({ name: `c${i}`, image: 'x' }));
  const names = Array.from({ length: 200_000 }, (_, i) => `n${i}`).join(',');
  const pod = podManifest('huge', { agent: 'planner', serviceAccountName: 'planner', annotations: { 'agentidentity.dev/inject-containers': `${names},c1` }, spec: { containers } });
  const everywhere = podManifest('huge-all', { agent: 'planner', serviceAccountName: 'planner', spec: { containers } });
  const bodies = [review(pod, ns, 'big-1'), review(pod, ns, 'big-2'), review(everywhere, ns, 'big-3'), review(everywhere, ns, 'big-4')];
  assert.ok(bodies[0]!.length > 2.5 * MiB && bodies[0]!.length < 3 * MiB, `${bodies[0]!.length} bytes`);

  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const answers = await Promise.all([
    send(server.port, ca, '/mutate', { body: bodies[0]! }),
    send(server.port, ca, '/validate', { body: bodies[1]! }),
    send(server.port, ca, '/mutate', { body: bodies[2]! }),
    send(server.port, ca, '/validate', { body: bodies[3]! }),
    healthz(),
  ]);
  delay.disable();

  for (const [i, a] of answers.slice(0, 4).entries()) {
    assert.equal(a.status, 200, `review ${i + 1} answered`);
    assert.equal(JSON.parse(a.body).response.uid, `big-${i + 1}`);
  }
  const [namesMutate, namesValidate, allMutate] = answers.slice(0, 4).map((a) => a.status === 200 ? JSON.parse(a.body).response : undefined);
  assert.equal(namesMutate.allowed, true, 'no named container is read, so nothing is injected');
  assert.equal(namesValidate.allowed, false);
  assert.ok(namesValidate.status.message.length < 1000, 'the refusal quotes a few names, not 200,000');
  assert.equal(allMutate.allowed, false);
  assert.match(allMutate.status.message, /would carry the identity in 40000 containers/);
  assert.equal(answers[4]!.status, 200, '/healthz answered meanwhile');
  const maxMs = delay.max / 1e6;
  assert.ok(maxMs < 2000, `event loop blocked for ${maxMs.toFixed(0)} ms`);
});

test('the label "alpha/status" is refused before any lookup, in the webhook\'s words, not the API server\'s', async () => {
  const r = await createPod(env.kc, ns, podManifest('sub', { agent: 'alpha/status', serviceAccountName: 'planner' }));
  assert.equal(r.admitted, false);
  if (r.admitted) return;
  assert.match(r.message, /^admission webhook "inject\.agentidentity\.dev" denied the request: pod "sub" has the label agentidentity\.dev\/agent: "alpha\/status", which is not an AgentIdentity name; /);
  assert.doesNotMatch(r.message, /forbidden|system:serviceaccount|cannot get resource|agentidentities\.agentidentity\.dev/i);
});
