// Runs the agent-identity CLI as a user would, against a test cluster.
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';

const CLI = join(resolve(import.meta.dirname, '..', '..'), 'src', 'cli', 'main.ts');

export function runCli(kubeconfigPath: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(process.execPath, [CLI, `--kubeconfig=${kubeconfigPath}`, ...args], (err, stdout, stderr) => res({ code: err ? 1 : 0, stdout, stderr }));
  });
}
