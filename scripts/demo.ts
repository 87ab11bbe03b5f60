// `make demo`: start a local control plane, install the CRDs, run the
// operator, create two agents, and show them completing mutual TLS with their
// issued certificates while a stranger from another CA is refused. Cleans up
// after itself.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createServer, connect, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { startControlPlane } from '../test/support/controlplane.ts';
import { runKubectl } from '../test/support/env.ts';
import { api, isReady, secretText } from '../test/support/objects.ts';
import { eventually } from '../test/support/operator.ts';
import { otherCAClient, type Material } from '../test/support/tls.ts';

const ROOT = resolve(import.meta.dirname, '..');
let n = 0;
const step = (s: string) => console.log(`\n\x1b[1m[${++n}] ${s}\x1b[0m`);
const info = (s: string) => console.log(`    ${s}`);

const dir = mkdtempSync(join(tmpdir(), 'aio-demo-'));
let stopAll = async () => {};
process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));

try {
  step('Starting a local control plane (etcd, kube-apiserver, kube-controller-manager)');
  const t0 = Date.now();
  const cp = await startControlPlane({ dir: join(dir, 'cp') });
  stopAll = async () => { await cp.stop(); };
  info(`API server ${cp.server} ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const kubectl = async (...args: string[]) => {
    const r = await runKubectl(cp.bins.kubectl, cp.kubeconfigPath, args);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  step('Installing the CRDs and the default TrustDomain (make install)');
  const install = spawn('bash', [join(ROOT, 'scripts', 'install.sh')], { env: { ...process.env, KUBECONFIG: cp.kubeconfigPath, KUBECTL: cp.bins.kubectl }, stdio: ['ignore', 'pipe', 'inherit'] });
  install.stdout.on('data', (d: Buffer) => d.toString().trim().split('\n').forEach((l) => info(l)));
  await new Promise<void>((res, rej) => install.on('exit', (c) => (c === 0 ? res() : rej(new Error(`install exited ${c}`)))));

  step('Running the operator (node src/main.ts)');
  const logFile = join(dir, 'operator.log');
  const operator = spawn(process.execPath, [join(ROOT, 'src', 'main.ts'), `--kubeconfig=${cp.kubeconfigPath}`, '--http-port=0', '--log-level=info'], { stdio: ['ignore', openSync(logFile, 'a'), openSync(logFile, 'a')] });
  stopAll = async () => { operator.kill('SIGTERM'); await new Promise((r) => operator.once('exit', r)); await cp.stop(); };
  info(`pid ${operator.pid}, logs in ${logFile}`);

  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  const a = api(kc);
  await eventually(async () => isReady(await a.getTrustDomain('default')), { what: 'TrustDomain default Ready' });
  const td = await a.getTrustDomain('default');
  info(`TrustDomain default: CA ${td.status!.caFingerprint!.slice(0, 23)}…, expires ${td.status!.caNotAfter}`);

  step('Creating two agents: orchestrator and planner');
  await kubectl('create', 'namespace', 'agents');
  for (const name of ['orchestrator', 'planner']) {
    await a.createIdentity('agents', name, { dnsNames: [`${name}.agents.svc`] });
    info(`AgentIdentity agents/${name} (serviceAccountName: ${name})`);
  }
  const t1 = Date.now();
  await eventually(async () => (await Promise.all(['orchestrator', 'planner'].map((x) => a.getIdentity('agents', x)))).every(isReady), { what: 'both identities Ready' });
  info(`both Ready in ${Date.now() - t1} ms`);
  console.log((await kubectl('get', 'agentidentities', '-n', 'agents')).replace(/^/gm, '    '));

  const material = async (name: string): Promise<Material> => {
    const s = await a.getSecret('agents', `${name}-identity`);
    return { cert: secretText(s, 'tls.crt'), key: secretText(s, 'tls.key'), ca: secretText(s, 'ca.crt') };
  };
  const planner = await material('planner');
  const orchestrator = await material('orchestrator');

  step('planner serves mutual TLS with its Secret; orchestrator connects with its own');
  // The handshake completes either way so planner can say why it refuses: the
  // decision is s.authorized, i.e. "does the peer chain to our trust bundle?".
  const server = createServer({ ...planner, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' }, (s: TLSSocket) => {
    const peer = spiffeIDOf(s);
    if (!s.authorized) {
      info(`planner refused ${peer}: ${s.authorizationError}`);
      s.destroy();
      return;
    }
    s.end(`hello ${peer}, this is planner\n`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;

  const call = (client: Material, label: string) => new Promise<void>((res) => {
    const sock = connect({ host: '127.0.0.1', port, ...client, checkServerIdentity: () => undefined, minVersion: 'TLSv1.3' });
    let data = '';
    sock.on('secureConnect', () => info(`${label}: handshake done, server is ${spiffeIDOf(sock)}`));
    sock.on('data', (d) => (data += d));
    sock.on('close', () => { info(data ? `${label}: received "${data.trim()}"` : `${label}: connection closed by planner`); res(); });
    sock.on('error', (err) => info(`${label}: ${err.message}`));
  });
  await call(orchestrator, 'orchestrator');

  step('A stranger with a certificate from another CA tries the same');
  // The stranger knows the cluster's public bundle, so it accepts planner; planner must refuse it.
  await call({ ...(await otherCAClient()), ca: planner.ca }, 'stranger');
  await new Promise((r) => setTimeout(r, 200));
  server.close();

  step('Cleaning up');
  await stopAll();
  stopAll = async () => {};
  info('operator and control plane stopped');
} catch (err) {
  console.error(`demo failed: ${(err as Error).message}`);
  await stopAll();
  process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}

function spiffeIDOf(s: TLSSocket): string {
  return s.getPeerCertificate().subjectaltname?.split(', ').find((x) => x.startsWith('URI:spiffe://'))?.slice(4) ?? '(no SPIFFE ID)';
}
