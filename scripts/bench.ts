// `make bench`: throughput and latency, measured and printed (never asserted:
// these machines are shared and noisy, so read medians and ratios).
//   1. pure issuance: key + leaf signing per algorithm, in-process
//   2. end to end: N AgentIdentities created at once on a local control plane,
//      time from create to Ready (median, p90, max) and identities per second
//   2b. pod certificates: N pods bound to node n1, and N PodCertificateRequests
//      created at once as that node (Node authorizer and NodeRestriction on),
//      PCRs answered per second and create → Issued (median, p99), printed
//      next to the Secret numbers of 2
//   3. a restart over those N identities and N requests: time to caches synced and queues idle, and writes made
//   4. the admission webhook of a running operator process (real API server behind its lookups):
//      RSS before and after 10,000 reviews (half look up an AgentIdentity), then p50/p99
//      admission latency under open-loop load at 200 reviews/s for 10 s
import { KubeConfig } from '@kubernetes/client-node';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane } from '../test/support/controlplane.ts';
import { createNode, installCRDs } from '../test/support/env.ts';
import { createPodCertificateRequest, type PodCertificateSource } from '../test/support/pod-kubelet.ts';
import { api, isReady } from '../test/support/objects.ts';
import { runOperator, eventually, ensureNamespace, spawnOperator, OPERATOR_NAMESPACE } from '../test/support/operator.ts';
import { createServiceAccounts, markIssued, podManifest } from '../test/support/webhook.ts';
import { review, send, webhookCA } from '../test/support/admission-client.ts';
import { createRoot, createIntermediate, loadCA } from '../src/pki/ca.ts';
import { generateKeyPair } from '../src/pki/keys.ts';
import { issueLeaf } from '../src/pki/leaf.ts';
import { SpiffeID } from '../src/pki/spiffeid.ts';
import type { KeyAlgorithm, PodCertificateRequest } from '../src/api/types.ts';
import { POD_CERTIFICATE_AGENT_ANNOTATION, SIGNER_NAME } from '../src/api/group.ts';
import { imageEntry, imageEnv, imageNodeFlags } from './bench-presets.ts';

const N = Number(process.env.BENCH_IDENTITIES ?? 200);
const ROUNDS = 5;
const q = (xs: number[], p: number) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]!; };
const ms = (x: number) => `${x.toFixed(1)} ms`;

/**
 * Creates n objects at once, polling for their answers all the while (not only
 * once every create returned, which would add the create burst to the first
 * answers). Latency counts from when an object's create returned; the rate is
 * answers over the time from the first create to the last answer.
 */
async function createAndAwait(n: number, create: (i: number) => Promise<string>, answers: () => Promise<Array<{ name: string; answer?: string }>>) {
  const created = new Map<string, number>();
  const answered = new Map<string, { at: number; answer: string }>();
  const t0 = Date.now();
  let failure: unknown;
  let creating = true;
  const creates = Promise.all(Array.from({ length: n }, async (_, i) => void created.set(await create(i), Date.now())))
    .catch((e: unknown) => void (failure = e)).finally(() => (creating = false));
  while ((creating || answered.size < created.size) && failure === undefined && Date.now() - t0 < 300_000) {
    for (const o of await answers()) if (o.answer && !answered.has(o.name)) answered.set(o.name, { at: Date.now(), answer: o.answer });
    await new Promise((r) => setTimeout(r, 50));
  }
  await creates;
  if (failure !== undefined) throw failure;
  const seconds = (Math.max(t0, ...[...answered.values()].map((x) => x.at)) - t0) / 1000;
  const latencies = (answer: string) => [...answered].filter(([, x]) => x.answer === answer).map(([name, x]) => Math.max(0, x.at - created.get(name)!));
  return { answered: answered.size, seconds, rate: answered.size / seconds, latencies };
}

console.log(`# agent-identity-operator benchmark (${new Date().toISOString()}, node ${process.version})`);

// 1. Pure issuance.
const now = new Date();
const root = await createRoot({ trustDomain: 'bench.local', algorithm: 'ECDSA', validityMs: 3600_000 * 24, now });
const rootCA = await loadCA(root.certificatePem, root.privateKeyPem);
const int = await createIntermediate(rootCA, { trustDomain: 'bench.local', algorithm: 'ECDSA', validityMs: 3600_000 * 12, now });
const signer = await loadCA(int.certificatePem, int.privateKeyPem);
console.log('\n## issuance in-process (key generation + signing), median of rounds; CPU is the whole process (key generation runs on the thread pool)');
for (const [alg, size, count] of [['ECDSA', 256, 2000], ['Ed25519', 0, 2000], ['RSA', 2048, 10]] as Array<[KeyAlgorithm, number, number]>) {
  const rates: number[] = [];
  const cpuPerLeaf: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < count; i++) {
      const key = await generateKeyPair(alg, size);
      await issueLeaf(signer, { spiffeID: SpiffeID.parse(`spiffe://bench.local/ns/b/agent/a${i}`), dnsNames: [], publicKey: key.publicKey, durationMs: 3600_000, now });
    }
    rates.push(count / ((performance.now() - t0) / 1000));
    const cpu = process.cpuUsage(cpu0);
    cpuPerLeaf.push((cpu.user + cpu.system) / count);
  }
  console.log(`${alg}${size ? `-${size}` : ''}: ${q(rates, 0.5).toFixed(0)} leaves/s (min ${Math.min(...rates).toFixed(0)}, max ${Math.max(...rates).toFixed(0)}), CPU ${q(cpuPerLeaf, 0.5).toFixed(0)} µs per leaf`);
}

// 2 and 3. End to end on a local control plane.
const dir = mkdtempSync(join(tmpdir(), 'aio-bench-'));
const cp = await startControlPlane({ dir, nodeAuthorizer: true });
try {
  await installCRDs(cp.bins.kubectl, cp.kubeconfigPath);
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  const a = api(kc);
  await ensureNamespace(kc, 'bench');
  await a.createTrustDomain('default', { trustDomain: 'cluster.local', ca: { selfSigned: {} } });
  let op = await runOperator(kc, { qps: 50, concurrency: 4 });
  await eventually(async () => isReady(await a.getTrustDomain('default')), { what: 'TrustDomain Ready' });

  console.log(`\n## end to end: ${N} AgentIdentities created at once (operator --qps=50 --concurrency=4)`);
  const secrets = await createAndAwait(N, async (i) => (await a.createIdentity('bench', `a${i}`)).metadata.name!,
    async () => (await a.listIdentities('bench')).items.map((i) => ({ name: i.metadata.name!, answer: isReady(i) ? 'Ready' : undefined })));
  const lat = secrets.latencies('Ready');
  console.log(`Ready: ${lat.length}/${N} in ${secrets.seconds.toFixed(1)} s → ${secrets.rate.toFixed(1)} identities/s`);
  console.log(`create → Ready: median ${ms(q(lat, 0.5))}, p90 ${ms(q(lat, 0.9))}, max ${ms(Math.max(...lat))}`);
  const issueHist = (await op.metrics.issuanceDuration.get()).values;
  const sum = issueHist.find((v) => v.metricName?.endsWith('_sum'))?.value ?? 0;
  const count = issueHist.find((v) => v.metricName?.endsWith('_count'))?.value ?? 1;
  console.log(`issuance (key + sign + Secret write) mean ${ms((sum / count) * 1000)} over ${count}`);

  // 2b. The same N as pod certificates: the node makes the keys, the signer answers.
  console.log(`\n## end to end: ${N} PodCertificateRequests created at once by node n1 (same operator)`);
  await ensureNamespace(kc, 'bench-pcr');
  await a.createIdentity('bench-pcr', 'pcr', { delivery: 'PodCertificate', duration: '24h' });
  await eventually(async () => isReady(await a.getIdentity('bench-pcr', 'pcr')), { what: 'AgentIdentity pcr Ready' });
  const n1 = await createNode({ kc, controlPlane: cp }, 'n1');
  const saUID = (await a.core.readNamespacedServiceAccount({ namespace: 'bench-pcr', name: 'pcr' })).metadata!.uid!;
  // NodeRestriction lets a node ask only for a pod bound to it that mounts a podCertificate source naming the signer.
  const source: PodCertificateSource = { signerName: SIGNER_NAME, keyType: 'ECDSAP256', maxExpirationSeconds: 86_400, credentialBundlePath: 'credential-bundle.pem', userAnnotations: { [POD_CERTIFICATE_AGENT_ANNOTATION]: 'pcr' } };
  const pods = await Promise.all(Array.from({ length: N }, (_, i) => a.core.createNamespacedPod({ namespace: 'bench-pcr', body: {
    metadata: { name: `p${i}` },
    spec: { nodeName: 'n1', serviceAccountName: 'pcr', automountServiceAccountToken: false, containers: [{ name: 'agent', image: 'registry.invalid/agent' }],
      volumes: [{ name: 'identity', projected: { sources: [{ podCertificate: source }] } }] },
  } })));
  const listPCRs = async () => (await a.custom.listNamespacedCustomObject({ group: 'certificates.k8s.io', version: 'v1', plural: 'podcertificaterequests', namespace: 'bench-pcr' }) as { items: PodCertificateRequest[] }).items;
  const pcrs = await createAndAwait(N,
    async (i) => (await createPodCertificateRequest(n1.kc, { pod: pods[i]!, serviceAccountUID: saUID, nodeUID: n1.node.metadata!.uid!, source })).request.metadata.name!,
    async () => (await listPCRs()).map((p) => ({ name: p.metadata.name!, answer: p.status?.conditions?.find((x) => x.status === 'True')?.type })));
  const issuedLat = pcrs.latencies('Issued');
  console.log(`answered: ${pcrs.answered}/${N} in ${pcrs.seconds.toFixed(1)} s → ${pcrs.rate.toFixed(1)} PCRs/s (${issuedLat.length} Issued, ${pcrs.answered - issuedLat.length} Denied or Failed)`);
  console.log(`create → Issued: median ${ms(q(issuedLat, 0.5))}, p90 ${ms(q(issuedLat, 0.9))}, p99 ${ms(q(issuedLat, 0.99))}, max ${ms(Math.max(...issuedLat))}`);
  const signHist = (await op.metrics.podCertificateIssuanceDuration.get()).values;
  const signSum = signHist.find((v) => v.metricName?.endsWith('_sum'))?.value ?? 0;
  const signCount = signHist.find((v) => v.metricName?.endsWith('_count'))?.value ?? 1;
  console.log(`issuance (sign + ledger labels + status write) mean ${ms((signSum / signCount) * 1000)} over ${signCount}`);
  console.log(`\n## Secret vs pod certificate, ${N} each (operator --qps=50 --concurrency=4)`);
  console.log(`Secret:         ${secrets.rate.toFixed(1).padStart(6)} identities/s, create → Ready   median ${ms(q(lat, 0.5))}, p99 ${ms(q(lat, 0.99))}`);
  console.log(`PodCertificate: ${pcrs.rate.toFixed(1).padStart(6)} PCRs/s,       create → Issued  median ${ms(q(issuedLat, 0.5))}, p99 ${ms(q(issuedLat, 0.99))}`);

  console.log(`\n## restart over ${N} Ready identities and ${pcrs.answered} answered PodCertificateRequests`);
  await op.idle();
  await op.stop();
  const rvs = async () => JSON.stringify([...(await a.listIdentities('bench')).items, ...await listPCRs()].map((i) => i.metadata.resourceVersion));
  const before = await rvs();
  const t1 = performance.now();
  op = await runOperator(kc, { qps: 50, concurrency: 4 });
  const synced = performance.now() - t1;
  await op.idle();
  const idle = performance.now() - t1;
  console.log(`caches synced in ${ms(synced)}, queues idle after ${ms(idle)}; identities and requests changed: ${before === (await rvs()) ? 0 : 'some'}`);
  await op.stop();

  // 4. The webhook, in a real operator process.
  await ensureNamespace(kc, 'bench-webhook');
  await createServiceAccounts(kc, 'bench-webhook', ['planner']);
  await a.createIdentity('bench-webhook', 'planner', { serviceAccountName: 'planner' });
  await markIssued(kc, 'bench-webhook', 'planner', 'spiffe://cluster.local/ns/bench-webhook/agent/planner');
  const port = await new Promise<number>((res) => { const s = createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => res(p)); }); });
  // With the image's Node flags, as users run it: V8's default young generation alone grows by tens of MB under
  // this load and is kept (issue 20 measured 165 → 252 MiB that way, of which 2.8 MB was live after a GC).
  const proc = spawnOperator(cp.kubeconfigPath, [`--webhook-port=${port}`, '--webhook-host=127.0.0.1', '--log-level=warn'], { ...imageEnv(), NODE_OPTIONS: imageNodeFlags().join(' ') }, imageEntry());
  try {
    const servername = `agent-identity-operator-webhook.${OPERATOR_NAMESPACE}.svc`;
    const ca = await eventually(() => webhookCA(kc, OPERATOR_NAMESPACE), { what: 'the webhook CA', timeoutMs: 60_000 });
    // Keep-alive connections, as the API server holds them.
    const agent = new Agent({ keepAlive: true, maxSockets: 64 });
    await eventually(async () => (await send(port, ca, '/readyz', { method: 'GET', servername, agent })).status === 200, { what: 'webhook serving', timeoutMs: 60_000 });
    const rssMiB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${proc.proc.pid}/status`, 'utf8'))![1]) / 1024;
    // Half ask for the identity (a GET per review), half are labelled-less pods the mutating webhook waves through.
    const bodies = [
      review(podManifest('p', { agent: 'planner', serviceAccountName: 'planner' }), 'bench-webhook'),
      review(podManifest('q', { serviceAccountName: 'planner' }), 'bench-webhook'),
    ];
    const one = async (i: number) => {
      const r = await send(port, ca, '/mutate', { body: bodies[i % 2]!, servername, agent });
      if (r.status !== 200) throw new Error(`review answered ${r.status}`);
    };

    console.log('\n## admission webhook (operator process, real API server behind the lookups)');
    const rss0 = rssMiB();
    const REVIEWS = 10_000;
    for (let next = 0; next < REVIEWS;) await Promise.all(Array.from({ length: Math.min(32, REVIEWS - next) }, () => one(next++)));
    const rss1 = rssMiB();
    await new Promise((r) => setTimeout(r, 5000));
    console.log(`RSS: ${rss0.toFixed(0)} MiB before, ${rss1.toFixed(0)} MiB after ${REVIEWS} reviews (half with an AgentIdentity lookup), ${rssMiB().toFixed(0)} MiB 5 s later`);

    // Open loop: a request is sent every 5 ms whatever the earlier ones are doing; latency counts from when it was due.
    const RATE = 200;
    const SECONDS = 10;
    const openLoop = async (send1: (i: number) => Promise<void>) => {
      const latencies: number[] = [];
      let failed = 0;
      const t0 = performance.now();
      const inFlight: Promise<void>[] = [];
      for (let i = 0; i < RATE * SECONDS; i++) {
        const due = t0 + (i * 1000) / RATE;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        // A timer may fire a fraction of a millisecond early: what was sent before it was due counts from when it was sent.
        const sent = Math.max(due, performance.now());
        inFlight.push(send1(i).then(() => void latencies.push(performance.now() - sent), () => void failed++));
      }
      await Promise.all(inFlight);
      const achieved = (RATE * SECONDS) / ((performance.now() - t0) / 1000);
      return `(achieved ${achieved.toFixed(0)}/s): p50 ${ms(q(latencies, 0.5))}, p99 ${ms(q(latencies, 0.99))}, max ${ms(Math.max(...latencies))}; ${failed} failed`;
    };
    console.log(`open loop at ${RATE} reviews/s for ${SECONDS} s ${await openLoop(one)}; RSS ${rssMiB().toFixed(0)} MiB`);
    // Where the time goes: the server alone (/healthz), a review that needs no lookup, and one that makes its live GET.
    const answered = async (path: string, body?: string) => { if ((await send(port, ca, path, { method: body ? 'POST' : 'GET', ...(body ? { body } : {}), servername, agent })).status !== 200) throw new Error(path); };
    console.log(`  /healthz alone ${await openLoop(() => answered('/healthz'))}`);
    console.log(`  reviews with no lookup ${await openLoop(() => answered('/mutate', bodies[1]))}`);
    console.log(`  reviews with an AgentIdentity GET ${await openLoop(() => answered('/mutate', bodies[0]))}`);
    agent.destroy();
  } finally {
    await proc.kill();
  }
} finally {
  await cp.stop();
  rmSync(dir, { recursive: true, force: true });
}
