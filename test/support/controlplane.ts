// A real local control plane: etcd + kube-apiserver + kube-controller-manager
// on 127.0.0.1 with free ports, secure serving, RBAC and an admin client cert.
// Binaries come from TEST_ASSET_* / KUBEBUILDER_ASSETS (as envtest does) or
// from scripts/control-plane-build.sh, which builds pinned versions once and
// caches them.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync, existsSync, openSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { request } from 'node:https';
import { makeClusterPki, type ClusterPki } from './certs.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const BINARIES = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kubectl'] as const;
type Binary = (typeof BINARIES)[number];

export interface ControlPlane {
  dir: string;
  server: string;
  kubeconfigPath: string;
  binDir: string;
  pki: ClusterPki;
  bins: Record<Binary, string>;
  stop(): Promise<void>;
  restartAPIServer(): Promise<void>;
  /** SIGSTOP freezes the kube-apiserver (its kernel still holds the connections open), SIGCONT thaws it. */
  signalAPIServer(signal: 'SIGSTOP' | 'SIGCONT'): void;
}

export function resolveBinaries(): Record<Binary, string> {
  const envName = (b: Binary) => `TEST_ASSET_${b.toUpperCase().replaceAll('-', '_')}`;
  const found: Partial<Record<Binary, string>> = {};
  for (const b of BINARIES) {
    const explicit = process.env[envName(b)];
    const fromAssets = process.env.KUBEBUILDER_ASSETS ? join(process.env.KUBEBUILDER_ASSETS, b) : undefined;
    if (explicit && existsSync(explicit)) found[b] = explicit;
    else if (fromAssets && existsSync(fromAssets)) found[b] = fromAssets;
  }
  const missing = BINARIES.filter((b) => !found[b]);
  if (missing.length > 0) {
    // envtest assets carry no kube-controller-manager; build what is missing.
    const dir = execFileSync('bash', [join(ROOT, 'scripts', 'control-plane-build.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
    for (const b of missing) found[b] = join(dir, b);
  }
  return found as Record<Binary, string>;
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => res(port));
    });
  });
}

function kubeconfigYaml(server: string, pki: ClusterPki, user = 'admin', client = pki.admin): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return `apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: ${server}
    certificate-authority-data: ${b64(pki.ca.cert)}
users:
- name: ${user}
  user:
    client-certificate-data: ${b64(client.cert)}
    client-key-data: ${b64(client.key)}
contexts:
- name: local
  context: { cluster: local, user: ${user} }
current-context: local
`;
}
export { kubeconfigYaml };

async function waitReady(server: string, pki: ClusterPki, deadlineMs: number, procs: ChildProcess[]): Promise<void> {
  const end = Date.now() + deadlineMs;
  let last = '';
  while (Date.now() < end) {
    const dead = procs.find((p) => p.exitCode !== null || p.signalCode !== null);
    if (dead) throw new Error(`control plane process ${dead.spawnfile} exited (${dead.exitCode ?? dead.signalCode}); see its log`);
    last = await new Promise<string>((res) => {
      const req = request(`${server}/readyz`, { ca: pki.ca.cert, cert: pki.admin.cert, key: pki.admin.key, timeout: 2000 }, (r) => {
        let body = '';
        r.on('data', (c) => (body += c));
        r.on('end', () => res(r.statusCode === 200 ? 'ok' : `${r.statusCode}`));
      });
      req.on('error', (e) => res(e.message));
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.end();
    });
    if (last === 'ok') return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`kube-apiserver not ready after ${deadlineMs} ms: ${last}`);
}

export interface StartOptions {
  dir: string;
  /** Leave processes running after this Node process exits (make cluster-up). */
  persistent?: boolean;
  /**
   * The Node authorizer and the NodeRestriction admission plugin, as on a real
   * cluster (default off): a client certificate for system:node:<name> in
   * group system:nodes may then only do what that node's kubelet may, e.g.
   * ask for certificates of pods bound to it (pod-kubelet.ts).
   */
  nodeAuthorizer?: boolean;
  /** More kube-apiserver flags, e.g. to switch off an API an older Kubernetes does not serve. */
  apiServerArgs?: string[];
}

export async function startControlPlane(opts: StartOptions): Promise<ControlPlane> {
  const bins = resolveBinaries();
  const dir = resolve(opts.dir);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'pki'), { recursive: true });
  const pki = await makeClusterPki();
  const f = (name: string, content: string) => { const p = join(dir, 'pki', name); writeFileSync(p, content, { mode: 0o600 }); return p; };
  const caFile = f('ca.crt', pki.ca.cert);
  const servingCert = f('apiserver.crt', pki.serving.cert);
  const servingKey = f('apiserver.key', pki.serving.key);
  const saKey = f('sa.key', pki.serviceAccount.key);
  const saPub = f('sa.pub', pki.serviceAccount.pub);
  const [etcdClient, etcdPeer, apiPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const server = `https://127.0.0.1:${apiPort}`;
  const kubeconfigPath = join(dir, 'kubeconfig');
  writeFileSync(kubeconfigPath, kubeconfigYaml(server, pki), { mode: 0o600 });

  const procs: ChildProcess[] = [];
  const run = (bin: string, args: string[], log: string) => {
    const out = openSync(join(dir, log), 'a');
    const p = spawn(bin, args, { stdio: ['ignore', out, out], detached: true });
    if (opts.persistent) p.unref();
    procs.push(p);
    return p;
  };
  run(bins.etcd, [
    `--data-dir=${join(dir, 'etcd')}`, '--name=default',
    `--listen-client-urls=http://127.0.0.1:${etcdClient}`, `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
    `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`, `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
    `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
    '--unsafe-no-fsync', '--log-level=warn',
  ], 'etcd.log');
  const apiArgs = [
    `--etcd-servers=http://127.0.0.1:${etcdClient}`,
    '--bind-address=127.0.0.1', '--advertise-address=127.0.0.1', `--secure-port=${apiPort}`,
    `--tls-cert-file=${servingCert}`, `--tls-private-key-file=${servingKey}`, `--client-ca-file=${caFile}`,
    `--service-account-key-file=${saPub}`, `--service-account-signing-key-file=${saKey}`,
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    // --enable-admission-plugins adds to the default set; nothing else is enabled today.
    ...(opts.nodeAuthorizer ? ['--authorization-mode=Node,RBAC', '--enable-admission-plugins=NodeRestriction'] : ['--authorization-mode=RBAC']),
    '--service-cluster-ip-range=10.0.0.0/24', '--allow-privileged=true',
    // A loopback advertise address is fine once nothing publishes it as the kubernetes Service endpoint.
    '--endpoint-reconciler-type=none',
    `--cert-dir=${join(dir, 'pki')}`, '--v=0',
    ...(opts.apiServerArgs ?? []),
  ];
  let apiserver = run(bins['kube-apiserver'], apiArgs, 'kube-apiserver.log');
  try {
    await waitReady(server, pki, 120_000, procs);
  } catch (e) {
    await killAll(procs.map((p) => p.pid!));
    throw e;
  }
  run(bins['kube-controller-manager'], [
    `--kubeconfig=${kubeconfigPath}`, '--leader-elect=false', '--secure-port=0',
    `--service-account-private-key-file=${saKey}`, `--root-ca-file=${caFile}`,
    '--use-service-account-credentials=false', '--controllers=*',
    '--concurrent-gc-syncs=5', '--v=0',
  ], 'kube-controller-manager.log');
  const pids = () => procs.filter((p) => p.exitCode === null && p.signalCode === null).map((p) => p.pid!);
  writeFileSync(join(dir, 'pids'), pids().join('\n') + '\n');
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await killAll(pids());
  };
  // Breaks every watch and request, as an API server upgrade or crash would.
  const restartAPIServer = async () => {
    const old = apiserver;
    await killAll([old.pid!]);
    apiserver = run(bins['kube-apiserver'], apiArgs, 'kube-apiserver.log');
    await waitReady(server, pki, 120_000, [apiserver]);
  };
  if (!opts.persistent) {
    // The control plane runs in its own process groups; take it down with us however we end,
    // including when the test runner stops a file with a signal.
    const killGroups = () => { for (const pid of pids()) try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ } };
    process.once('exit', killGroups);
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(sig, () => { killGroups(); process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGHUP' ? 1 : 15)); });
  }
  const signalAPIServer = (signal: 'SIGSTOP' | 'SIGCONT') => { process.kill(apiserver.pid!, signal); };
  return { dir, server, kubeconfigPath, binDir: join(bins.kubectl, '..'), pki, bins, stop, restartAPIServer, signalAPIServer };
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

/** Stops process groups in reverse start order; SIGKILL after a grace period. */
export async function killAll(pids: number[]): Promise<void> {
  for (const pid of [...pids].reverse()) {
    try { process.kill(-pid, 'SIGTERM'); } catch { /* already gone */ }
  }
  const end = Date.now() + 10_000;
  while (pids.some(alive) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  for (const pid of pids.filter(alive)) try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ }
}

export function stopFromDir(dir: string): Promise<void> {
  const file = join(dir, 'pids');
  if (!existsSync(file)) return Promise.resolve();
  const pids = readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
  return killAll(pids).then(() => rmSync(file));
}
