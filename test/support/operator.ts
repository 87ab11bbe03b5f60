// Runs the real operator in-process against a test environment, with test
// floors lowered (short lifetimes) and quiet logs.
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { KubeConfig, CoreV1Api } from '@kubernetes/client-node';
import { createLogger } from '../../src/log.ts';
import { startOperator, type Operator, type OperatorOptions } from '../../src/operator.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { Metrics } from '../../src/controller/metrics.ts';

export const OPERATOR_NAMESPACE = 'agent-identity-system';
const MAIN = join(resolve(import.meta.dirname, '..', '..'), 'src', 'main.ts');

export async function ensureNamespace(kc: KubeConfig, name: string): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name } } }).catch((e: { code?: number }) => { if (e.code !== 409) throw e; });
}

/**
 * `admin` sets up the operator's namespace, so `kc` may be a least-privilege
 * identity; `options.now` is the operator's clock, for tests that drive time.
 */
export async function runOperator(kc: KubeConfig, overrides: Partial<Config> = {}, admin: KubeConfig = kc, options: OperatorOptions = {}): Promise<Operator> {
  await ensureNamespace(admin, OPERATOR_NAMESPACE);
  const cfg: Config = {
    ...loadConfig([], {}),
    namespace: OPERATOR_NAMESPACE, minDurationMs: 1000, resyncMs: 60_000, concurrency: 4, qps: 50,
    ...overrides,
  };
  const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent', 'json', process.stderr);
  return startOperator(cfg, kc, log, new Metrics(), options);
}

export { eventually } from './eventually.ts';

/** The operator as a real process (`node src/main.ts`, or `entry`: the benches run the image's dist/main.js), for tests that kill it mid-flight. */
export function spawnOperator(kubeconfigPath: string, flags: string[] = [], env: Record<string, string> = {}, entry = MAIN): { proc: ChildProcess; exited: Promise<number | null>; kill(): Promise<void>; terminate(): Promise<number | null>; output(): string } {
  const proc = spawn(process.execPath, [entry, `--kubeconfig=${kubeconfigPath}`, `--namespace=${OPERATOR_NAMESPACE}`, '--http-port=0', '--http-host=127.0.0.1', '--min-duration=1s', ...flags], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return {
    proc,
    exited,
    output: () => out,
    kill: async () => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); await exited; },
    /** SIGTERM, as the kubelet sends when a pod is deleted; resolves to the exit code. */
    terminate: async () => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM'); return exited; },
  };
}
