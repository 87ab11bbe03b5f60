// What the benches that run against a control plane share: a cluster (a
// fresh local control plane, or yours from BENCH_KUBECONFIG), the API
// server's /metrics, /proc readings of a controller, and creates that survive
// a GOAWAY. Used by `make bench-compare` and `make bench-scale`.
import { KubeConfig } from '@kubernetes/client-node';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane } from '../test/support/controlplane.ts';
import { runKubectl } from '../test/support/env.ts';
import type { Cluster } from './bench-presets.ts';
import { connectionFailure, retryDelay } from '../src/kube/retry.ts';

const env = process.env;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The bench's own creates go through client-node, whose fetch sends bodies
 * undici cannot replay after a GOAWAY or a closed connection (N=1000 once
 * died of `fetch failed … other side closed`). Retried here by the
 * operator's policy (src/kube/retry.ts); AlreadyExists after a retry means the
 * first try was applied.
 */
export async function createRetrying(create: () => Promise<unknown>): Promise<void> {
  let failedAt: number | undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      await create();
      return;
    } catch (err) {
      if (attempt > 1 && (err as { code?: unknown }).code === 409) return;
      failedAt ??= Date.now();
      const delayMs = retryDelay('POST', connectionFailure(err), attempt, Date.now() - failedAt);
      if (delayMs === undefined) throw err;
      await sleep(delayMs);
    }
  }
}

export async function scrape(kc: KubeConfig): Promise<string> {
  const server = new URL(kc.getCurrentCluster()!.server);
  const opts: Parameters<typeof request>[1] = { method: 'GET', hostname: server.hostname, port: server.port || 443, path: '/metrics' };
  await kc.applyToHTTPSOptions(opts);
  return new Promise((res, rej) => {
    const req = request(opts, (r) => {
      let body = '';
      r.setEncoding('utf8').on('data', (c) => (body += c)).on('end', () => (r.statusCode === 200 ? res(body) : rej(new Error(`GET /metrics: ${r.statusCode} ${body.slice(0, 200)}`))));
    });
    req.on('error', rej).end();
  });
}

export const procText = (pid: number, file: string) => readFileSync(`/proc/${pid}/${file}`, 'utf8');

export async function cluster(run: string): Promise<{ c: Cluster; stop(): Promise<void> }> {
  if (env.BENCH_KUBECONFIG) {
    const kc = new KubeConfig();
    kc.loadFromFile(env.BENCH_KUBECONFIG);
    const kubectl = env.TEST_ASSET_KUBECTL ?? 'kubectl';
    const port = Number(new URL(kc.getCurrentCluster()!.server).port || 443);
    return { c: { kc, kubeconfigPath: env.BENCH_KUBECONFIG, apiPort: port, local: false, kubectl: (...a) => runKubectl(kubectl, env.BENCH_KUBECONFIG!, a) }, stop: async () => undefined };
  }
  const dir = mkdtempSync(join(tmpdir(), `aio-bench-${run}-`));
  const cp = await startControlPlane({ dir });
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  return {
    c: { kc, kubeconfigPath: cp.kubeconfigPath, apiPort: Number(new URL(cp.server).port), local: true, kubectl: (...a) => runKubectl(cp.bins.kubectl, cp.kubeconfigPath, a) },
    stop: async () => { await cp.stop(); rmSync(dir, { recursive: true, force: true }); },
  };
}


/** A TCP port free on 127.0.0.1 a moment ago, for a process the bench starts. */
export function freePort(): Promise<number> {
  return new Promise((resolve) => { const s = createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); }); });
}
