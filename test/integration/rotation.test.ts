// Root rotation without a gap in trust: two agents open a new mutual-TLS
// connection every 100 ms, each time re-reading its certificate files from
// its Secret as a pod's mounted volume would, while the root rotates.
// Which phases ran is read from the Events the operator records at each
// transition, not sampled from status: a poll misses a phase shorter than
// its interval, and on a loaded machine ReissuingLeaves can be that short.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { TestEnv } from '../support/env.ts';
import { setUp, tearDown } from '../support/suite.ts';
import { eventually } from '../support/operator.ts';
import { runCli } from '../support/cli.ts';
import { api, isReady, secretText, ROTATION_EVENTS } from '../support/objects.ts';
import { mtlsHandshake, type Material } from '../support/tls.ts';
import { parseCertificates, fingerprintOf } from '../../src/pki/parse.ts';
import { verifyChain } from '../../src/pki/verify.ts';
import type { Operator } from '../../src/operator.ts';
import type { TrustDomain } from '../../src/api/types.ts';

let env: TestEnv;
let op: Operator;
let a: ReturnType<typeof api>;

before(async () => {
  ({ env, op, a } = await setUp({ operator: { propagationDelayMs: 1500, reissueWindowMs: 3000, rotationGraceMs: 6000, rotationPollMs: 300 } }));
});
after(() => tearDown({ env, op }));

const cli = (...args: string[]) => runCli(env.kubeconfigPath, ...args);

test('a root rotation completes with zero failed handshakes between two agents', async (t) => {
  const ns = await env.namespace('rotation');
  await a.createIdentity(ns, 'planner', { duration: '1h' });
  await a.createIdentity(ns, 'orchestrator', { duration: '1h' });
  await eventually(async () => isReady(await a.getIdentity(ns, 'planner')) && isReady(await a.getIdentity(ns, 'orchestrator')), { what: 'both Ready' });
  const before = await eventually(async () => { const td = await a.getTrustDomain('default'); return td.status?.roots?.length === 1 && td; }, { what: 'one root' });
  const oldRoot = before.status!.roots![0]!.fingerprint;

  const material = async (name: string): Promise<Material> => {
    const s = await a.getSecret(ns, `${name}-identity`);
    return { cert: secretText(s, 'tls.crt'), key: secretText(s, 'tls.key'), ca: secretText(s, 'ca.crt') };
  };
  let ok = 0;
  const failures: string[] = [];
  let running = true;
  const traffic = (async () => {
    while (running) {
      const started = Date.now();
      const [server, client] = await Promise.all([material('planner'), material('orchestrator')]);
      const r = await mtlsHandshake(server, client);
      if (r.authorized) ok++;
      else failures.push(`${new Date().toISOString()}: ${r.error}`);
      await new Promise((res) => setTimeout(res, Math.max(0, 100 - (Date.now() - started))));
    }
  })();

  const okBefore = ok;
  const rotate = await cli('ca', 'rotate', 'default');
  assert.equal(rotate.code, 0, rotate.stderr);
  // The CLI takes seconds to start on a loaded machine; the 1.5 s propagation delay plus the 6 s grace outlast it.
  await eventually(async () => (await a.getTrustDomain('default')).status?.rotation, { what: 'the rotation in status' });
  const during = (await cli('ca', 'status', 'default')).stdout;
  const done = await eventually(async () => {
    const td: TrustDomain = await a.getTrustDomain('default');
    return !td.status?.rotation && td.status?.roots?.length === 1 && td.status.roots[0]!.fingerprint !== oldRoot && td;
  }, { timeoutMs: 60_000, what: 'rotation to complete' });
  const okDuring = ok - okBefore;
  // Traffic goes on after the old root left the bundle, however slow each handshake is here.
  const okAtDone = ok;
  await eventually(async () => ok >= okAtDone + 3, { what: 'handshakes after the rotation' });
  running = false;
  await traffic;

  const steps = (await a.trustDomainEvents('default')).filter((e) => ROTATION_EVENTS.includes(e.reason ?? ''));
  t.diagnostic(`${okDuring} handshakes during the rotation, ${failures.length} failed; events: ${steps.map((e) => e.reason).join(', ')}`);
  assert.deepEqual(failures, [], 'no handshake failed');
  assert.ok(okDuring >= 10, `traffic really ran during the rotation: ${okDuring} handshakes`);
  assert.deepEqual(steps.map((e) => e.reason).sort(), [...ROTATION_EVENTS].sort(), 'every phase transition was recorded, once');
  const newRootFp = done.status!.roots![0]!.fingerprint;
  for (const e of steps) assert.ok(e.message!.includes(newRootFp), `${e.reason} names the new root, so a later rotation's events stay apart: ${e.message}`);
  assert.match(during, /rotation: (PublishingRoot|ReissuingLeaves|RetiringRoot) \(Requested\)/);

  const newRoot = parseCertificates(secretText(await a.getSecret(ns, 'planner-identity'), 'ca.crt'));
  assert.equal(newRoot.length, 1, 'the old root left the bundle');
  assert.equal(await fingerprintOf(newRoot[0]!), done.status!.roots![0]!.fingerprint);
  for (const name of ['planner', 'orchestrator']) {
    const s = await a.getSecret(ns, `${name}-identity`);
    assert.deepEqual(await verifyChain(parseCertificates(secretText(s, 'tls.crt')), newRoot, new Date()), { ok: true }, `${name} chains to the new root`);
    assert.equal((await a.getIdentity(ns, name)).status!.lastIssuanceReason, 'RootRotation');
  }
  const cm = await a.core.readNamespacedConfigMap({ namespace: ns, name: 'trust-bundle-default' });
  assert.equal(cm.data!['ca.crt'], secretText(await a.getSecret(ns, 'planner-identity'), 'ca.crt'), 'the bundle ConfigMap carries the same bundle');
});
