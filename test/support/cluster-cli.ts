// `make cluster-up` / `make cluster-down`: a persistent local control plane in
// .local/, with .local/kubeconfig and .local/env (source it for KUBECONFIG, and
// on PATH kubectl, the pinned Node 24 and bin/agent-identity). Both commands
// are idempotent.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { request } from 'node:https';
import { resolveBinaries, startControlPlane, stopFromDir } from './controlplane.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const LOCAL = join(ROOT, '.local');
const CP_DIR = join(LOCAL, 'control-plane');

async function running(): Promise<boolean> {
  const pidFile = join(CP_DIR, 'pids');
  if (!existsSync(pidFile)) return false;
  const pids = readFileSync(pidFile, 'utf8').split('\n').filter(Boolean).map(Number);
  const allAlive = pids.every((pid) => { try { process.kill(pid, 0); return true; } catch { return false; } });
  if (!allAlive) return false;
  const kc = readFileSync(join(LOCAL, 'kubeconfig'), 'utf8');
  const server = /server: (\S+)/.exec(kc)?.[1];
  const pki = (name: string) => readFileSync(join(CP_DIR, 'pki', name), 'utf8');
  // Admin cert lives in the kubeconfig; /livez needs no auth, which is enough here.
  return new Promise((res) => {
    const req = request(`${server}/livez`, { ca: pki('ca.crt'), timeout: 2000 }, (r) => { r.resume(); res(r.statusCode === 200 || r.statusCode === 401 || r.statusCode === 403); });
    req.on('error', () => res(false));
    req.end();
  });
}

/** Absolute paths, so a shell that sourced it works from any directory and with any Node of its own. */
function writeEnv(kubectlDir: string): void {
  const path = [join(ROOT, 'bin'), join(ROOT, 'node_modules', '.bin'), kubectlDir].join(':');
  writeFileSync(join(LOCAL, 'env'), `export KUBECONFIG=${join(LOCAL, 'kubeconfig')}\nexport PATH=${path}:$PATH\n`);
}

async function up() {
  if (await running()) {
    // Rewritten anyway: an env file from an older checkout may lack what is on PATH now.
    writeEnv(dirname(resolveBinaries().kubectl));
    console.log(`control plane already running; source ${join(LOCAL, 'env')}`);
    return;
  }
  await stopFromDir(CP_DIR);
  const cp = await startControlPlane({ dir: CP_DIR, persistent: true });
  writeFileSync(join(LOCAL, 'kubeconfig'), readFileSync(cp.kubeconfigPath), { mode: 0o600 });
  writeEnv(cp.binDir);
  console.log(`control plane up at ${cp.server}; source ${join(LOCAL, 'env')}`);
}

async function down() {
  await stopFromDir(CP_DIR);
  console.log('control plane stopped');
}

const cmd = process.argv[2];
if (cmd === 'up') await up();
else if (cmd === 'down') await down();
else { console.error('usage: cluster-cli.ts up|down'); process.exit(2); }
