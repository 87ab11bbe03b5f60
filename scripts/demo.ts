// `make demo`: a local control plane, the CRDs, the operator, and three
// agents running the SDK with their identities mounted as the webhook would
// mount them. The orchestrator calls the planner every 250 ms while the
// certificates renew and the root rotates; the planner's policy refuses an
// intruder and a stranger, and says which rule decided. Cleans up after itself,
// also on Ctrl-C; a failed run keeps the operator's log.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, openSync } from 'node:fs';
import { tmpdir, constants } from 'node:os';
import { join, resolve } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { startControlPlane } from '../test/support/controlplane.ts';
import { runKubectl } from '../test/support/env.ts';
import { api, isReady } from '../test/support/objects.ts';
import { eventually } from '../test/support/operator.ts';
import { mountIdentity, type Mount } from '../test/support/kubelet.ts';
import { otherCAClient } from '../test/support/tls.ts';
import { connect as tlsConnect } from 'node:tls';
import { loadIdentity, createServer, connect, peerIdentity, type Identity } from '../src/sdk/index.ts';
import type { RotationStatus } from '../src/api/types.ts';
import { prettyColorize } from '../src/log.ts';

const ROOT = resolve(import.meta.dirname, '..');
let n = 0;
// Bold headings on a terminal only: a redirected demo log stays plain text.
const bold = prettyColorize(process.stdout.isTTY === true, process.env) ? (s: string) => `\x1b[1m${s}\x1b[0m` : (s: string) => s;
const step = (s: string) => console.log(`\n${bold(`[${++n}] ${s}`)}`);
const info = (s: string) => console.log(`    ${s}`);

/** One line per rotation step, in words: what has moved to the new root so far. */
function rotationLine(r: RotationStatus): string {
  switch (r.phase) {
    case 'PublishingRoot': return `publishing the new root: bundle copies that carry it ${r.bundleCopiesUpdated}/${r.bundleCopies}`;
    case 'ReissuingLeaves': return `the new root signs; leaves moved to it ${r.leaves - r.leavesRemaining}/${r.leaves}`;
    case 'RetiringRoot': return `all ${r.leaves} leaves on the new root; the old root leaves the bundle after a grace period`;
  }
}

// The control plane's data (100+ MB) lives in dir; the log sits next to it so a failed run can keep it.
const dir = mkdtempSync(join(tmpdir(), 'aio-demo-'));
const logFile = `${dir}-operator.log`;
let operator: ChildProcess | undefined;
let succeeded = false;
const cleanups: Array<() => unknown> = [];
const cleanup = async () => {
  for (const c of cleanups.reverse()) await Promise.resolve().then(c).catch((e: Error) => console.error(`cleanup: ${e.message}`));
  cleanups.length = 0;
};
// However the demo ends (done, failed, Ctrl-C, SIGTERM): nothing of it keeps running or stays on disk but a failed run's log.
const onExit = () => {
  if (operator?.exitCode === null && operator.signalCode === null) operator.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
  if (succeeded) rmSync(logFile, { force: true });
  else if (operator) console.error(`operator log kept: ${logFile}`);
};
process.on('exit', onExit);
// process.exit runs the exit hooks: the control plane's kills it, onExit removes its files.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => { console.error(`\ninterrupted (${sig}); stopping the operator and control plane`); process.exit(128 + constants.signals[sig]); });
}

try {
  step('Starting a local control plane (etcd, kube-apiserver, kube-controller-manager)');
  const t0 = Date.now();
  const cp = await startControlPlane({ dir: join(dir, 'cp') });
  cleanups.push(() => cp.stop());
  // After the control plane's own exit hook (which kills it), so its files are removed once nothing writes them.
  process.removeListener('exit', onExit);
  process.on('exit', onExit);
  info(`API server ${cp.server} ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const kubectl = async (...args: string[]) => {
    const r = await runKubectl(cp.bins.kubectl, cp.kubeconfigPath, args);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  step('Installing the CRDs and the default TrustDomain');
  // The demo leaves out the 10m minimum-lifetime admission policy that `make install`
  // applies, so renewals happen in seconds instead of minutes.
  info((await kubectl('apply', '--server-side', '-f', join(ROOT, 'crds'))).trim().replace(/\n/g, '\n    '));
  await kubectl('wait', '--for=condition=Established', 'crd/agentidentities.agentidentity.dev', 'crd/trustdomains.agentidentity.dev');
  await kubectl('create', 'namespace', 'agent-identity-system');
  info((await kubectl('apply', '-f', join(ROOT, 'examples', 'trustdomain-default.yaml'))).trim());

  step('Running the operator (node src/main.ts) with demo-sized rotation timings');
  operator = spawn(process.execPath, [join(ROOT, 'src', 'main.ts'), `--kubeconfig=${cp.kubeconfigPath}`, '--http-port=0',
    '--min-duration=5s', '--rotation-propagation-delay=2s', '--rotation-reissue-window=3s', '--rotation-grace=2s', '--rotation-poll=500ms'],
  { stdio: ['ignore', openSync(logFile, 'a'), openSync(logFile, 'a')] });
  const op = operator;
  cleanups.push(async () => { op.kill('SIGTERM'); await new Promise((r) => op.once('exit', r)); });
  info(`pid ${operator.pid}, logs in ${logFile}`);
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  const a = api(kc);
  await eventually(async () => isReady(await a.getTrustDomain('default')), { what: 'TrustDomain default Ready' });
  const td = await a.getTrustDomain('default');
  info(`TrustDomain default: root ${td.status!.roots![0]!.fingerprint.slice(0, 23)}…, intermediate signs leaves`);

  step('Creating agents: planner (its policy allows only the orchestrator), orchestrator, intruder');
  await kubectl('create', 'namespace', 'agents');
  await a.createIdentity('agents', 'planner', { duration: '20s', policy: { allow: [{ agent: { name: 'orchestrator' } }] } });
  await a.createIdentity('agents', 'orchestrator', { duration: '20s' });
  await a.createIdentity('agents', 'intruder', { duration: '1h' });
  await eventually(async () => (await Promise.all(['planner', 'orchestrator', 'intruder'].map((x) => a.getIdentity('agents', x)))).every(isReady), { what: 'identities Ready' });
  console.log((await kubectl('get', 'agentidentities', '-n', 'agents')).replace(/^/gm, '    ').trimEnd());

  step('Mounting each identity as the webhook would (Secret + policy ConfigMap → /var/run/agentidentity layout)');
  const mounts: Record<string, Mount> = {};
  for (const name of ['planner', 'orchestrator', 'intruder']) {
    mounts[name] = await mountIdentity(kc, 'agents', name, join(dir, 'pods', name), 500);
    cleanups.push(() => mounts[name]!.stop());
    info(`${name}: ${mounts[name].dir}/{tls.crt,tls.key,ca.crt,policy.json}`);
  }
  const ids: Record<string, Identity> = {};
  for (const name of Object.keys(mounts)) {
    ids[name] = await loadIdentity({ dir: mounts[name]!.dir, pollIntervalMs: 500 });
    cleanups.push(() => ids[name]!.close());
  }

  step('planner serves with the SDK; callers are checked against its policy.json');
  const server = createServer(ids.planner!, {}, (s) => s.end(`hello ${peerIdentity(s)?.spiffeID}\n`));
  server.on('refused', (err: Error) => info(`planner refused: ${err.message}`));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise((r) => server.close(r)));
  const port = (server.address() as { port: number }).port;
  const planner = 'spiffe://cluster.local/ns/agents/agent/planner';
  const call = async (who: Identity) => {
    const s = await connect(who, '127.0.0.1', port, { authorize: planner });
    const reply = await new Promise<string>((res) => { let d = ''; s.on('data', (c) => (d += c)); s.on('close', () => res(d)); s.on('error', () => res(d)); });
    return reply.trim();
  };
  info(`orchestrator → planner: "${await call(ids.orchestrator!)}" (allowed by ${JSON.parse((await a.core.readNamespacedConfigMap({ namespace: 'agents', name: 'planner-identity-policy' })).data!['policy.json']!).allow[0].rule})`);
  info(`intruder → planner: "${await call(ids.intruder!)}" (a valid identity of the same trust domain, but not in the policy)`);
  await new Promise((r) => setTimeout(r, 200));
  // A stranger holds a certificate from another CA; it knows the cluster's public bundle, so only planner can refuse it.
  const stranger = await otherCAClient();
  const bundle = Buffer.from((await a.getSecret('agents', 'planner-identity')).data!['ca.crt']!, 'base64').toString();
  await new Promise<void>((res) => {
    const s = tlsConnect({ host: '127.0.0.1', port, cert: stranger.cert, key: stranger.key, ca: bundle, checkServerIdentity: () => undefined });
    s.on('data', () => undefined).on('close', () => res()).on('error', () => res());
  });
  info('stranger → planner: connection closed before any data');
  await new Promise((r) => setTimeout(r, 200));

  step('Traffic: the orchestrator calls the planner every 250 ms while certificates renew and the root rotates');
  let ok = 0;
  const failed: string[] = [];
  let traffic = true;
  const loop = (async () => {
    while (traffic) {
      await call(ids.orchestrator!).then((r) => (r.startsWith('hello') ? ok++ : failed.push(`empty reply at ${new Date().toISOString()}`)), (e: Error) => failed.push(e.message));
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  const serial = () => ids.planner!.svid.serialNumber;
  const first = serial();
  await eventually(async () => serial() !== first, { timeoutMs: 30_000, what: 'a renewal' });
  info(`planner renewed: serial ${first.slice(0, 12)}… → ${serial().slice(0, 12)}… (reason ${(await a.getIdentity('agents', 'planner')).status!.lastIssuanceReason}); ${ok} calls so far, ${failed.length} failed`);

  const cli = (...args: string[]) => new Promise<string>((res) => execFile(process.execPath, [join(ROOT, 'src', 'cli', 'main.ts'), `--kubeconfig=${cp.kubeconfigPath}`, ...args], (_e, out) => res(out)));
  info((await cli('ca', 'rotate', 'default')).trim());
  let last = '';
  await eventually(async () => {
    const t = await a.getTrustDomain('default');
    const r = t.status?.rotation;
    const line = r ? `rotation ${r.phase}: ${rotationLine(r)}` : last;
    if (line !== last) info((last = line));
    return last !== '' && !r && t.status!.roots!.length === 1;
  }, { timeoutMs: 60_000, intervalMs: 100, what: 'the rotation to finish' });
  info(`rotation complete: one root again (${(await a.getTrustDomain('default')).status!.roots![0]!.fingerprint.slice(0, 23)}…)`);
  await new Promise((r) => setTimeout(r, 1500));
  traffic = false;
  await loop;
  info(`${ok} calls, ${failed.length} failed${failed.length ? `: ${failed.slice(0, 3).join('; ')}` : ''}`);

  step('Cleaning up');
  await cleanup();
  info('agents, operator and control plane stopped');
  if (failed.length) process.exitCode = 1;
  else succeeded = true;
} catch (err) {
  console.error(`demo failed: ${(err as Error).message}`);
  await cleanup();
  process.exitCode = 1;
}
