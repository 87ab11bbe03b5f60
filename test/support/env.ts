// The test environment for integration tests: a private control plane per
// test file (so files run in parallel without sharing state), or an existing
// cluster when USE_EXISTING_CLUSTER=true and KUBECONFIG points at it.
import { KubeConfig, CoreV1Api, type V1Node } from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { makeClientCert } from './certs.ts';
import { kubeconfigYaml, startControlPlane, resolveBinaries, type ControlPlane, type StartOptions } from './controlplane.ts';

import { CRD_NAMES } from '../../src/api/names.ts';
const ROOT = resolve(import.meta.dirname, '..', '..');

export interface TestEnv {
  kc: KubeConfig;
  kubeconfigPath: string;
  /** The control plane we started, or undefined on an existing cluster. */
  controlPlane?: ControlPlane;
  kubectl(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }>;
  namespace(prefix?: string): Promise<string>;
  stop(): Promise<void>;
}

export function runKubectl(kubectlBin: string, kubeconfigPath: string, args: string[], input?: string) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((res) => {
    const p = execFile(kubectlBin, args, { env: { ...process.env, KUBECONFIG: kubeconfigPath }, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    if (input !== undefined) p.stdin!.end(input);
  });
}

/** Applies crds/ and waits until the API server serves both kinds; throws with kubectl's words otherwise. */
export async function installCRDs(kubectlBin: string, kubeconfigPath: string): Promise<void> {
  const kubectl = (args: string[]) => runKubectl(kubectlBin, kubeconfigPath, args);
  const crds = await kubectl(['apply', '--server-side', '--force-conflicts', '-f', join(ROOT, 'crds')]);
  if (crds.code !== 0) throw new Error(`installing CRDs failed: ${crds.stderr}`);
  await waitEstablished(kubectl, [...CRD_NAMES]);
}

/**
 * Waits until the CRDs are Established. `kubectl wait --for=condition` fails at once ("accessor error: <nil>")
 * on a CRD whose status has no conditions yet, as one just created may: so a failed wait is tried again,
 * within the same 60 s.
 */
export async function waitEstablished(kubectl: (args: string[]) => Promise<{ code: number; stderr: string }>, crds: string[]): Promise<void> {
  const end = Date.now() + 60_000;
  for (;;) {
    const left = Math.max(1, Math.ceil((end - Date.now()) / 1000));
    const est = await kubectl(['wait', '--for=condition=Established', `--timeout=${left}s`, ...crds.map((c) => `crd/${c}`)]);
    if (est.code === 0) return;
    if (Date.now() >= end) throw new Error(`CRDs not established: ${est.stderr}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function startTestEnv(opts: Pick<StartOptions, 'nodeAuthorizer' | 'apiServerArgs'> = {}): Promise<TestEnv> {
  const existing = process.env.USE_EXISTING_CLUSTER === 'true';
  let controlPlane: ControlPlane | undefined;
  let kubeconfigPath: string;
  let kubectlBin: string;
  let dir: string | undefined;
  if (existing) {
    kubeconfigPath = process.env.KUBECONFIG ?? join(process.env.HOME ?? '', '.kube', 'config');
    kubectlBin = process.env.TEST_ASSET_KUBECTL ?? resolveBinaries().kubectl;
  } else {
    dir = mkdtempSync(join(tmpdir(), 'aio-cp-'));
    controlPlane = await startControlPlane({ dir, ...opts });
    kubeconfigPath = controlPlane.kubeconfigPath;
    kubectlBin = controlPlane.bins.kubectl;
  }
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const kubectl = (args: string[], input?: string) => runKubectl(kubectlBin, kubeconfigPath, args, input);

  try {
    await installCRDs(kubectlBin, kubeconfigPath);
  } catch (err) {
    await controlPlane?.stop();
    throw err;
  }

  const core = kc.makeApiClient(CoreV1Api);
  const created: string[] = [];
  return {
    kc, kubeconfigPath, controlPlane, kubectl,
    async namespace(prefix = 'test') {
      const name = `${prefix}-${randomBytes(3).toString('hex')}`;
      await core.createNamespace({ body: { metadata: { name } } });
      created.push(name);
      return name;
    },
    async stop() {
      if (controlPlane) {
        await controlPlane.stop();
        if (dir && !process.env.KEEP_TEST_CLUSTER) rmSync(dir, { recursive: true, force: true });
      } else {
        await Promise.all(created.map((name) => core.deleteNamespace({ name }).catch(() => undefined)));
      }
    },
  };
}

export interface TestNode {
  node: V1Node;
  /** Authenticates as the node's kubelet: CN system:node:<name>, O system:nodes, from the control plane's client CA. */
  kc: KubeConfig;
}

/**
 * Creates Node `name` (as admin; a kubelet registers itself, which NodeRestriction
 * would also allow) and a KubeConfig for its kubelet. Needs a control plane we
 * started (a TestEnv, or scripts' own { kc, controlPlane }): the client CA's
 * key signs the certificate.
 */
export async function createNode(env: Pick<TestEnv, 'kc' | 'controlPlane'>, name = 'n1'): Promise<TestNode> {
  const cp = env.controlPlane;
  if (!cp) throw new Error('createNode needs the test control plane: its client CA signs the node certificate');
  const node = await env.kc.makeApiClient(CoreV1Api).createNode({ body: { metadata: { name, labels: { 'kubernetes.io/hostname': name } } } });
  const cert = await makeClientCert(cp.pki.ca, `system:node:${name}`, ['system:nodes']);
  const kc = new KubeConfig();
  kc.loadFromString(kubeconfigYaml(cp.server, cp.pki, `node-${name}`, cert));
  return { node, kc };
}
