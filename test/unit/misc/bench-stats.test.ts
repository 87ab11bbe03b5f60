import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpuTicks, quantile, readyCurve, requestTotals, rssMiB, socketsTo, subtract, subtractCounts, targetRows, processCpuSeconds, writesByRequest } from '../../../scripts/bench-stats.ts';
import { niceCeil, readyChart } from '../../../scripts/bench-chart.ts';

const METRICS = `# HELP apiserver_request_total [STABLE] Counter of apiserver requests
# TYPE apiserver_request_total counter
apiserver_request_total{code="201",component="apiserver",dry_run="",group="agentidentity.dev",resource="agentidentities",scope="resource",subresource="",verb="POST",version="v1alpha1"} 300
apiserver_request_total{code="200",component="apiserver",dry_run="",group="agentidentity.dev",resource="agentidentities",scope="resource",subresource="status",verb="PUT",version="v1alpha1"} 290
apiserver_request_total{code="409",component="apiserver",dry_run="",group="agentidentity.dev",resource="agentidentities",scope="resource",subresource="status",verb="PUT",version="v1alpha1"} 4
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="secrets",scope="resource",subresource="",verb="APPLY",version="v1"} 3
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="secrets",scope="namespace",subresource="",verb="LIST",version="v1"} 2
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="secrets",scope="resource",subresource="",verb="GET",version="v1"} 7
apiserver_request_total{code="0",component="apiserver",dry_run="",group="",resource="secrets",scope="namespace",subresource="",verb="WATCH",version="v1"} 1
apiserver_request_total{code="200",component="",dry_run="",group="",resource="",scope="",subresource="",verb="GET",version=""} 1000
apiserver_request_total{code="200",component="apiserver",dry_run="",group="coordination.k8s.io",resource="leases",scope="resource",subresource="",verb="PUT",version="v1"} 6
apiserver_request_count_other{verb="POST",resource="x"} 50
`;

test('requestTotals sums writes and reads on resources, leaving out non-resource URLs such as /metrics', () => {
  assert.deepEqual(requestTotals(METRICS), { writes: 300 + 290 + 4 + 3 + 6, reads: 2 + 7 + 1, conflicts: 4, leaseWrites: 6 });
  assert.deepEqual(subtract(requestTotals(METRICS), { writes: 300, reads: 1, conflicts: 0, leaseWrites: 1 }), { writes: 303, reads: 9, conflicts: 4, leaseWrites: 5 });
});

test('writesByRequest names each write by verb and resource (with its subresource); subtractCounts keeps what moved', () => {
  const byRequest = writesByRequest(METRICS);
  assert.deepEqual(byRequest, { 'POST agentidentities': 300, 'PUT agentidentities/status': 294, 'APPLY secrets': 3, 'PUT leases': 6 });
  assert.deepEqual(subtractCounts(byRequest, { 'POST agentidentities': 300, 'PUT leases': 5 }), { 'PUT agentidentities/status': 294, 'APPLY secrets': 3, 'PUT leases': 1 });
});

test('quantile takes the nearest rank and does not depend on order', () => {
  const xs = Array.from({ length: 100 }, (_, i) => 100 - i);
  assert.equal(quantile(xs, 0.5), 50);
  assert.equal(quantile(xs, 0.99), 99);
  assert.equal(quantile(xs, 1), 100);
  assert.equal(quantile([7], 0.9), 7);
  assert.ok(Number.isNaN(quantile([], 0.5)));
});

test('cpuTicks adds utime and stime, even when the command name holds spaces and parentheses', () => {
  const stat = '4242 (node (main) x) S 1 4242 4242 0 -1 4194560 9000 0 0 0 1234 567 0 0 20 0 11 0 100 1000000 20000 18446744073709551615';
  assert.equal(cpuTicks(stat), 1234 + 567);
});

test('rssMiB reads VmRSS and fails on a process that has none', () => {
  assert.equal(rssMiB('Name:\tnode\nVmHWM:\t  300000 kB\nVmRSS:\t  204800 kB\n'), 200);
  assert.throws(() => rssMiB('Name:\tnode\n'), /VmRSS/);
});

test('socketsTo keeps the sockets whose remote port is the API server, by inode', () => {
  const table = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:9C40 0100007F:1A0B 01 00000000:00000000 00:00000000 00000000  1000        0 111 1 0000000000000000 20 4 30 10 -1
   1: 0100007F:9C41 0100007F:0050 01 00000000:00000000 00:00000000 00000000  1000        0 222 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:9C42 0100007F:1A0B 06 00000000:00000000 03:00000F9E 00000000     0        0 0 3 0000000000000000
`;
  assert.deepEqual([...socketsTo(table, 0x1a0b)], [['111', 0x9c40]]);
});

test('readyCurve counts Ready objects cumulatively over seconds since the start', () => {
  assert.deepEqual(readyCurve(1000, [4000, 2000, 2500]), [[1, 1], [1.5, 2], [3, 3]]);
});

test('the chart draws one path per run, one legend entry per preset, and escapes labels', () => {
  assert.equal(niceCeil(0), 1);
  assert.equal(niceCeil(17), 20);
  assert.equal(niceCeil(300), 500);
  const svg = readyChart('N=3 <test>', [
    { label: 'ours', points: [[1, 1], [2, 2]] },
    { label: 'ours', points: [[1.5, 1]] },
    { label: 'peer&co', points: [[3, 1]] },
  ]);
  assert.match(svg, /^<svg /);
  assert.equal(svg.match(/<path /g)?.length, 3);
  assert.match(svg, /N=3 &#60;test&#62;/);
  assert.match(svg, /peer&#38;co/);
  assert.equal(svg.match(/<rect x=/g)?.length, 2);
});

test('presets: ours and cert-manager make ECDSA P-256 objects; custom reads its kind, template and Ready from the environment', async () => {
  const { agentIdentityOperator, certManager, custom } = await import('../../../scripts/bench-presets.ts');
  assert.deepEqual(agentIdentityOperator.template(7), { spec: { serviceAccountName: 'a7', privateKey: { algorithm: 'ECDSA', size: 256 } } });
  assert.deepEqual((certManager.template(7).spec as { privateKey: unknown }).privateKey, { algorithm: 'ECDSA', size: 256 });
  const saved = { ...process.env };
  try {
    delete process.env.CERT_MANAGER_CRDS;
    delete process.env.CERT_MANAGER_PID;
    delete process.env.CERT_MANAGER_CMD;
    assert.match(certManager.missing(true) ?? '', /cert-manager is not installed/);
    assert.match(certManager.missing(false) ?? '', /CERT_MANAGER_PID/);
    process.env.CERT_MANAGER_PID = '1';
    assert.equal(certManager.missing(false), undefined);
    assert.match(custom.missing(false) ?? '', /BENCH_API_VERSION/);
    Object.assign(process.env, { BENCH_API_VERSION: 'example.com/v1', BENCH_KIND: 'Widget', BENCH_PLURAL: 'widgets', BENCH_TEMPLATE: '{"spec":{"id":"w{{i}}"}}', BENCH_READY: 'Issued=True', BENCH_CONTROLLER_PID: '1' });
    assert.deepEqual(custom.template(3), { spec: { id: 'w3' } });
    assert.deepEqual(custom.ready, { type: 'Issued', status: 'True' });
    assert.equal(custom.missing(false), undefined);
    assert.match(custom.missing(true) ?? '', /BENCH_KUBECONFIG/);
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
});

test('targetRows judges each target only on the run it was set for', () => {
  const base = { p50s: 1.5, p99s: 6, allReadyS: 25, writesPerIssuance: 4, connectionsPerIssuance: 0, idleWrites: 0, cpuPer100s: 2.5, rssMiB: 100 };
  const at300 = Object.fromEntries(targetRows({ ...base, n: 300, flags: '' }).map((r) => [r.target, r.verdict]));
  assert.equal(at300['create → Ready p50 ≤ 2 s (N=300, default flags)'], 'met');
  assert.equal(at300['create → Ready p99 ≤ 5 s (N=300, default flags)'], 'not met');
  assert.equal(at300['CPU ≤ 2 s per 100 issuances'], 'not met');
  assert.equal(at300['RSS ≤ 120 MiB idle (N=1000)'], 'not this run');
  assert.equal(at300['all Ready ≤ 30 s (N=1000, --qps=50)'], 'not this run');
  const withFlags = Object.fromEntries(targetRows({ ...base, n: 300, flags: '--concurrency=8' }).map((r) => [r.target, r.verdict]));
  assert.equal(withFlags['create → Ready p50 ≤ 2 s (N=300, default flags)'], 'not this run', 'not default flags');
  const at1000 = Object.fromEntries(targetRows({ ...base, n: 1000, flags: '--qps=50', connectionsPerIssuance: null }).map((r) => [r.target, r.verdict]));
  assert.equal(at1000['RSS ≤ 120 MiB idle (N=1000)'], 'met');
  assert.equal(at1000['all Ready ≤ 30 s (N=1000, --qps=50)'], 'met');
  assert.equal(at1000['new connections per issuance ≤ 2'], 'not this run', 'unknown is not judged');
});

test('processCpuSeconds reads the process counter and says null when there is none', () => {
  assert.equal(processCpuSeconds('# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 12.5\nprocess_cpu_seconds_total_x 3\n'), 12.5);
  assert.equal(processCpuSeconds(METRICS), null);
});
