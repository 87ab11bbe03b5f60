// Runs the agent-identity CLI as a user would, against a test cluster.
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';

const CLI = join(resolve(import.meta.dirname, '..', '..'), 'src', 'cli', 'main.ts');

/** The CLI's exit status (1 or 2 tell a failure from a usage error), stdout and stderr. */
export function runCli(kubeconfigPath: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(process.execPath, [CLI, `--kubeconfig=${kubeconfigPath}`, ...args], (err, stdout, stderr) => {
      // err.code is the exit status, or a string when the process could not start at all.
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      res({ code, stdout, stderr });
    });
  });
}
