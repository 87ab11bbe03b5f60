// Root rotation covers pod certificates. Two SDK agents of one TrustDomain,
// one delivered as a Secret (mounted by test/support/kubelet.ts) and one as a
// pod certificate (its key made "on the node" by the stand-in kubelet,
// test/support/pod-kubelet.ts, which asks as system:node:n1 against the Node
// authorizer and NodeRestriction), connect to each other every 100 ms through
// a root rotation. The operator re-issues the Secret leaf; the pod's kubelet
// refreshes its own. The old root must stay until the pod certificate issued
// under it has expired, which is at least 1 h away (the API server's floor):
// the test drives the operator's clock past it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { ANNOTATION_ROOT_FINGERPRINT, ANNOTATION_ROTATE_REQUESTED_AT, FINALIZER_POD_CERTIFICATE, GROUP, TRUST_DOMAIN, VERSION } from '../../src/api/group.ts';
import type { AgentIdentity, PodCertificateRequest, TrustDomain } from '../../src/api/types.ts';
import { parseCertificates, fingerprintOf } from '../../src/pki/parse.ts';
import { verifyChain } from '../../src/pki/verify.ts';
import { serialNumberOf } from '../../src/pki/serial.ts';
import { connect, createServer, loadIdentity, type AgentServer, type Identity } from '../../src/sdk/index.ts';
import { injectIdentity } from '../../src/webhook/mutate.ts';
import type { Pod } from '../../src/webhook/pod.ts';
import type { Operator } from '../../src/operator.ts';
import { createNode, startTestEnv, type TestEnv } from '../support/env.ts';
import { eventually, runOperator } from '../support/operator.ts';
import { api, isReady, secretText, ROTATION_EVENTS } from '../support/objects.ts';
import { DEFAULT_TRUST_DOMAIN } from '../support/suite.ts';
import { mountIdentity, type Mount } from '../support/kubelet.ts';
import { startPodKubelet, type PodKubelet } from '../support/pod-kubelet.ts';
import { applyPatch } from '../unit/webhook/fixtures.ts';

const PCR = { group: 'certificates.k8s.io', version: 'v1', plural: 'podcertificaterequests' } as const;
const POLL_MS = 300;

let env: TestEnv;
let op: Operator;
let a: ReturnType<typeof api>;
let base: string;
// The operator's clock: real time plus an offset the test moves forward.
let offsetMs = 0;
const operatorNow = () => new Date(Date.now() + offsetMs);

const cleanups: (() => unknown)[] = [];

before(async () => {
  env = await startTestEnv({ nodeAuthorizer: true });
  a = api(env.kc);
  await a.createTrustDomain('default', DEFAULT_TRUST_DOMAIN);
  // A short resync: queue timers keep real time, so the signer sees the jumped
  // clock (and releases the expired pod certificate's ledger entry) at the
  // next re-delivery of its request.
  op = await runOperator(env.kc, {
    propagationDelayMs: 1500, reissueWindowMs: 3000, rotationGraceMs: 6000, rotationPollMs: POLL_MS, resyncMs: 3000,
  }, env.kc, { now: operatorNow });
  base = await mkdtemp(join(tmpdir(), 'pod-cert-rotation-'));
});
after(async () => {
  for (const c of cleanups.reverse()) await c();
  await op?.stop();
  await env?.stop();
  if (base) await rm(base, { recursive: true, force: true });
});

const getPCR = (namespace: string, name: string) => a.custom.getNamespacedCustomObject({ ...PCR, namespace, name }) as Promise<PodCertificateRequest>;
const rootsOf = async (pem: string) => Promise.all(parseCertificates(pem).map(fingerprintOf));

/**
 * One mutual-TLS exchange through the SDK: the client checks the server's
 * SPIFFE ID, the server its policy.json; the server answers "ok" only to a
 * peer it admitted. Resolves undefined on success, or what went wrong.
 */
async function exchange(client: Identity, port: number, serverID: string): Promise<string | undefined> {
  try {
    const socket = await connect(client, '127.0.0.1', port, { authorize: serverID });
    return await new Promise<string | undefined>((resolve) => {
      let data = '';
      const timer = setTimeout(() => { socket.destroy(); resolve('timeout'); }, 5000);
      socket.on('data', (d) => (data += d));
      socket.on('error', () => undefined);
      socket.on('close', () => { clearTimeout(timer); resolve(data === 'ok\n' ? undefined : `server hung up (refused the client) after "${data}"`); });
    });
  } catch (err) {
    return (err as Error).message;
  }
}

async function listen(identity: Identity, failures: string[], who: string): Promise<{ server: AgentServer; port: number }> {
  const server = createServer(identity, {}, (socket) => { socket.on('error', () => undefined); socket.end('ok\n'); });
  server.on('refused', (err: Error) => failures.push(`${new Date().toISOString()} ${who} refused: ${err.message}`));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise((r) => server.close(r)));
  return { server, port: (server.address() as AddressInfo).port };
}

test('a root rotation with a Secret agent and a pod-certificate agent: no failed handshake, and the old root stays until the pod certificate under it expired', async (t) => {
  const ns = await env.namespace('pod-rotation');
  const node = await createNode(env, 'n1');
  // The Secret leaf lives 24h so that the clock jump at the end does not renew it; the pod certificate lives the API's minimum.
  await a.createIdentity(ns, 'planner', { duration: '24h', policy: { allow: [{ agent: { name: 'coder' } }] } });
  await a.createIdentity(ns, 'coder', { delivery: 'PodCertificate', duration: '1h', policy: { allow: [{ agent: { name: 'planner' } }] } });
  const [planner, coder] = await eventually(async () => {
    const p = await a.getIdentity(ns, 'planner');
    const c = await a.getIdentity(ns, 'coder');
    return isReady(p) && isReady(c) && [p, c] as [AgentIdentity, AgentIdentity];
  }, { what: 'both identities Ready' });
  const oldRoot = (await eventually(async () => (await a.getTrustDomain('default')).status?.roots?.[0]?.fingerprint, { what: 'a root' }));

  // The pod the webhook injects for the pod-certificate identity, bound to n1.
  const bare: Pod = {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'coder', namespace: ns },
    spec: { serviceAccountName: 'coder', nodeName: 'n1', automountServiceAccountToken: false, containers: [{ name: 'agent', image: 'agent:1' }] },
  };
  const injected = injectIdentity(bare, coder);
  assert.equal(injected.refusal, undefined);
  await a.core.createNamespacedPod({ namespace: ns, body: applyPatch(bare, injected.patch) as V1Pod });

  // The stand-in kubelet refreshes at beginRefreshAt (≥ 10 min away), except
  // the first certificate: its refresh time is a Date the test moves to "now"
  // once the rotation reaches ReissuingLeaves (the stand-in re-reads it while
  // it waits), as a kubelet whose beginRefreshAt came due would.
  const firstRefresh = new Date(8.64e15);
  const coderDir = join(base, 'coder');
  let issued = 0;
  const kubelet: PodKubelet = await startPodKubelet({
    kc: node.kc, namespace: ns, pod: 'coder', dir: coderDir, pollMs: 100,
    refreshAt: (at) => (issued++ === 0 ? firstRefresh : at),
  });
  cleanups.push(() => kubelet.stop());
  const first = await kubelet.outcome(0);
  assert.equal(first.type, 'Issued', first.type !== 'Issued' ? `${first.reason}: ${first.message}` : '');
  assert.equal(first.request.metadata.annotations?.[ANNOTATION_ROOT_FINGERPRINT], oldRoot, 'the ledger names the root the first pod certificate chains to');

  // Each policy names the other once the operator re-reconciled it after the other appeared (coalesced, 1 s):
  // traffic before then would be refused by a policy.json that is merely not yet current.
  await eventually(async () => (await a.getPolicy(ns, 'planner'))?.allow.some((p) => p.spiffeID === coder.status!.spiffeID), { what: 'planner\'s policy.json allows coder' });
  await eventually(async () => {
    const cm = await a.core.readNamespacedConfigMap({ namespace: ns, name: 'coder-identity-policy' }).catch(() => undefined);
    return (JSON.parse(cm?.data?.['policy.json'] ?? '{"allow":[]}') as { allow: Array<{ spiffeID: string }> }).allow.some((p) => p.spiffeID === planner.status!.spiffeID);
  }, { what: 'coder\'s policy.json allows planner' });
  const plannerMount: Mount = await mountIdentity(env.kc, ns, 'planner', join(base, 'planner'), 200);
  cleanups.push(() => plannerMount.stop());
  const plannerID = await loadIdentity({ dir: plannerMount.dir, pollIntervalMs: 1000 });
  const coderID = await loadIdentity({ dir: coderDir, pollIntervalMs: 1000 });
  cleanups.push(() => { plannerID.close(); coderID.close(); });
  assert.equal(plannerID.spiffeID, planner.status!.spiffeID);
  assert.equal(coderID.spiffeID, coder.status!.spiffeID);

  // Traffic: every 100 ms, each agent connects to the other.
  const failures: string[] = [];
  const plannerServer = await listen(plannerID, failures, 'planner');
  const coderServer = await listen(coderID, failures, 'coder');
  let ok = 0;
  let running = true;
  const traffic = (async () => {
    while (running) {
      const started = Date.now();
      const results = await Promise.all([
        exchange(coderID, plannerServer.port, plannerID.spiffeID),
        exchange(plannerID, coderServer.port, coderID.spiffeID),
      ]);
      for (const [i, r] of results.entries()) {
        if (r === undefined) ok++;
        else failures.push(`${new Date().toISOString()} ${i === 0 ? 'coder→planner' : 'planner→coder'}: ${r}`);
      }
      await new Promise((res) => setTimeout(res, Math.max(0, 100 - (Date.now() - started))));
    }
  })();
  // A failed assertion must not leave the loop running: the file would never exit.
  cleanups.push(async () => { running = false; await traffic; });
  await eventually(async () => ok >= 6, { what: 'traffic before the rotation' });

  // What status shows, sampled, with when each phase was first seen.
  const t0 = Date.now();
  const seen = new Map<string, number>();
  const samples: { at: number; phase?: string; leavesRemaining?: number }[] = [];
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      // A failed read is no sample: taken as 'none' it would put a phase in the sequence that never was.
      const td = await a.getTrustDomain('default').catch(() => undefined);
      if (td) {
        const r = td.status?.rotation;
        const phase = r?.phase ?? 'none';
        samples.push({ at: Date.now(), phase, leavesRemaining: r?.leavesRemaining });
        if (!seen.has(phase)) seen.set(phase, Date.now() - t0);
      }
      await new Promise((res) => setTimeout(res, 100));
    }
  })();
  cleanups.push(async () => { watching = false; await watcher; });

  // As `agent-identity ca rotate` does.
  await a.custom.patchClusterCustomObject(
    { group: GROUP, version: VERSION, plural: TRUST_DOMAIN.plural, name: 'default', body: { metadata: { annotations: { [ANNOTATION_ROTATE_REQUESTED_AT]: new Date().toISOString() } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  const okAtStart = ok;

  // PublishingRoot: both agents' bundles get the new root.
  const td = await eventually(async () => { const d: TrustDomain = await a.getTrustDomain('default'); return d.status?.roots?.length === 2 && d; }, { what: 'the new root published' });
  const newRoot = td.status!.roots!.map((r) => r.fingerprint).find((f) => f !== oldRoot)!;
  await eventually(async () => {
    const bundles = await Promise.all([plannerID, coderID].map((i) => rootsOf(i.bundle.toPem())));
    return bundles.every((b) => b.includes(oldRoot) && b.includes(newRoot));
  }, { what: 'both agents trust both roots', timeoutMs: 30_000 });

  // ReissuingLeaves: the operator re-issues the Secret leaf; the kubelet refreshes the pod certificate.
  await eventually(async () => (await a.getTrustDomain('default')).status?.rotation?.phase === 'ReissuingLeaves', { what: 'ReissuingLeaves', timeoutMs: 30_000 });
  firstRefresh.setTime(Date.now());
  const second = await kubelet.outcome(1);
  assert.equal(second.type, 'Issued', second.type !== 'Issued' ? `${second.reason}: ${second.message}` : '');
  assert.equal(second.request.metadata.annotations?.[ANNOTATION_ROOT_FINGERPRINT], newRoot, 'the refreshed pod certificate chains to the new root');
  const newRootAlone = [];
  for (const c of coderID.bundle.roots) if (await fingerprintOf(c) === newRoot) newRootAlone.push(c);
  assert.deepEqual(await verifyChain(parseCertificates(second.certificateChain), newRootAlone, new Date()), { ok: true }, 'the refreshed chain verifies against the new root alone');
  await eventually(async () => (await a.getSecret(ns, 'planner-identity')).metadata.annotations?.[ANNOTATION_ROOT_FINGERPRINT] === newRoot, { what: 'the Secret leaf re-issued under the new root' });
  const plannerLeaf = serialNumberOf(parseCertificates(secretText(await a.getSecret(ns, 'planner-identity'), 'tls.crt'))[0]!);
  const coderLeaf = serialNumberOf(parseCertificates(second.certificateChain)[0]!);
  await eventually(async () => plannerID.svid.serialNumber === plannerLeaf && coderID.svid.serialNumber === coderLeaf, { what: 'both agents use their new certificates' });
  const movedAt = Date.now();
  const okAtMoved = ok;

  // The old root is not retired while the first pod certificate may be valid:
  // once the operator counts both agents as moved, the rotation holds in
  // ReissuingLeaves with that one pod certificate remaining.
  await eventually(async () => (await a.getTrustDomain('default')).status?.rotation?.leavesRemaining === 1, { what: 'one leaf remaining' });
  const holdFrom = Date.now();
  await new Promise((res) => setTimeout(res, 5 * POLL_MS + 500));
  const held = samples.filter((s) => s.at >= holdFrom);
  assert.ok(held.length >= 5, `status sampled while holding: ${held.length}`);
  for (const s of held) assert.deepEqual({ phase: s.phase, leavesRemaining: s.leavesRemaining }, { phase: 'ReissuingLeaves', leavesRemaining: 1 }, 'one pod certificate still chains to the old root');
  assert.deepEqual((await a.trustDomainEvents('default')).filter((e) => e.reason === 'RetireRoot'), [], 'the old root was not retired');
  assert.ok(ok - okAtMoved >= 5, `traffic ran on the new certificates: ${ok - okAtMoved} handshakes`);

  // The clock jump below moves only the operator's clock: anything it signs
  // from then on starts in the real world's future (the Secret agent's leaf,
  // were it re-issued, would not yet be valid for its real peers). The jump
  // stands for an hour of waiting, not for a world whose clocks moved, so
  // the traffic check ends here.
  running = false;
  await traffic;
  const okDuring = ok - okAtStart;
  t.diagnostic(`${ok} handshakes (${okDuring} during the rotation until the jump), ${failures.length} failed`);
  assert.deepEqual(failures, [], 'no handshake failed');
  assert.ok(okDuring >= 20, `traffic really ran during the rotation: ${okDuring} handshakes`);

  // "The pod certificate chaining to the old root is gone": the operator's clock passes its notAfter.
  const jumpedAt = Date.now();
  offsetMs = first.notAfter.getTime() - Date.now() + 60_000;
  t.diagnostic(`operator clock jumped ${(offsetMs / 60_000).toFixed(1)} min forward, past the first pod certificate's notAfter ${first.notAfter.toISOString()}`);
  const done = await eventually(async () => {
    const d: TrustDomain = await a.getTrustDomain('default');
    return !d.status?.rotation && d.status?.roots?.length === 1 && d;
  }, { what: 'the rotation to finish after the clock jump', timeoutMs: 60_000 });
  const finishedMs = Date.now() - jumpedAt;
  assert.equal(done.status!.roots![0]!.fingerprint, newRoot);
  const steps = (await a.trustDomainEvents('default')).filter((e) => ROTATION_EVENTS.includes(e.reason ?? ''));
  assert.deepEqual(steps.map((e) => e.reason).sort(), [...ROTATION_EVENTS].sort(), 'StartRotation, SwitchSigner, RetireRoot, FinishRotation, once each');
  assert.deepEqual(await rootsOf((await a.core.readNamespacedConfigMap({ namespace: ns, name: 'trust-bundle-default' })).data!['ca.crt']!), [newRoot], 'the old root left the bundle ConfigMap');
  await eventually(async () => (await rootsOf(secretText(await a.getSecret(ns, 'planner-identity'), 'ca.crt'))).join() === newRoot, { what: 'the old root left the Secret' });

  // The ledger entry of the expired pod certificate is released.
  const released = await eventually(async () => {
    const p = await getPCR(ns, first.request.metadata.name!);
    return !p.metadata.finalizers?.includes(FINALIZER_POD_CERTIFICATE) && p;
  }, { what: 'the ledger finalizer removed from the old request', timeoutMs: 15_000 });
  assert.equal(released.metadata.annotations?.[ANNOTATION_ROOT_FINGERPRINT], oldRoot);

  // Stopped only once it has seen the end too: a read in flight as the rotation finished may still say RetiringRoot.
  await eventually(async () => samples.at(-1)?.phase === 'none', { what: 'the sampler sees the rotation finished', timeoutMs: 5_000 });
  watching = false;
  await watcher;
  // Each phase lasts well over the 100 ms sampling here (≥ 1.5 s, ≥ 2 s, 6 s), so none is missed.
  const sequence = samples.map((x) => x.phase).filter((p, i, all) => i === 0 || p !== all[i - 1]);
  assert.deepEqual(sequence, ['none', 'PublishingRoot', 'ReissuingLeaves', 'RetiringRoot', 'none'], 'the phases in order, RetiringRoot only after the jump');
  assert.ok(samples.filter((x) => x.phase === 'RetiringRoot').every((x) => x.at > jumpedAt), 'the old root retired only once the operator\'s clock passed the pod certificate\'s notAfter');
  const phases = [...seen.entries()].map(([p, ms]) => `${p}@${(ms / 1000).toFixed(1)}s`).join(', ');
  t.diagnostic(`phases first seen (from the rotate request): ${phases}; held in ReissuingLeaves ${((jumpedAt - movedAt) / 1000).toFixed(1)}s after both agents moved; finished ${(finishedMs / 1000).toFixed(1)}s after the clock jump`);
});
