// `make bench`: throughput and latency, measured and printed (never asserted:
// these machines are shared and noisy, so read medians and ratios).
//   1. pure issuance: key + leaf signing per algorithm, in-process
//   2. end to end: N AgentIdentities created at once on a local control plane,
//      time from create to Ready (median, p90, max) and identities per second
//   3. a restart over those N identities: time to caches synced and queues idle, and writes made
import { KubeConfig } from '@kubernetes/client-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startControlPlane } from '../test/support/controlplane.ts';
import { runKubectl } from '../test/support/env.ts';
import { api, isReady } from '../test/support/objects.ts';
import { runOperator, eventually, ensureNamespace } from '../test/support/operator.ts';
import { createRoot, createIntermediate, loadCA } from '../src/pki/ca.ts';
import { generateKeyPair } from '../src/pki/keys.ts';
import { issueLeaf } from '../src/pki/leaf.ts';
import { SpiffeID } from '../src/pki/spiffeid.ts';
import type { KeyAlgorithm } from '../src/api/types.ts';

const N = Number(process.env.BENCH_IDENTITIES ?? 200);
const ROUNDS = 5;
const ROOT = resolve(import.meta.dirname, '..');
const q = (xs: number[], p: number) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]!; };
const ms = (x: number) => `${x.toFixed(1)} ms`;

console.log(`# agent-identity-operator benchmark (${new Date().toISOString()}, node ${process.version})`);

// 1. Pure issuance.
const now = new Date();
const root = await createRoot({ trustDomain: 'bench.local', algorithm: 'ECDSA', validityMs: 3600_000 * 24, now });
const rootCA = await loadCA(root.certificatePem, root.privateKeyPem);
const int = await createIntermediate(rootCA, { trustDomain: 'bench.local', algorithm: 'ECDSA', validityMs: 3600_000 * 12, now });
const signer = await loadCA(int.certificatePem, int.privateKeyPem);
console.log('\n## issuance in-process (key generation + signing), median of rounds');
for (const [alg, size, count] of [['ECDSA', 256, 200], ['Ed25519', 0, 200], ['RSA', 2048, 10]] as Array<[KeyAlgorithm, number, number]>) {
  const rates: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    for (let i = 0; i < count; i++) {
      const key = await generateKeyPair(alg, size);
      await issueLeaf(signer, { spiffeID: SpiffeID.parse(`spiffe://bench.local/ns/b/agent/a${i}`), dnsNames: [], publicKey: key.publicKey, durationMs: 3600_000, now });
    }
    rates.push(count / ((performance.now() - t0) / 1000));
  }
  console.log(`${alg}${size ? `-${size}` : ''}: ${q(rates, 0.5).toFixed(0)} leaves/s (min ${Math.min(...rates).toFixed(0)}, max ${Math.max(...rates).toFixed(0)})`);
}

// 2 and 3. End to end on a local control plane.
const dir = mkdtempSync(join(tmpdir(), 'aio-bench-'));
const cp = await startControlPlane({ dir });
try {
  const kubectl = (...args: string[]) => runKubectl(cp.bins.kubectl, cp.kubeconfigPath, args);
  await kubectl('apply', '--server-side', '-f', join(ROOT, 'crds'));
  await kubectl('wait', '--for=condition=Established', 'crd/agentidentities.agentidentity.dev', 'crd/trustdomains.agentidentity.dev');
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  const a = api(kc);
  await ensureNamespace(kc, 'bench');
  await a.createTrustDomain('default', { trustDomain: 'cluster.local', ca: { selfSigned: {} } });
  let op = await runOperator(kc, { qps: 50, concurrency: 4 });
  await eventually(async () => isReady(await a.getTrustDomain('default')), { what: 'TrustDomain Ready' });

  console.log(`\n## end to end: ${N} AgentIdentities created at once (operator --qps=50 --concurrency=4)`);
  const created = new Map<string, number>();
  const ready = new Map<string, number>();
  const t0 = Date.now();
  await Promise.all(Array.from({ length: N }, async (_, i) => { await a.createIdentity('bench', `a${i}`); created.set(`a${i}`, Date.now()); }));
  while (ready.size < N && Date.now() - t0 < 300_000) {
    for (const i of (await a.listIdentities('bench')).items) if (isReady(i) && !ready.has(i.metadata.name!)) ready.set(i.metadata.name!, Date.now());
    await new Promise((r) => setTimeout(r, 50));
  }
  const total = (Date.now() - t0) / 1000;
  const lat = [...ready].map(([n, t]) => t - created.get(n)!);
  console.log(`Ready: ${ready.size}/${N} in ${total.toFixed(1)} s → ${(ready.size / total).toFixed(1)} identities/s`);
  console.log(`create → Ready: median ${ms(q(lat, 0.5))}, p90 ${ms(q(lat, 0.9))}, max ${ms(Math.max(...lat))}`);
  const issueHist = (await op.metrics.issuanceDuration.get()).values;
  const sum = issueHist.find((v) => v.metricName?.endsWith('_sum'))?.value ?? 0;
  const count = issueHist.find((v) => v.metricName?.endsWith('_count'))?.value ?? 1;
  console.log(`issuance (key + sign + Secret write) mean ${ms((sum / count) * 1000)} over ${count}`);

  console.log(`\n## restart over ${N} Ready identities`);
  await op.idle();
  await op.stop();
  const rvs = async () => JSON.stringify((await a.listIdentities('bench')).items.map((i) => i.metadata.resourceVersion));
  const before = await rvs();
  const t1 = performance.now();
  op = await runOperator(kc, { qps: 50, concurrency: 4 });
  const synced = performance.now() - t1;
  await op.idle();
  const idle = performance.now() - t1;
  console.log(`caches synced in ${ms(synced)}, queues idle after ${ms(idle)}; identities changed: ${before === (await rvs()) ? 0 : 'some'}`);
  await op.stop();
} finally {
  await cp.stop();
  rmSync(dir, { recursive: true, force: true });
}
