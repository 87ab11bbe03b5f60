// What `make bench-compare` can measure: a kind of object to create N of, how
// to tell one is Ready, and how to find (or start) the controller process
// whose CPU, memory and connections are read from /proc.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { stripTypeScriptTypes } from 'node:module';
import { join, resolve } from 'node:path';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { eventually, spawnOperator } from '../test/support/operator.ts';
import { isReady } from '../test/support/objects.ts';
import { waitEstablished } from '../test/support/env.ts';

const ROOT = resolve(import.meta.dirname, '..');

/**
 * What the image runs: dist/main.js, compiled here once per bench process. Running src/main.ts would load
 * Node's TypeScript stripper into the operator, ~28 MiB of RSS no user's operator has.
 */
let built: string | undefined;
export function imageEntry(): string {
  if (!built) {
    const r = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit', env: { ...process.env, NODE_OPTIONS: '' } });
    if (r.status !== 0) throw new Error('tsc -p tsconfig.build.json failed: the bench runs the image\'s dist/main.js');
    built = join(ROOT, 'dist', 'main.js');
  }
  return built;
}

/** The connection probe (test/support/net-probe.ts) as JavaScript for --import, so the operator loads no TypeScript at all. */
function netProbeImport(): string {
  const js = stripTypeScriptTypes(readFileSync(join(ROOT, 'test', 'support', 'net-probe.ts'), 'utf8'));
  return `--import=data:text/javascript,${encodeURIComponent(js)}`;
}

/** The environment the image's runtime stage sets (its ENV lines after the last FROM), as the benches run the operator with. */
export function imageEnv(): Record<string, string> {
  const lines = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').split('\n');
  const runtime = lines.slice(lines.findLastIndex((l) => l.startsWith('FROM ')));
  return Object.fromEntries(runtime.filter((l) => l.startsWith('ENV ')).map((l) => l.slice('ENV '.length).split('=', 2) as [string, string]));
}

/** The node flags the image runs the operator with (the Dockerfile's ENTRYPOINT), so the bench measures what users run. */
export function imageNodeFlags(): string[] {
  const line = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').split('\n').find((l) => l.startsWith('ENTRYPOINT '));
  const argv = line ? JSON.parse(line.slice('ENTRYPOINT '.length)) as string[] : [];
  return argv.filter((a) => a.startsWith('--'));
}

export interface Cluster {
  kc: KubeConfig;
  kubeconfigPath: string;
  apiPort: number;
  /** True when the bench started this control plane for the run (nothing else runs on it). */
  local: boolean;
  kubectl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
}

export interface Controller {
  pid: number;
  /** Connections opened to the API server so far, counted exactly inside the process; absent for processes the bench did not start. */
  connectionsOpened?(): number;
  stop(): Promise<void>;
}

export interface Preset {
  name: string;
  apiVersion: string;
  kind: string;
  plural: string;
  /** The body of object i (metadata.name and namespace are set by the bench). */
  template(i: number): { spec?: unknown; [k: string]: unknown };
  ready: { type: string; status: string };
  /** Why this preset cannot run with these settings, checked before any control plane starts, or undefined. */
  missing(local: boolean): string | undefined;
  /** Why this preset cannot run on this cluster (the bench says so and skips it), or undefined. */
  unavailable(c: Cluster): Promise<string | undefined>;
  /** CRDs and cluster-wide prerequisites. */
  install(c: Cluster): Promise<void>;
  /** Objects the N objects need in their namespace, made before the measured window. */
  prepare(c: Cluster, namespace: string, n: number): Promise<void>;
  /** The running controller, once it answers (so its start-up is outside the window). */
  controller(c: Cluster, namespace: string): Promise<Controller>;
}

const must = async (p: Promise<{ code: number; stderr: string }>, what: string) => {
  const r = await p;
  if (r.code !== 0) throw new Error(`${what} failed: ${r.stderr.trim()}`);
};
const ignoreConflict = (e: { code?: number }) => { if (e.code !== 409) throw e; };

/** A controller by PID (already running), or a shell command to start ({kubeconfig} is replaced by the cluster's). */
async function processController(c: Cluster, pidVar: string, cmdVar: string): Promise<Controller> {
  const pid = Number(process.env[pidVar]);
  if (pid) return { pid, stop: async () => undefined };
  const cmd = process.env[cmdVar]!.replaceAll('{kubeconfig}', c.kubeconfigPath);
  const child = spawn('bash', ['-c', `exec ${cmd}`], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, KUBECONFIG: c.kubeconfigPath } });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const forget = killOnExit(child.pid!);
  return { pid: child.pid!, stop: async () => { if (child.exitCode === null) child.kill('SIGTERM'); await exited; forget(); } };
}

/** A controller the bench started does not outlive it, however the bench ends (Ctrl-C included). */
// Returns the undo, called once it stopped: a PID the system may reuse is never signalled later.
function killOnExit(pid: number): () => void {
  const kill = () => { try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ } };
  process.once('exit', kill);
  return () => void process.off('exit', kill);
}

const controllerHint = (pidVar: string, cmdVar: string) => !process.env[pidVar] && !process.env[cmdVar]
  ? `set ${pidVar} (a running controller's PID on this host) or ${cmdVar} (a command that starts it; {kubeconfig} is replaced)` : undefined;

/** Waits until the API server runs the revoke-finalizer policy (it compiles policies asynchronously): a dry-run create comes back with the finalizer. */
async function finalizerPolicyActive(kc: KubeConfig): Promise<void> {
  const custom = kc.makeApiClient(CustomObjectsApi);
  await eventually(async () => {
    const probe = await custom.createNamespacedCustomObject({ group: 'agentidentity.dev', version: 'v1alpha1', plural: 'agentidentities', namespace: 'agent-identity-system', dryRun: 'All',
      body: { apiVersion: 'agentidentity.dev/v1alpha1', kind: 'AgentIdentity', metadata: { name: 'policy-probe' }, spec: { serviceAccountName: 'policy-probe' } } }) as { metadata: { finalizers?: string[] } };
    return probe.metadata.finalizers?.includes('agentidentity.dev/revoke');
  }, { what: 'the revoke-finalizer admission policy to take effect', timeoutMs: 60_000 });
}

export const agentIdentityOperator: Preset = {
  name: 'agent-identity-operator',
  apiVersion: 'agentidentity.dev/v1alpha1', kind: 'AgentIdentity', plural: 'agentidentities',
  template: (i) => ({ spec: { serviceAccountName: `a${i}`, privateKey: { algorithm: 'ECDSA', size: 256 } } }),
  ready: { type: 'Ready', status: 'True' },
  missing: () => undefined,
  unavailable: async (c) => (c.local ? undefined : (await c.kubectl('get', 'crd', 'agentidentities.agentidentity.dev')).code !== 0
    ? 'the AgentIdentity CRD is not installed in this cluster (make install)' : undefined),
  async install(c) {
    if (c.local) {
      await must(c.kubectl('apply', '--server-side', '-f', join(ROOT, 'crds')), 'applying crds/');
      await waitEstablished((a) => c.kubectl(...a), ['agentidentities.agentidentity.dev', 'trustdomains.agentidentity.dev']);
      // The admission policies the chart installs (and `make install` on a cluster of yours), so the
      // bench measures what a user runs: the revoke finalizer set at creation saves a write per identity.
      await must(c.kubectl('apply', '--server-side', '-f', join(ROOT, 'deploy', 'admissionpolicy.yaml')), 'applying deploy/admissionpolicy.yaml');
    }
    await c.kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: 'agent-identity-system' } } }).catch(ignoreConflict);
    if (c.local) await finalizerPolicyActive(c.kc);
    await c.kc.makeApiClient(CustomObjectsApi).createClusterCustomObject({ group: 'agentidentity.dev', version: 'v1alpha1', plural: 'trustdomains',
      body: { apiVersion: 'agentidentity.dev/v1alpha1', kind: 'TrustDomain', metadata: { name: 'default' }, spec: { trustDomain: 'cluster.local', ca: { selfSigned: {} } } } }).catch(ignoreConflict);
  },
  async prepare(c, namespace, n) {
    // The operator issues no identity whose ServiceAccount is missing; these are setup, not the controller's work.
    const core = c.kc.makeApiClient(CoreV1Api);
    for (let i = 0; i < n; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, j) => core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: `a${i + j}` } } }).catch(ignoreConflict)));
    }
  },
  async controller(c) {
    const custom = c.kc.makeApiClient(CustomObjectsApi);
    const trustDomainReady = () => eventually(async () => isReady(await custom.getClusterCustomObject({ group: 'agentidentity.dev', version: 'v1alpha1', plural: 'trustdomains', name: 'default' }) as never),
      { what: 'TrustDomain default Ready', timeoutMs: 120_000 });
    if (process.env.AIO_PID) {
      await trustDomainReady();
      return { pid: Number(process.env.AIO_PID), stop: async () => undefined };
    }
    const probe = join(mkdtempSync(join(tmpdir(), 'aio-bench-probe-')), 'connections');
    writeFileSync(probe, '');
    // Default flags (the targets are "with default flags"); AIO_FLAGS adds some, e.g. AIO_FLAGS=--qps=50.
    const flags = ['--log-level=warn', ...(process.env.AIO_FLAGS ?? '').split(/\s+/).filter(Boolean)];
    const op = spawnOperator(c.kubeconfigPath, flags, {
      ...imageEnv(),
      NODE_OPTIONS: `${imageNodeFlags().join(' ')} ${process.env.NODE_OPTIONS ?? ''} ${netProbeImport()}`.trim(),
      BENCH_NET_PROBE_FILE: probe, BENCH_NET_PROBE_PORT: String(c.apiPort),
    }, imageEntry());
    const forget = killOnExit(op.proc.pid!);
    await trustDomainReady().catch(async (e: Error) => { const out = op.output(); await op.kill(); forget(); throw new Error(`${e.message}\noperator output:\n${out}`); });
    return { pid: op.proc.pid!, connectionsOpened: () => statSync(probe).size, stop: async () => { await op.kill(); forget(); } };
  },
};

/**
 * cert-manager's Certificate with a CA issuer. Never built here: bring your own.
 * On a cluster of yours: BENCH_KUBECONFIG=... CERT_MANAGER_PID=<pid of cert-manager-controller on this host>.
 * On the bench's own control plane: CERT_MANAGER_CRDS=cert-manager.crds.yaml CERT_MANAGER_CMD='cert-manager-controller --kubeconfig={kubeconfig} --leader-elect=false'.
 */
export const certManager: Preset = {
  name: 'cert-manager',
  apiVersion: 'cert-manager.io/v1', kind: 'Certificate', plural: 'certificates',
  template: (i) => ({ spec: { secretName: `c${i}`, commonName: `c${i}.bench.local`, dnsNames: [`c${i}.bench.local`], duration: '24h',
    privateKey: { algorithm: 'ECDSA', size: 256 }, issuerRef: { name: 'bench-ca', kind: 'Issuer' } } }),
  ready: { type: 'Ready', status: 'True' },
  missing(local) {
    const crds = process.env.CERT_MANAGER_CRDS;
    if (local && !(crds && existsSync(crds))) return 'cert-manager is not installed: set CERT_MANAGER_CRDS to cert-manager.crds.yaml (from the cert-manager release you run) to install it on the bench\'s control plane, or BENCH_KUBECONFIG to a cluster that has it';
    return controllerHint('CERT_MANAGER_PID', 'CERT_MANAGER_CMD');
  },
  unavailable: async (c) => (c.local || (await c.kubectl('get', 'crd', 'certificates.cert-manager.io')).code === 0 ? undefined
    : 'cert-manager is not installed in this cluster (no certificates.cert-manager.io CRD)'),
  async install(c) {
    if (!c.local) return;
    await must(c.kubectl('apply', '--server-side', '-f', process.env.CERT_MANAGER_CRDS!), 'applying CERT_MANAGER_CRDS');
    await waitEstablished((a) => c.kubectl(...a), ['certificates.cert-manager.io', 'issuers.cert-manager.io']);
  },
  async prepare(c, namespace) {
    // A self-signed Issuer signs the CA Certificate whose Secret the CA Issuer signs with.
    const custom = c.kc.makeApiClient(CustomObjectsApi);
    const create = (plural: string, kind: string, name: string, spec: object) => custom.createNamespacedCustomObject({ group: 'cert-manager.io', version: 'v1', plural, namespace,
      body: { apiVersion: 'cert-manager.io/v1', kind, metadata: { name }, spec } }).catch(ignoreConflict);
    await create('issuers', 'Issuer', 'bench-selfsigned', { selfSigned: {} });
    await create('certificates', 'Certificate', 'bench-ca', { isCA: true, commonName: 'bench-ca', secretName: 'bench-ca', privateKey: { algorithm: 'ECDSA', size: 256 }, issuerRef: { name: 'bench-selfsigned', kind: 'Issuer' } });
    await create('issuers', 'Issuer', 'bench-ca', { ca: { secretName: 'bench-ca' } });
  },
  async controller(c, namespace) {
    const ctl = await processController(c, 'CERT_MANAGER_PID', 'CERT_MANAGER_CMD');
    const custom = c.kc.makeApiClient(CustomObjectsApi);
    await eventually(async () => isReady(await custom.getNamespacedCustomObject({ group: 'cert-manager.io', version: 'v1', plural: 'issuers', namespace, name: 'bench-ca' }) as never),
      { what: 'Issuer bench-ca Ready (is the cert-manager controller running against this cluster?)', timeoutMs: 120_000 }).catch(async (e: unknown) => { await ctl.stop(); throw e; });
    return ctl;
  },
};

/**
 * Any other controller, from the environment: BENCH_API_VERSION, BENCH_KIND, BENCH_PLURAL,
 * BENCH_TEMPLATE (JSON of object i without metadata, "{{i}}" replaced by i), BENCH_READY
 * (Type=Status, default Ready=True), BENCH_CONTROLLER_PID or BENCH_CONTROLLER_CMD. It makes no
 * prerequisites: create them in BENCH_NAMESPACE beforehand.
 */
export const custom: Preset = {
  name: 'custom',
  get apiVersion() { return process.env.BENCH_API_VERSION ?? ''; },
  get kind() { return process.env.BENCH_KIND ?? ''; },
  get plural() { return process.env.BENCH_PLURAL ?? ''; },
  template: (i) => JSON.parse((process.env.BENCH_TEMPLATE ?? '{}').replaceAll('{{i}}', String(i))) as { spec?: unknown },
  get ready() { const [type = 'Ready', status = 'True'] = (process.env.BENCH_READY ?? 'Ready=True').split('='); return { type, status }; },
  missing(local) {
    const unset = ['BENCH_API_VERSION', 'BENCH_KIND', 'BENCH_PLURAL', 'BENCH_TEMPLATE'].filter((v) => !process.env[v]);
    if (unset.length) return `set ${unset.join(', ')}`;
    if (local) return 'runs only against a cluster of yours: set BENCH_KUBECONFIG';
    return controllerHint('BENCH_CONTROLLER_PID', 'BENCH_CONTROLLER_CMD');
  },
  unavailable: async () => undefined,
  install: async () => undefined,
  prepare: async () => undefined,
  controller: (c) => processController(c, 'BENCH_CONTROLLER_PID', 'BENCH_CONTROLLER_CMD'),
};

export const PRESETS: Record<string, Preset> = { [agentIdentityOperator.name]: agentIdentityOperator, [certManager.name]: certManager, [custom.name]: custom };
