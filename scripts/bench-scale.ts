// `make bench-scale`: the operator at N identities on a fresh local control
// plane (issue 20). Setup, outside every window: the CRDs and admission
// policies (bench-presets.ts), N ServiceAccounts and 5 unrelated Secrets and
// ConfigMaps per identity (not labelled: the operator must neither list nor
// cache them). Then, printed and written, never asserted:
//   burst     N AgentIdentities, each with a 2-peer policy, created as fast as the API server takes
//             them: all Ready after, create → Ready p50/p99, and at each checkpoint (1k, 5k, 10k and N)
//             operator CPU per 100 issuances since the last one, RSS, V8 heap used, and the live heap
//             (heap used after a full GC, through the operator's inspector); again after
//             --idle-seconds idle;
//   reads     what the validating webhook reads about identities per pod review (field-selector lists and
//             a get), against the LIST of the namespace releases before made;
//   restart   the operator killed and started over the N Ready identities: until /readyz (caches
//             synced), until its work queues are first empty, and API writes (Leases aside; should be 0);
//   rotation  a root rotation (the TrustDomain's rotate annotation, with short rotation flags): how
//             long until only the new root is left, and mTLS handshakes between sampled policy peers
//             from their Secrets as it goes (failed ones should be 0), then until the queues are empty;
//   steady    --steady=RATExSECONDS creates at a fixed rate: create → Ready p50/p99.
// Writes results.json and scale.svg (RSS and CPU per 100 issuances against N) to --out.
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect, createServer as createTlsServer } from 'node:tls';
import { join, resolve } from 'node:path';
import { CoreV1Api, CustomObjectsApi, PatchStrategy, Watch, setHeaderOptions } from '@kubernetes/client-node';
import { resolveBinaries } from '../test/support/controlplane.ts';
import { agentIdentityOperator as preset, type Controller } from './bench-presets.ts';
import { cluster, createRetrying, freePort, procText, scrape, sleep } from './bench-cluster.ts';
import { cpuTicks, quantile, requestTotals, rssMiB, subtract } from './bench-stats.ts';
import { lineChart, stack } from './bench-chart.ts';
import type { AgentIdentity, Secret, TrustDomain } from '../src/api/types.ts';

const USAGE = `usage: node scripts/bench-scale.ts [--n=10000] [--idle-seconds=60] [--steady=50x20] [--skip=restart,rotation,steady] [--snapshots] [--out=DIR]
  --n             AgentIdentities in the burst (checkpoints at 1k, 5k, 10k below it, and at n)
  --idle-seconds  idle wait after the burst before RSS and heap are read again
  --steady        RATExSECONDS: identities created at RATE per second for SECONDS after the rest
  --skip          phases left out, comma-separated: restart, rotation, steady
  --snapshots     also write a heap snapshot (after a full GC) at each checkpoint and after the idle wait
  --out           where results.json, scale.svg and snapshots go (default .local/bench-scale/<time>)
AIO_FLAGS adds operator flags, as for make bench-compare.`;

function options() {
  try {
    const { values } = parseArgs({ options: { n: { type: 'string' }, 'idle-seconds': { type: 'string' }, steady: { type: 'string' }, out: { type: 'string' }, snapshots: { type: 'boolean' }, skip: { type: 'string' }, help: { type: 'boolean' } }, strict: true, allowPositionals: false });
    if (values.help) { console.log(USAGE); process.exit(0); }
    const int = (name: string, v: string | undefined, d: number, min: number) => {
      const n = Number(v ?? d);
      if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got "${v}"`);
      return n;
    };
    const skip = new Set((values.skip ?? '').split(',').filter(Boolean));
    for (const p of skip) if (!['restart', 'rotation', 'steady'].includes(p)) throw new Error(`--skip takes restart, rotation and steady, got "${p}"`);
    const m = /^(\d+)x(\d+)$/.exec(values.steady ?? '50x20');
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new Error(`--steady must be RATExSECONDS such as 50x20, got "${values.steady}"`);
    return {
      n: int('n', values.n, 10_000, 1), idleS: int('idle-seconds', values['idle-seconds'], 60, 0),
      snapshots: values.snapshots ?? false,
      skip, steady: skip.has('steady') ? undefined : { rate: Number(m[1]), seconds: Number(m[2]) },
      out: resolve(values.out ?? join(import.meta.dirname, '..', '.local', 'bench-scale', new Date().toISOString().replaceAll(':', '-').replace(/\..*/, ''))),
    };
  } catch (err) {
    console.error(`bench-scale: ${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
}

const opt = options();
const N = opt.n;
const NS = 'scale';
const CLK_TCK = 100;
const CHECKPOINTS = [...new Set([...[1000, 5000, 10_000].filter((k) => k < N), N])];
const STEADY_N = opt.steady ? opt.steady.rate * opt.steady.seconds : 0;
// A rotation that waits out the defaults (2 m propagation, 1 h re-issue window, 1 h grace) measures the clock, not the operator.
const ROTATION_FLAGS = ['--rotation-propagation-delay=5s', '--rotation-reissue-window=30s', '--rotation-grace=5s', '--rotation-poll=2s'];
const G = { group: 'agentidentity.dev', version: 'v1alpha1' };

/** What the operator's process and its /metrics say at one moment. */
interface Sample { at: number; ready: number; cpuS: number; rssMiB: number; heapUsedMiB: number; heapTotalMiB: number; liveHeapMiB: number }

/**
 * The operator's inspector (its --inspect port): the live heap is V8's heap used right after a
 * full GC (HeapProfiler.collectGarbage, then Runtime.getHeapUsage); heap used without it counts
 * garbage V8 has not collected yet. The GC's own CPU falls into the next checkpoint's figure.
 * With a file, also writes a heap snapshot there (scripts/heap-top.ts reads it).
 */
async function inspect(inspectPort: number, snapshotFile?: string): Promise<number> {
  const [target] = await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json() as Array<{ webSocketDebuggerUrl: string }>;
  const ws = new WebSocket(target!.webSocketDebuggerUrl);
  await new Promise((res, rej) => { ws.onopen = res; ws.onerror = rej; });
  const pending = new Map<number, (r: { usedSize?: number }) => void>();
  const chunks: string[] = [];
  ws.onmessage = (m) => {
    const d = JSON.parse(String(m.data)) as { id?: number; method?: string; params?: { chunk: string }; result: { usedSize?: number } };
    if (d.method === 'HeapProfiler.addHeapSnapshotChunk') chunks.push(d.params!.chunk);
    else if (d.id !== undefined) pending.get(d.id)?.(d.result);
  };
  let id = 0;
  const call = (method: string) => new Promise<{ usedSize?: number }>((res) => { pending.set(++id, res); ws.send(JSON.stringify({ id, method })); });
  try {
    await call('HeapProfiler.collectGarbage');
    const used = ((await call('Runtime.getHeapUsage')).usedSize ?? NaN) / 2 ** 20;
    if (snapshotFile) { await call('HeapProfiler.takeHeapSnapshot'); writeFileSync(snapshotFile, chunks.join('')); }
    return used;
  } finally {
    ws.close();
  }
}

const metricSum = (text: string, name: string) => text.split('\n').filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
  .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);

async function pool(n: number, width: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, n) }, async () => { while (next < n) await work(next++); }));
}

const { c, stop } = await (resolveBinaries(), cluster('scale'));
const out: Record<string, unknown> = { at: new Date().toISOString(), node: process.version, n: N, checkpoints: CHECKPOINTS };
let ctl: Controller | undefined;
try {
  const core = c.kc.makeApiClient(CoreV1Api);
  const custom = c.kc.makeApiClient(CustomObjectsApi);
  await preset.install(c);
  await core.createNamespace({ body: { metadata: { name: NS } } });
  console.log(`# bench-scale (${out.at as string}, node ${process.version}): N=${N}, checkpoints ${CHECKPOINTS.join(', ')}; setup: ${N + STEADY_N} ServiceAccounts, ${5 * N} unrelated Secrets and ConfigMaps`);
  await preset.prepare(c, NS, N + STEADY_N);
  const filler = 'x'.repeat(1024);
  await pool(5 * N, 50, async (i) => createRetrying(() => (i % 5 < 3
    ? core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: `unrelated-${i}` }, stringData: { data: filler } } })
    : core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: `unrelated-${i}` }, data: { data: filler } } }))));

  mkdirSync(opt.out, { recursive: true });
  const port = await freePort();
  const inspectPort = await freePort();
  process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --inspect=127.0.0.1:${inspectPort}`.trim();
  process.env.AIO_FLAGS = [process.env.AIO_FLAGS ?? '', `--http-port=${port}`, ...ROTATION_FLAGS].join(' ').trim();
  const metrics = async () => { try { return await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(); } catch { return ''; } };
  const sample = async (ready: number, snapshot?: string): Promise<Sample> => {
    // /proc and /metrics first: the forced GC and a snapshot change both (a snapshot grows RSS for good).
    const m = await metrics();
    const s = { at: Date.now(), ready, cpuS: cpuTicks(procText(ctl!.pid, 'stat')) / CLK_TCK, rssMiB: rssMiB(procText(ctl!.pid, 'status')),
      heapUsedMiB: metricSum(m, 'agentidentity_nodejs_heap_size_used_bytes') / 2 ** 20, heapTotalMiB: metricSum(m, 'agentidentity_nodejs_heap_size_total_bytes') / 2 ** 20 };
    return { ...s, liveHeapMiB: await inspect(inspectPort, snapshot && join(opt.out, `heap-${snapshot}.heapsnapshot`)).catch(() => NaN) };
  };
  ctl = await preset.controller(c, NS);
  const start = await sample(0);
  console.log(`operator started: RSS ${start.rssMiB.toFixed(0)} MiB, heap used ${start.heapUsedMiB.toFixed(0)} MiB`);

  // Ready from one watch, re-opened when it ends (a fresh watch lists what is there).
  const createdAt = new Map<string, number>();
  const readyAt = new Map<string, number>();
  const secretOf = new Map<string, string>();
  let watching = true;
  const openWatch = async (): Promise<void> => {
    await new Watch(c.kc).watch(`/apis/${G.group}/${G.version}/namespaces/${NS}/agentidentities`, {}, (_t, o: AgentIdentity) => {
      const name = o.metadata.name!;
      if (o.status?.secretName) secretOf.set(name, o.status.secretName);
      if (!readyAt.has(name) && o.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True')) readyAt.set(name, Date.now());
    }, () => { if (watching) setTimeout(() => void openWatch().catch(() => undefined), 200); });
  };
  await openWatch();
  // ServiceAccounts a0 … a(N + steady - 1) were made in setup: identity i runs as a(i).
  const identity = (name: string, serviceAccountName: string, peers: string[]) => ({ apiVersion: `${G.group}/${G.version}`, kind: 'AgentIdentity', metadata: { name, namespace: NS },
    spec: { serviceAccountName, privateKey: { algorithm: 'ECDSA', size: 256 }, policy: { allow: peers.map((p) => ({ agent: { name: p } })) } } });
  const create = (name: string, serviceAccountName: string, peers: string[]) => createRetrying(() => custom.createNamespacedCustomObject({ ...G, plural: 'agentidentities', namespace: NS, body: identity(name, serviceAccountName, peers) }))
    .then(() => void createdAt.set(name, Date.now()));
  const latencies = (names: string[]) => names.filter((n) => readyAt.has(n)).map((n) => readyAt.get(n)! - (createdAt.get(n) ?? readyAt.get(n)!));
  const waitReady = async (names: string[], timeoutMs: number) => { const t = Date.now(); while (names.some((n) => !readyAt.has(n)) && Date.now() - t < timeoutMs) await sleep(100); };

  // --- burst: a(i) admits a(i+1) and a(i+2); checkpoints sampled as the Ready count passes them.
  const names = Array.from({ length: N }, (_, i) => `a${i}`);
  const checkpoints: Sample[] = [];
  const t0 = Date.now();
  let watchingCheckpoints = true;
  const checkpointLoop = (async () => {
    for (const k of CHECKPOINTS) {
      while (watchingCheckpoints && readyAt.size < k) await sleep(100);
      if (!watchingCheckpoints) return;
      checkpoints.push(await sample(readyAt.size, opt.snapshots ? `${k}-burst` : undefined));
      const s = checkpoints.at(-1)!;
      const p = checkpoints.at(-2) ?? start;
      console.log(`  ${s.ready} Ready after ${((s.at - t0) / 1000).toFixed(1)} s: CPU ${(((s.cpuS - p.cpuS) / Math.max(1, s.ready - p.ready)) * 100).toFixed(2)} s per 100 issuances since the last, RSS ${s.rssMiB.toFixed(0)} MiB, heap used ${s.heapUsedMiB.toFixed(0)} of ${s.heapTotalMiB.toFixed(0)} MiB, live heap ${s.liveHeapMiB.toFixed(0)} MiB`);
    }
  })();
  await pool(N, 100, (i) => create(names[i]!, names[i]!, [names[(i + 1) % N]!, names[(i + 2) % N]!]));
  const createdS = (Date.now() - t0) / 1000;
  await waitReady(names, 30 * 60_000);
  // All Ready: the loop takes its last checkpoint itself; stopped only when some never became Ready.
  if (readyAt.size < N) watchingCheckpoints = false;
  await checkpointLoop;
  const burstLat = latencies(names);
  const allReadyS = (Math.max(...readyAt.values()) - t0) / 1000;
  let prev = start;
  const perCheckpoint = checkpoints.map((s) => { const r = { ...s, cpuPer100S: ((s.cpuS - prev.cpuS) / Math.max(1, s.ready - prev.ready)) * 100 }; prev = s; return r; });
  console.log(`burst: ${readyAt.size}/${N} Ready after ${allReadyS.toFixed(1)} s (creates took ${createdS.toFixed(1)} s); idle ${opt.idleS} s`);
  await sleep(opt.idleS * 1000);
  const idle = await sample(readyAt.size, opt.snapshots ? `${N}-idle` : undefined);
  out.burst = { allReadySeconds: allReadyS, createsSeconds: createdS, p50Ms: quantile(burstLat, 0.5), p99Ms: quantile(burstLat, 0.99), checkpoints: perCheckpoint, idle };
  console.log(`after ${opt.idleS} s idle: RSS ${idle.rssMiB.toFixed(0)} MiB, heap used ${idle.heapUsedMiB.toFixed(0)} of ${idle.heapTotalMiB.toFixed(0)} MiB, live heap ${idle.liveHeapMiB.toFixed(0)} MiB; create → Ready p50 ${(quantile(burstLat, 0.5) / 1000).toFixed(2)} s, p99 ${(quantile(burstLat, 0.99) / 1000).toFixed(2)} s`);
  // Written after each phase too, so a run stopped in a long phase keeps what it measured.
  const save = () => writeFileSync(join(opt.out, 'results.json'), JSON.stringify(out, null, 2) + '\n');
  save();

  // --- what the validating webhook reads per pod about the identities (webhook/related.ts): who claims the
  // pod's Secret, by field selector, and its owner by name; releases before listed the whole namespace
  const timed = async (read: () => Promise<unknown>) => { const t = performance.now(); const r = await read(); return { ms: performance.now() - t, bytes: JSON.stringify(r).length }; };
  const reviewReads: number[] = [];
  const lists: { ms: number; bytes: number }[] = [];
  for (let i = 0; i < 5; i++) {
    const name = names[Math.floor(Math.random() * N)]!;
    const reads = await Promise.all([
      ...['spec.secretName', 'status.secretName'].map((f) => timed(() => custom.listNamespacedCustomObject({ ...G, plural: 'agentidentities', namespace: NS, fieldSelector: `${f}=${name}-identity` }))),
      timed(() => custom.getNamespacedCustomObject({ ...G, plural: 'agentidentities', namespace: NS, name })),
    ]);
    reviewReads.push(Math.max(...reads.map((r) => r.ms)));
    if (i < 3) lists.push(await timed(() => custom.listNamespacedCustomObject({ ...G, plural: 'agentidentities', namespace: NS })));
  }
  out.webhookReads = { reviewMedianMs: quantile(reviewReads, 0.5), namespaceListMedianMs: quantile(lists.map((l) => l.ms), 0.5), namespaceListBytes: lists[0]!.bytes };
  console.log(`a pod review's identity reads (2 field-selector lists and a get, at once): median ${quantile(reviewReads, 0.5).toFixed(1)} ms of 5; `
    + `the LIST of all ${N} that releases before made per review: median ${quantile(lists.map((l) => l.ms), 0.5).toFixed(0)} ms of 3, ${(lists[0]!.bytes / 2 ** 20).toFixed(1)} MiB`);

  // --- restart over the Ready identities
  if (!opt.skip.has('restart')) {
    await ctl.stop();
    const r0 = requestTotals(await scrape(c.kc));
    const tr = Date.now();
    ctl = await preset.controller(c, NS);
    let syncedMs: number | undefined;
    let firstPassMs: number | undefined;
    while (firstPassMs === undefined && Date.now() - tr < 10 * 60_000) {
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status === 200, () => false);
      if (ready) syncedMs ??= Date.now() - tr;
      if (syncedMs !== undefined && metricSum(await metrics(), 'agentidentity_workqueue_depth') === 0) firstPassMs = Date.now() - tr;
      // A scrape renders every identity's gauges (~25 ms of the operator's CPU at 10,000): polled no faster.
      else await sleep(syncedMs === undefined ? 100 : 500);
    }
    await sleep(5000);
    const restartWrites = subtract(requestTotals(await scrape(c.kc)), r0);
    out.restart = { cachesSyncedMs: syncedMs, firstPassDoneMs: firstPassMs, apiWrites: restartWrites.writes - restartWrites.leaseWrites, leaseWrites: restartWrites.leaseWrites };
    save();
    console.log(`restart: caches synced ${syncedMs} ms, queues first empty ${firstPassMs} ms, API writes ${restartWrites.writes - restartWrites.leaseWrites} (Leases aside)`);
  }

  // --- root rotation, with handshakes between sampled policy peers as it goes
  if (!opt.skip.has('rotation')) {
    const td = () => custom.getClusterCustomObject({ ...G, plural: 'trustdomains', name: 'default' }) as Promise<TrustDomain>;
    const rootsBefore = new Set((await td()).status?.roots?.map((r) => r.fingerprint) ?? []);
    const pairs = Array.from({ length: Math.min(20, N) }, () => Math.floor(Math.random() * N)).map((i) => [names[i]!, names[(i + 1) % N]!] as const);
    const tt = Date.now();
    await custom.patchClusterCustomObject({ ...G, plural: 'trustdomains', name: 'default', body: { metadata: { annotations: { 'agentidentity.dev/rotate-requested-at': new Date().toISOString() } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    let handshakes = 0, failed = 0, rotatedMs: number | undefined;
    const secret = (name: string) => core.readNamespacedSecret({ namespace: NS, name: secretOf.get(name) ?? `${name}-identity` }) as Promise<Secret>;
    while (rotatedMs === undefined && Date.now() - tt < 30 * 60_000) {
      for (const [client, server] of pairs) {
        const ok = await handshake(await secret(client), await secret(server)).catch(() => false);
        handshakes++;
        if (!ok) failed++;
      }
      const roots = (await td()).status?.roots ?? [];
      if (roots.length === 1 && !rootsBefore.has(roots[0]!.fingerprint)) rotatedMs = Date.now() - tt;
      else await sleep(1000);
    }
    // The old root has left the TrustDomain; every copy of the bundle (each identity Secret's ca.crt) follows.
    let settledMs: number | undefined;
    while (rotatedMs !== undefined && settledMs === undefined && Date.now() - tt < 30 * 60_000) {
      if (metricSum(await metrics(), 'agentidentity_workqueue_depth') === 0) settledMs = Date.now() - tt;
      else await sleep(500);
    }
    out.rotation = { durationMs: rotatedMs, queuesEmptyMs: settledMs, handshakes, failedHandshakes: failed, pairs: pairs.length };
    save();
    console.log(`rotation: ${rotatedMs === undefined ? 'not finished in 30 min' : `${(rotatedMs / 1000).toFixed(1)} s until only the new root was left, ${((settledMs ?? NaN) / 1000).toFixed(1)} s until the operator's queues were empty (every bundle copy updated)`}; ${failed} of ${handshakes} handshakes between ${pairs.length} sampled peer pairs failed`);
  }

  // --- steady rate, on top of the N Ready ones
  if (opt.steady) {
    const steadyNames = Array.from({ length: STEADY_N }, (_, i) => `s${i}`);
    const ts = Date.now();
    await Promise.all(steadyNames.map(async (name, i) => { await sleep(Math.max(0, ts + (i * 1000) / opt.steady!.rate - Date.now())); await create(name, `a${N + i}`, [names[i % N]!, names[(i + 1) % N]!]); }));
    await waitReady(steadyNames, 10 * 60_000);
    const lat = latencies(steadyNames);
    out.steady = { rate: opt.steady.rate, seconds: opt.steady.seconds, ready: lat.length, p50Ms: quantile(lat, 0.5), p99Ms: quantile(lat, 0.99) };
    console.log(`steady: ${opt.steady.rate}/s for ${opt.steady.seconds} s, ${lat.length}/${STEADY_N} Ready: create → Ready p50 ${quantile(lat, 0.5)} ms, p99 ${quantile(lat, 0.99)} ms`);
  }
  watching = false;

  // --- the table and the plot
  const f = (x: number | undefined, d = 1) => (x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(d));
  console.log(`\n## N=${N}${process.env.AIO_FLAGS ? ` (operator flags: ${process.env.AIO_FLAGS})` : ''}`);
  console.log('identities Ready | at s   | CPU s per 100 since previous | RSS MiB | heap used MiB | heap total MiB | live heap MiB');
  const row = (label: string, at: string, cpu: string, s: Sample) => console.log(`${label.padStart(16)} | ${at.padStart(6)} | ${cpu.padStart(28)} | ${f(s.rssMiB, 0).padStart(7)} | ${f(s.heapUsedMiB, 0).padStart(13)} | ${f(s.heapTotalMiB, 0).padStart(14)} | ${f(s.liveHeapMiB, 0).padStart(13)}`);
  for (const s of perCheckpoint) row(String(s.ready), f((s.at - t0) / 1000), f(s.cpuPer100S, 2), s);
  row(`after ${opt.idleS} s idle`, '', '', idle);
  row('before the burst', '', '', start);
  console.log(`all Ready after ${f(allReadyS)} s; create → Ready p50 ${f(quantile(burstLat, 0.5) / 1000, 2)} s, p99 ${f(quantile(burstLat, 0.99) / 1000, 2)} s`);
  mkdirSync(opt.out, { recursive: true });
  const rss = lineChart(`Operator RSS and V8 heap used against identities Ready (N=${N}, with policies)`, 'identities Ready', 'MiB', [
    { label: 'RSS', points: perCheckpoint.map((s) => [s.ready, s.rssMiB]) }, { label: 'heap used', points: perCheckpoint.map((s) => [s.ready, s.heapUsedMiB]) },
    { label: 'live heap', points: perCheckpoint.map((s) => [s.ready, s.liveHeapMiB]) },
    { label: `RSS ${opt.idleS} s idle`, points: [[idle.ready, idle.rssMiB]] }]);
  const cpu = lineChart('Operator CPU seconds per 100 issuances, since the previous checkpoint', 'identities Ready', 'CPU s per 100 issuances', [
    { label: 'CPU per 100', points: perCheckpoint.map((s) => [s.ready, s.cpuPer100S]) }]);
  writeFileSync(join(opt.out, 'scale.svg'), stack([rss, cpu]));
  writeFileSync(join(opt.out, 'results.json'), JSON.stringify(out, null, 2) + '\n');
  console.log(`\nwritten: ${join(opt.out, 'results.json')}\n         ${join(opt.out, 'scale.svg')}`);
} finally {
  await ctl?.stop();
  await stop();
}

/** An mTLS handshake from `client`'s Secret to a server holding `server`'s, each trusting its own ca.crt: true when both sides accepted. */
async function handshake(client: Secret, server: Secret): Promise<boolean> {
  const pem = (s: Secret, k: string) => Buffer.from(s.data?.[k] ?? '', 'base64').toString('utf8');
  const srv = createTlsServer({ cert: pem(server, 'tls.crt'), key: pem(server, 'tls.key'), ca: pem(server, 'ca.crt'), requestCert: true, rejectUnauthorized: true }, (sock) => sock.end('ok'));
  srv.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  try {
    return await new Promise<boolean>((resolveOk) => {
      // SPIFFE leaves name a URI, not a host: the chain is what is checked here.
      const sock = connect({ port: (srv.address() as { port: number }).port, host: '127.0.0.1', cert: pem(client, 'tls.crt'), key: pem(client, 'tls.key'), ca: pem(client, 'ca.crt'), checkServerIdentity: () => undefined });
      sock.once('data', () => { resolveOk(sock.authorized); sock.destroy(); });
      sock.once('error', () => resolveOk(false));
      sock.once('close', () => resolveOk(false));
    });
  } finally {
    srv.close();
  }
}
