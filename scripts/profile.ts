// Idle memory and CPU of an operator process after a burst of issuances:
// N1 AgentIdentities (with their ServiceAccounts) created at once, all Ready,
// 60 s idle, then RSS, heap and CPU read from the process's own /metrics and
// /proc; then up to N2 and again, and a heap snapshot written (SIGUSR2).
// Usage: node scripts/profile.ts [N1=300] [N2=1000] [idle seconds=60] [out dir]
import { KubeConfig } from '@kubernetes/client-node';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startControlPlane } from '../test/support/controlplane.ts';
import { installCRDs } from '../test/support/env.ts';
import { api, isReady } from '../test/support/objects.ts';
import { eventually, ensureNamespace, spawnOperator, OPERATOR_NAMESPACE } from '../test/support/operator.ts';

const [n1 = '300', n2 = '1000', idle = '60', outArg] = process.argv.slice(2);
const out = resolve(outArg ?? join(tmpdir(), 'aio-profile-out'));
mkdirSync(out, { recursive: true });
const freePort = () => new Promise<number>((r) => { const s = createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => r(p)); }); });

const dir = mkdtempSync(join(tmpdir(), 'aio-profile-'));
const cp = await startControlPlane({ dir });
const port = await freePort();
let op: ReturnType<typeof spawnOperator> | undefined;
try {
  await installCRDs(cp.bins.kubectl, cp.kubeconfigPath);
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  const a = api(kc);
  await ensureNamespace(kc, OPERATOR_NAMESPACE);
  await ensureNamespace(kc, 'prof');
  await a.createTrustDomain('default', { trustDomain: 'cluster.local', ca: { selfSigned: {} } });
  // PROFILE_NODE_OPTIONS and PROFILE_ENV (JSON) try runtime settings, e.g. '{"MALLOC_ARENA_MAX":"2"}'; PROFILE_NODE_OPTIONS='--cpu-prof --cpu-prof-dir=DIR' writes a CPU profile.
  op = spawnOperator(cp.kubeconfigPath, [`--http-port=${port}`, '--qps=50', '--log-level=warn'], {
    NODE_OPTIONS: `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${out} ${process.env.PROFILE_NODE_OPTIONS ?? ''}`, ...JSON.parse(process.env.PROFILE_ENV ?? '{}') as Record<string, string>,
  });
  const pid = op.proc.pid!;
  await eventually(async () => isReady(await a.getTrustDomain('default')), { what: 'TrustDomain Ready', timeoutMs: 60_000 });

  const metric = async (name: string) => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return Number(text.split('\n').find((l) => l.startsWith(`${name} `))?.split(' ')[1] ?? NaN);
  };
  const clockTicks = 100; // USER_HZ on Linux
  const cpuSeconds = () => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' '); return (Number(f[11]) + Number(f[12])) / clockTicks; };
  const rssMB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
  const anonMB = () => Number(/RssAnon:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
  const MB = (b: number) => (b / 1048576).toFixed(1);

  let have = 0;
  for (const n of [Number(n1), Number(n2)]) {
    const cpu0 = cpuSeconds();
    const t0 = Date.now();
    for (let i = have; i < n; i += 50) await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, j) => a.createIdentity('prof', `a${i + j}`)));
    await eventually(async () => (await a.listIdentities('prof')).items.filter(isReady).length === n, { what: `${n} Ready`, timeoutMs: 600_000, intervalMs: 1000 });
    const busy = cpuSeconds() - cpu0;
    const readyS = (Date.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, Number(idle) * 1000));
    const snapshotsBefore = new Set(readdirSync(out));
    const row = {
      identities: n, readySeconds: readyS.toFixed(1), cpuSecondsPer100: ((busy / (n - have)) * 100).toFixed(2),
      rssMB: rssMB().toFixed(1), anonMB: anonMB().toFixed(1), heapUsedMB: MB(await metric('agentidentity_nodejs_heap_size_used_bytes')), heapTotalMB: MB(await metric('agentidentity_nodejs_heap_size_total_bytes')),
      externalMB: MB(await metric('agentidentity_nodejs_external_memory_bytes')),
    };
    console.log(JSON.stringify(row));
    // Writing a snapshot grows RSS by hundreds of MB for good: only after the last step.
    if (n === Number(n2)) {
      process.kill(pid, 'SIGUSR2');
      const snap = await eventually(async () => readdirSync(out).find((f) => f.endsWith('.heapsnapshot') && !snapshotsBefore.has(f)), { what: 'heap snapshot', timeoutMs: 120_000, intervalMs: 500 });
      // Written once complete: wait for its size to settle before renaming.
      let size = -1;
      await eventually(async () => { const s = readFileSync(join(out, snap)).length; const done = s === size && s > 0; size = s; return done; }, { intervalMs: 2000, timeoutMs: 120_000 });
      renameSync(join(out, snap), join(out, `idle-${n}.heapsnapshot`));
    }
    have = n;
  }
} finally {
  // SIGTERM first: a clean exit writes what --cpu-prof (in PROFILE_NODE_OPTIONS) gathered.
  op?.proc.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 5000));
  await op?.kill();
  await cp.stop();
  rmSync(dir, { recursive: true, force: true });
}
