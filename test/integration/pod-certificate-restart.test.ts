// The signer killed mid-flight: 50 PodCertificateRequests made by node n1
// (Node authorizer and NodeRestriction on) are pending when the operator
// process starts; it is SIGKILLed while it answers them and started again.
// A watch opened before the first start records every change to every
// request: each must get exactly one status write (Issued), its chain never
// replaced; and a third start, with everything answered, writes nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CoreV1Api, CustomObjectsApi, Watch } from '@kubernetes/client-node';
import { createNode, startTestEnv, type TestEnv, type TestNode } from '../support/env.ts';
import { ensureNamespace, eventually, OPERATOR_NAMESPACE, spawnOperator } from '../support/operator.ts';
import { DEFAULT_TRUST_DOMAIN } from '../support/suite.ts';
import { api } from '../support/objects.ts';
import { createPodCertificateRequest, type PodCertificateSource } from '../support/pod-kubelet.ts';
import type { PodCertificateRequest } from '../../src/api/types.ts';
import { FINALIZER_POD_CERTIFICATE, POD_CERTIFICATE_AGENT_ANNOTATION, SIGNER_NAME } from '../../src/api/group.ts';

const N = 50;
const PCR = { group: 'certificates.k8s.io', version: 'v1', plural: 'podcertificaterequests' } as const;
const TERMINAL = ['Issued', 'Denied', 'Failed'];

let env: TestEnv;
let a: ReturnType<typeof api>;
let n1: TestNode;
let ns: string;
let operator: ReturnType<typeof spawnOperator> | undefined;
let stopWatch: (() => void) | undefined;

before(async () => {
  env = await startTestEnv({ nodeAuthorizer: true });
  a = api(env.kc);
  await ensureNamespace(env.kc, OPERATOR_NAMESPACE);
  await a.createTrustDomain('default', DEFAULT_TRUST_DOMAIN);
  n1 = await createNode(env, 'n1');
  ns = await env.namespace('pcr-restart');
  await a.createIdentity(ns, 'worker', { delivery: 'PodCertificate', duration: '24h' });
});

after(async () => {
  stopWatch?.();
  await operator?.kill();
  await env?.stop();
});

/** Everything the watch saw of one request. */
interface Seen { statuses: string[]; chains: Set<string>; events: number; issuedAt?: number; onRecordUnanswered: boolean }

/** Watches the namespace's requests from `resourceVersion` on, resuming after a dropped connection. */
function watchRequests(resourceVersion: string): { seen: Map<string, Seen>; total(): number; stop(): void } {
  const seen = new Map<string, Seen>();
  let rv = resourceVersion;
  let total = 0;
  let stopped = false;
  let abort: (() => void) | undefined;
  const start = async () => {
    const req = await new Watch(env.kc).watch(`/apis/${PCR.group}/${PCR.version}/namespaces/${ns}/${PCR.plural}`, { resourceVersion: rv, allowWatchBookmarks: true }, (type, obj: PodCertificateRequest) => {
      rv = obj.metadata.resourceVersion ?? rv;
      if (type === 'BOOKMARK') return;
      total++;
      const name = obj.metadata.name!;
      const s = seen.get(name) ?? { statuses: [], chains: new Set<string>(), events: 0, onRecordUnanswered: false };
      seen.set(name, s);
      s.events++;
      const status = JSON.stringify(obj.status ?? {});
      if (s.statuses.at(-1) !== status) s.statuses.push(status);
      if (obj.status?.certificateChain) s.chains.add(obj.status.certificateChain);
      if (obj.status?.conditions?.some((c) => c.type === 'Issued')) s.issuedAt ??= Date.now();
      s.onRecordUnanswered = !!obj.metadata.finalizers?.includes(FINALIZER_POD_CERTIFICATE) && !obj.status?.conditions?.length;
    }, () => { if (!stopped) void start(); });
    abort = () => req.abort();
  };
  void start();
  return { seen, total: () => total, stop: () => { stopped = true; abort?.(); } };
}

/** The operator's JSON log lines. */
const logLines = (output: string) => output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; port?: number });

/** Status writes: each change of status after the first (empty) one the watch saw. */
const statusWrites = (s: Seen) => s.statuses.length - 1;

const listRequests = async () =>
  ((await a.custom.listNamespacedCustomObject({ ...PCR, namespace: ns })) as { items: PodCertificateRequest[] }).items;

test(`a SIGKILLed signer answers each of ${N} pending requests exactly once, and a restart over answered ones writes nothing`, async (t) => {
  const core = env.kc.makeApiClient(CoreV1Api);
  const sa = await core.readNamespacedServiceAccount({ namespace: ns, name: 'worker' });
  const source: PodCertificateSource = {
    signerName: SIGNER_NAME, keyType: 'ECDSAP256', maxExpirationSeconds: 86_400, credentialBundlePath: 'credential-bundle.pem',
    userAnnotations: { [POD_CERTIFICATE_AGENT_ANNOTATION]: 'worker' },
  };
  const pods = await Promise.all(Array.from({ length: N }, (_, i) => core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: { name: `worker-${i}` },
      spec: {
        nodeName: 'n1', serviceAccountName: 'worker', automountServiceAccountToken: false,
        containers: [{ name: 'agent', image: 'registry.invalid/agent', volumeMounts: [{ name: 'identity', mountPath: '/var/run/agent-identity' }] }],
        volumes: [{ name: 'identity', projected: { sources: [{ podCertificate: source } as never] } }],
      },
    },
  })));

  const listed = await a.custom.listNamespacedCustomObject({ ...PCR, namespace: ns }) as { metadata: { resourceVersion: string } };
  const watch = watchRequests(listed.metadata.resourceVersion);
  stopWatch = watch.stop;

  // As the node, one request per pod (the Node authorizer learns of new pods from a watch: a moment of 403 is normal).
  for (const pod of pods) {
    await eventually(() => createPodCertificateRequest(n1.kc, { pod, serviceAccountUID: sa.metadata!.uid!, nodeUID: n1.node.metadata!.uid!, source }), { what: `request for ${pod.metadata!.name}` });
  }
  await eventually(async () => watch.seen.size === N, { what: 'the watch saw every request' });
  assert.ok((await listRequests()).every((p) => !p.status?.conditions?.length), 'all pending');

  // The first operator: a lower QPS spreads the answers over seconds, so the kill lands among them.
  const started = Date.now();
  operator = spawnOperator(env.kubeconfigPath, ['--qps=10']);
  const issued = () => [...watch.seen.values()].filter((s) => s.issuedAt !== undefined).length;
  // Killed after 10 answers, at best between a request's ledger record and its answer (the retry path), else at 15.
  const between = () => [...watch.seen.values()].some((x) => x.onRecordUnanswered);
  await eventually(async () => (issued() >= 10 && between()) || issued() >= 15, { timeoutMs: 60_000, intervalMs: 5, what: `10 Issued; operator said: ${operator!.output().slice(-2000)}` });
  await operator.kill();
  const atKill = issued();
  const recordedOnly = (await listRequests()).filter((p) => p.metadata.finalizers?.includes(FINALIZER_POD_CERTIFICATE) && !p.status?.conditions?.length).length;
  t.diagnostic(`first operator: start → SIGKILL ${Date.now() - started} ms, with ${atKill}/${N} Issued and ${recordedOnly} on record (ledger finalizer) without an answer`);
  assert.ok(atKill < N, `answers were still in flight at the kill (${atKill} of ${N} Issued)`);

  const restarted = Date.now();
  operator = spawnOperator(env.kubeconfigPath, ['--qps=10']);
  await eventually(async () => issued() === N, { timeoutMs: 60_000, what: `all ${N} Issued` });
  t.diagnostic(`second operator: start → all ${N} Issued ${Date.now() - restarted} ms`);

  const requests = await listRequests();
  assert.equal(requests.length, N);
  for (const p of requests) {
    const name = p.metadata.name!;
    const terminal = p.status?.conditions?.filter((c) => TERMINAL.includes(c.type)) ?? [];
    assert.deepEqual(terminal.map((c) => [c.type, c.status]), [['Issued', 'True']], `${name}: exactly one terminal condition, Issued`);
    const s = watch.seen.get(name)!;
    assert.equal(statusWrites(s), 1, `${name}: one status write, saw ${JSON.stringify(s.statuses.map((x) => JSON.parse(x) as unknown))}`);
    assert.equal(s.chains.size, 1, `${name}: its certificate chain never changed`);
    assert.equal([...s.chains][0], p.status!.certificateChain);
  }

  // Everything answered: a third start writes nothing to the requests.
  await operator.kill();
  const before = new Map(requests.map((p) => [p.metadata.name!, p.metadata.resourceVersion!]));
  const eventsBefore = watch.total();
  operator = spawnOperator(env.kubeconfigPath);
  await eventually(async () => operator!.output().includes('caches synced; reconciling'), { timeoutMs: 30_000, what: 'the third operator reconciling' });
  // Every request was queued before that line; once the signer's queue is empty again, each was
  // reconciled, and a write would show below.
  const { port } = logLines(operator.output()).find((l) => l.msg === 'starting')!;
  await eventually(async () => /^agentidentity_workqueue_depth\{controller="podcertificaterequest"\} 0$/m.test(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()),
    { timeoutMs: 30_000, what: "the third operator's signer queue to drain" });
  assert.ok(operator.proc.exitCode === null, `the third operator is still running: ${operator.output().slice(-2000)}`);
  const after = new Map((await listRequests()).map((p) => [p.metadata.name!, p.metadata.resourceVersion!]));
  assert.deepEqual(after, before, 'no request changed');
  assert.equal(watch.total(), eventsBefore, 'the watch saw no write');
});
