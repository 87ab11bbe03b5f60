// `make demo`: a local control plane, the CRDs, the operator, and agents
// running the SDK. Three get their identity in a Secret, mounted as the webhook
// would mount it: the orchestrator calls the planner every 250 ms while the
// certificates renew and the root rotates; the planner's policy refuses an
// intruder and a stranger, and says which rule decided. The fourth, coder, gets
// a pod certificate: its pod is bound to node n1, whose kubelet is played by a
// stand-in (test/support/pod-kubelet.ts) that makes the key on the node and
// asks the operator's signer through a PodCertificateRequest; coder and the
// Secret agents call each other over mTLS while coder refreshes, and its key
// is never written to the API. The fifth, researcher, is a Python agent
// (examples/python/agent.py, standard library only) that knows nothing of
// certificates: the identity proxy the webhook injects for spec.proxy holds
// its identity and applies its inbound and egress policy, through the same
// renewal and rotation (test/support/proxied-pod.ts runs the mutated pod's
// containers as processes). The researcher also calls an MCP tools server
// (examples/mcp/tools-server.ts, the official MCP SDK) behind its own identity
// proxy, whose policy lets it call the tool search and not delete_all: its
// tools/list shows search only and delete_all gets JSON-RPC -32003. At the end
// `agent-identity audit` prints who called what from the proxies' audit lines.
// Cleans up after itself, also on Ctrl-C; a failed run keeps the operator's log.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, openSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir, constants } from 'node:os';
import { join, resolve } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { startControlPlane } from '../test/support/controlplane.ts';
import { createNode, runKubectl, waitEstablished } from '../test/support/env.ts';
import { api, isReady } from '../test/support/objects.ts';
import { eventually } from '../test/support/operator.ts';
import { mountIdentity, type Mount } from '../test/support/kubelet.ts';
import { otherCAClient } from '../test/support/tls.ts';
import { createPodCertificateRequest, podCertificateVolumeOf, startPodKubelet } from '../test/support/pod-kubelet.ts';
import { applyPatch } from '../test/unit/webhook/fixtures.ts';
import https from 'node:https';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { createHash } from 'node:crypto';
import { ApiException, CustomObjectsApi, NetworkingV1Api, type V1Pod } from '@kubernetes/client-node';
import { loadIdentity, createServer, createHttpsServer, connect, httpsAgent, peerIdentity, type Identity, type PolicyDocument } from '../src/sdk/index.ts';
import type { PodCertificateRequest, RotationStatus } from '../src/api/types.ts';
import { injectIdentity } from '../src/webhook/mutate.ts';
import { proxyNetworkPolicyName } from '../src/api/defaults.ts';
import type { Pod } from '../src/webhook/pod.ts';
import { x509 } from '../src/pki/crypto.ts';
import { parseCertificates } from '../src/pki/parse.ts';
import { prettyColorize } from '../src/log.ts';
import { freePort, mutatedPod, runProxiedPod } from '../test/support/proxied-pod.ts';
import { repeatCalls, tallyLine } from '../test/support/traffic.ts';
import { startProxyProcess } from '../test/support/proxy.ts';
import { MCP_PATH, startToolsServer } from '../examples/mcp/tools-server.ts';

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
/** Calls `fn` every 250 ms (test/support/traffic.ts) until stopped, or until the demo ends however it ends. */
const traffic = (fn: () => Promise<string>) => {
  const calls = repeatCalls(fn);
  cleanups.push(() => calls.stop());
  return calls;
};
// process.exit runs the exit hooks: the control plane's kills it, onExit removes its files.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => { console.error(`\ninterrupted (${sig}); stopping the operator and control plane`); process.exit(128 + constants.signals[sig]); });
}

try {
  step('Starting a local control plane (etcd, kube-apiserver with the Node authorizer and NodeRestriction, kube-controller-manager)');
  const t0 = Date.now();
  const cp = await startControlPlane({ dir: join(dir, 'cp'), nodeAuthorizer: true });
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
  await waitEstablished((args) => runKubectl(cp.bins.kubectl, cp.kubeconfigPath, args), ['agentidentities.agentidentity.dev', 'trustdomains.agentidentity.dev']);
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

  step('Creating agents: planner (its policy allows the orchestrator, coder and researcher), orchestrator, intruder in Secrets; coder by pod certificate; researcher and the MCP tools server behind the proxy');
  await kubectl('create', 'namespace', 'agents');
  await a.createIdentity('agents', 'planner', { duration: '20s', policy: { allow: [{ agent: { name: 'orchestrator' } }, { agent: { name: 'coder' } }, { agent: { name: 'researcher' } }] } });
  await a.createIdentity('agents', 'orchestrator', { duration: '20s' });
  await a.createIdentity('agents', 'intruder', { duration: '1h' });
  // 1h: the API server's floor for a pod certificate's lifetime.
  await a.createIdentity('agents', 'coder', { delivery: 'PodCertificate', duration: '1h', policy: { allow: [{ agent: { name: 'orchestrator' } }] } });
  // The Python agent: inbound, only the orchestrator may call it; egress, it may call only the planner.
  // Real pods would use fixed ports (8443, 8080); on one host they must be free ones.
  const researcherProxy = { port: await freePort(), appPort: await freePort(), mode: 'http' as const };
  await a.createIdentity('agents', 'researcher', { duration: '20s', proxy: researcherProxy,
    policy: { allow: [{ agent: { name: 'orchestrator' } }], egress: { allow: [{ agent: { name: 'planner' } }, { agent: { name: 'tools' } }] } } });
  // The MCP tools server: the researcher may call its tool search, on /mcp, and nothing else (docs/policy.md).
  const toolsProxy = { port: await freePort(), appPort: await freePort(), mode: 'http' as const };
  const toolsRule = { agent: { name: 'researcher' }, http: { paths: [MCP_PATH] }, mcp: { tools: ['search'] } };
  await a.createIdentity('agents', 'tools', { duration: '1h', proxy: toolsProxy, policy: { allow: [toolsRule] } });
  await eventually(async () => (await Promise.all(['planner', 'orchestrator', 'intruder', 'coder', 'researcher', 'tools'].map((x) => a.getIdentity('agents', x)))).every(isReady), { what: 'identities Ready' });
  console.log((await kubectl('get', 'agentidentities', '-n', 'agents', '-o', 'wide')).replace(/^/gm, '    ').trimEnd());
  info('coder has no certificate yet: its pods will ask for one (Ready reason PodCertificates), and no Secret is made for it');

  step('Mounting each identity as the webhook would (Secret + policy ConfigMap → /var/run/agentidentity layout)');
  const mounts: Record<string, Mount> = {};
  for (const name of ['planner', 'orchestrator', 'intruder']) {
    mounts[name] = await mountIdentity(kc, 'agents', name, join(dir, 'pods', name), 500);
    cleanups.push(() => mounts[name]!.stop());
    info(`${name}: ${mounts[name].dir}/{tls.crt,tls.key,ca.crt,policy.json}`);
  }
  // researcher's identity goes to its proxy sidecar only: the Python process never gets this path.
  const researcherMount = await mountIdentity(kc, 'agents', 'researcher', join(dir, 'pods', 'researcher', 'proxy'), 500);
  cleanups.push(() => researcherMount.stop());
  info(`researcher: ${researcherMount.dir}/{tls.crt,tls.key,ca.crt,policy.json}, for its proxy sidecar only`);
  const toolsMount = await mountIdentity(kc, 'agents', 'tools', join(dir, 'pods', 'tools', 'proxy'), 500);
  cleanups.push(() => toolsMount.stop());
  info(`tools: ${toolsMount.dir}/{tls.crt,tls.key,ca.crt,policy.json}, for its proxy sidecar only`);
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
  const call = async (who: Identity, to = port, authorize = planner) => {
    const s = await connect(who, '127.0.0.1', to, { authorize });
    const reply = await new Promise<string>((res) => { let d = ''; s.on('data', (c) => (d += c)); s.on('close', () => res(d)); s.on('error', () => res(d)); });
    return reply.trim();
  };
  const allowed = (JSON.parse(Buffer.from((await a.getSecret('agents', 'planner-identity')).data!['policy.json']!, 'base64').toString()) as PolicyDocument).allow;
  info(`orchestrator → planner: "${await call(ids.orchestrator!)}" (allowed by ${allowed.find((x) => x.spiffeID.endsWith('/orchestrator'))?.rule})`);
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

  step('researcher: a Python agent (standard library, no certificate code) behind the identity proxy the webhook injects');
  const failed: string[] = [];
  // The planner also serves HTTP over mTLS (the SDK's https server), for agents that speak HTTP.
  const plannerHttp = createHttpsServer(ids.planner!, {}, (req, res) => res.end(`hello ${peerIdentity(req.socket as TLSSocket)?.spiffeID}\n`));
  await new Promise<void>((r) => plannerHttp.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise((r) => plannerHttp.close(r)));
  const plannerHttpPort = (plannerHttp.address() as { port: number }).port;
  const researcherPod = mutatedPod({
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: 'researcher-0', namespace: 'agents', labels: { 'agentidentity.dev/agent': 'researcher' } },
    spec: { serviceAccountName: 'researcher', automountServiceAccountToken: false, containers: [{ name: 'agent', image: 'registry.invalid/researcher',
      env: [{ name: 'PORT', value: String(researcherProxy.appPort) }, { name: 'AGENT_NAME', value: 'researcher' }] }] },
  }, await a.getIdentity('agents', 'researcher'));
  // The API server's own validation of what the webhook made (no scheduler here: it stays Pending).
  await a.core.createNamespacedPod({ namespace: 'agents', body: researcherPod as V1Pod });
  const researcher = await runProxiedPod(researcherPod, researcherMount.dir, ['planner', 'orchestrator', 'tools'].map((x) => `${x}.agents.svc`));
  cleanups.push(() => researcher.stop());
  const { sidecar, agent: agentContainer } = researcher;
  const leaked = (agentContainer.volumeMounts ?? []).length > 0 || (agentContainer.env ?? []).some((e) => e.name.startsWith('AGENT_IDENTITY'));
  if (leaked) throw new Error(`the webhook gave researcher's agent container identity mounts or variables: ${JSON.stringify(agentContainer)}`);
  info(`pod researcher-0 as the webhook mutates it (the API server accepted it):`);
  info(`  initContainer ${sidecar.name} (restartPolicy ${sidecar.restartPolicy}), the only one to mount the identity (${sidecar.volumeMounts!.map((m) => m.mountPath).join(', ')}):`);
  info(`    args: ${(sidecar.args as string[]).join(' ')}`);
  info(`  container agent: no volume mounts; env ${(agentContainer.env ?? []).map((e) => `${e.name}=${e.value}`).join(' ')}`);
  const netpol = await eventually(async () => (await kc.makeApiClient(NetworkingV1Api).readNamespacedNetworkPolicy({ namespace: 'agents', name: proxyNetworkPolicyName('researcher') }).catch(() => undefined)), { what: 'researcher\'s NetworkPolicy' });
  info(`NetworkPolicy ${netpol.metadata!.name} (the operator's): pods ${JSON.stringify(netpol.spec!.podSelector?.matchLabels)} admit ingress on port ${netpol.spec!.ingress![0]!.ports!.map((x) => x.port).join(', ')} only (the cluster's network plugin enforces it; nothing does on this host)`);
  info(`run here as processes: node src/cli/main.ts <those args>, plus for this host ${researcher.hostFlags.join(' ')};`);
  info(`  python3 examples/python/agent.py with exactly the agent container's env (and PATH)`);
  const researcherID = 'spiffe://cluster.local/ns/agents/agent/researcher';
  // keepAlive off: every call is a new mTLS handshake with the proxy, so a renewal or rotation shows at once.
  const httpsGet = (agent: https.Agent) => new Promise<string>((res, rej) => {
    https.get({ host: '127.0.0.1', port: researcherProxy.port, path: '/', agent }, (r) => {
      let d = '';
      r.on('data', (c) => (d += c)).on('end', () => (r.statusCode === 200 ? res(d.trim()) : rej(new Error(`${r.statusCode} ${d.trim()}`))));
    }).on('error', rej);
  });
  const toResearcher = (who: Identity) => httpsAgent(who, { authorize: researcherID, keepAlive: false });
  const orchestratorToResearcher = toResearcher(ids.orchestrator!);
  info(`orchestrator (Node SDK) → researcher: "${await httpsGet(orchestratorToResearcher)}"`);
  const intruderError = await httpsGet(toResearcher(ids.intruder!)).then((r) => {
    failed.push(`intruder → researcher was answered: ${r}`);
    return `answered "${r}"`;
  }, (e: Error) => e.message);
  const inboundRefusal = await researcher.proxy.process.waitFor('refused', (e) => e.direction === 'inbound');
  info(`intruder (Node SDK) → researcher: ${intruderError}; researcher's proxy refused it (${inboundRefusal.reason}):`);
  info(`  ${inboundRefusal.message}`);
  const plannerURL = `http://planner.agents.svc:${plannerHttpPort}/`;
  // planner's policy.json names researcher once the operator has recompiled it (coalesced, about a second
  // after researcher was issued) and the kubelet has projected it: wait for what planner's SDK has loaded.
  await eventually(async () => ids.planner!.policy.allow.some((p) => p.spiffeID === researcherID), { what: 'planner\'s loaded policy to name researcher' });
  const toPlanner = await researcher.call(plannerURL);
  info(`researcher (Python, plain HTTP to its proxy) → ${plannerURL}: ${toPlanner.status} "${toPlanner.body}"`);
  if (toPlanner.status !== 200) failed.push(`researcher → planner: ${toPlanner.status} ${toPlanner.body}`);
  // Refused before any connection is made: nothing needs to listen there.
  const toOrchestrator = await researcher.call('http://orchestrator.agents.svc:8443/');
  info(`researcher (Python) → http://orchestrator.agents.svc:8443/: ${toOrchestrator.status} "${toOrchestrator.body}"`);
  if (toOrchestrator.status !== 403) failed.push(`researcher → orchestrator was not refused by egress: ${toOrchestrator.status} ${toOrchestrator.body}`);

  step('MCP: researcher (Python, plain JSON-RPC) calls a tools server built with the official MCP SDK, behind its own identity proxy');
  const tools = await startToolsServer({ json: false, port: toolsProxy.appPort });
  cleanups.push(() => tools.close());
  // The tools pod's sidecar, as the webhook would run it for spec.proxy, writing its audit lines to a file.
  const toolsAudit = join(dir, 'tools-proxy.audit');
  const toolsSidecar = await startProxyProcess(['--identity-dir', toolsMount.dir, `--inbound-port=${toolsProxy.port}`, '--inbound-address=127.0.0.1',
    `--app-port=${toolsProxy.appPort}`, `--audit-log=${toolsAudit}`]);
  cleanups.push(() => toolsSidecar.process.stop());
  info(`tools: examples/mcp/tools-server.ts (tools search, delete_all; SSE answers) on 127.0.0.1:${toolsProxy.appPort}, its proxy on :${toolsProxy.port}`);
  info(`tools' policy: allow[0] ${JSON.stringify(toolsRule)}`);
  const toolsURL = `http://tools.agents.svc:${toolsProxy.port}${MCP_PATH}`;
  // researcher's proxy finds tools' identity for the host in its policy.json, which names tools once tools exists.
  await eventually(async () => {
    await researcherMount.synced();
    return (JSON.parse(await readFile(join(researcherMount.dir, 'policy.json'), 'utf8')) as PolicyDocument).egress?.destinations.some((d) => d.host === 'tools.agents.svc');
  }, { what: 'researcher\'s mounted policy.json to name the tools host' });
  const session = await researcher.mcp(toolsURL);
  type Answer = { result?: { content?: { text: string }[] }; error?: { code: number; message: string } };
  const [search, deleteAll] = [session.search as Answer | undefined, session.delete_all as Answer | undefined];
  info(`researcher → ${toolsURL} (through its own proxy, mTLS, the tools proxy):`);
  info(`  initialize: server ${String(session.server)}; tools/list: [${(session.tools as string[] | undefined)?.join(', ') ?? session.error}] (the server has search and delete_all)`);
  info(`  tools/call search: ${JSON.stringify(search?.result?.content?.[0]?.text ?? search)}`);
  info(`  tools/call delete_all: error ${deleteAll?.error?.code} ${JSON.stringify(deleteAll?.error?.message)}`);
  info(`  documents on the tools server: ${tools.documents()} of 3 (delete_all never reached it)`);
  if (JSON.stringify(session.tools) !== '["search"]') failed.push(`researcher's tools/list was not filtered to search: ${JSON.stringify(session)}`);
  if (!search?.result?.content?.[0]?.text.includes('SPIFFE')) failed.push(`researcher's search was not answered: ${JSON.stringify(search)}`);
  if (deleteAll?.error?.code !== -32003) failed.push(`researcher's delete_all was not refused with -32003: ${JSON.stringify(deleteAll)}`);
  if (tools.documents() !== 3) failed.push(`delete_all reached the tools server: ${tools.documents()} documents left`);

  step('Traffic every 250 ms while certificates renew and the root rotates: orchestrator → planner (SDK to SDK), orchestrator → researcher and researcher → planner (through its proxy)');
  const viaProxy: Array<[string, ReturnType<typeof traffic>]> = [
    ['orchestrator (Node SDK) → researcher (Python, behind its proxy)', traffic(() => httpsGet(orchestratorToResearcher))],
    ['researcher (Python, through its proxy) → planner (Node SDK)', traffic(async () => {
      const r = await researcher.call(plannerURL);
      if (r.status !== 200) throw new Error(`${r.status} ${r.body}`);
      return r.body;
    })],
  ];
  const direct = traffic(() => call(ids.orchestrator!));
  const serial = () => ids.planner!.svid.serialNumber;
  const first = serial();
  await eventually(async () => serial() !== first, { timeoutMs: 30_000, what: 'a renewal' });
  info(`planner renewed: serial ${first.slice(0, 12)}… → ${serial().slice(0, 12)}… (reason ${(await a.getIdentity('agents', 'planner')).status!.lastIssuanceReason}); ${direct.tally.ok} calls so far, ${direct.tally.failed.length} failed`);
  // The proxy logs each reload of its mounted files (a policy.json update too): a renewal is a new serial.
  const reloads = () => researcher.proxy.process.events.filter((e) => e.event === 'identity reloaded');
  const researcherFirst = researcher.proxy.process.events.find((e) => e.event === 'listening')!.serialNumber as string;
  const renewed = await eventually(async () => reloads().find((e) => e.serialNumber !== researcherFirst), { timeoutMs: 30_000, what: 'researcher\'s renewal' });
  info(`researcher renewed: serial ${researcherFirst.slice(0, 12)}… → ${String(renewed.serialNumber).slice(0, 12)}…, reloaded by its proxy; the Python process never saw it; ${viaProxy.map(([, l]) => l.tally.ok).join(' + ')} calls through the proxy so far, ${viaProxy.reduce((k, [, l]) => k + l.tally.failed.length, 0)} failed`);

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
  for (const [label, l] of [['orchestrator → planner (SDK to SDK)', direct] as const, ...viaProxy]) {
    await l.stop();
    info(`${label}: ${tallyLine(l.tally)}`);
    failed.push(...l.tally.failed);
  }
  const served = new Set(reloads().map((e) => e.serialNumber)).add(researcherFirst).size;
  info(`researcher's proxy served ${served} certificates one after another (renewals and the rotation's re-issue), never restarted`);

  step('coder: a pod on node n1 whose key is born on the node');
  info('The node\'s side is played by a STAND-IN FOR THE KUBELET (test/support/pod-kubelet.ts): it makes the key "on the node",');
  info('asks for the certificate with a PodCertificateRequest as system:node:n1 and writes the files into the pod\'s volume.');
  info('Everything across the API from it is real: kube-apiserver\'s Node authorizer and NodeRestriction, the operator\'s signer.');
  const [n1, n2] = [await createNode({ kc, controlPlane: cp }, 'n1'), await createNode({ kc, controlPlane: cp }, 'n2')];
  const bare: Pod = {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: 'coder-0', namespace: 'agents', labels: { 'agentidentity.dev/agent': 'coder' } },
    spec: { serviceAccountName: 'coder', nodeName: 'n1', automountServiceAccountToken: false, containers: [{ name: 'agent', image: 'registry.invalid/coder' }] },
  };
  const injection = injectIdentity(bare, await a.getIdentity('agents', 'coder'));
  if (injection.refusal) throw new Error(`the webhook would refuse coder-0: ${injection.refusal.message}`);
  const coderPod = await a.core.createNamespacedPod({ namespace: 'agents', body: applyPatch(bare, injection.patch) as V1Pod });
  const source = podCertificateVolumeOf(coderPod)!.source;
  info(`pod coder-0 on n1, injected as the webhook does: podCertificate { signerName: ${source.signerName}, keyType: ${source.keyType}, maxExpirationSeconds: ${source.maxExpirationSeconds} }`);
  // NodeRestriction: only the node the pod is bound to may ask for its certificate.
  const saUID = (await a.core.readNamespacedServiceAccount({ namespace: 'agents', name: 'coder' })).metadata!.uid!;
  const byN2 = await createPodCertificateRequest(n2.kc, { pod: coderPod, serviceAccountUID: saUID, nodeUID: n1.node.metadata!.uid!, source }).then(
    () => 'accepted (it should not be)',
    (e: Error) => (e instanceof ApiException ? `${e.code} ${(JSON.parse(e.body as string) as { message: string }).message.replace(/^.* is forbidden: /, '')}` : e.message));
  info(`node n2 asking for coder-0's certificate: ${byN2}`);
  if (!byN2.startsWith('403')) failed.push(`node n2 was not refused: ${byN2}`);
  let refreshes = 0;
  const tk = Date.now();
  // The API's floor is 1 h, so beginRefreshAt is ~45 min away: the stand-in's hook refreshes the first certificate after 4 s instead.
  const kubelet = await startPodKubelet({ kc: n1.kc, namespace: 'agents', pod: 'coder-0', dir: join(dir, 'pods', 'coder'), pollMs: 200,
    refreshAt: (at) => (refreshes++ === 0 ? new Date(Date.now() + 4000) : at) });
  cleanups.push(() => kubelet.stop());
  const issued = await kubelet.outcome();
  if (issued.type !== 'Issued') throw new Error(`coder's request was ${issued.type}: ${issued.reason}: ${issued.message}`);
  const hhmm = (d: Date) => d.toISOString().slice(11, 19);
  info(`PodCertificateRequest ${issued.request.metadata.name} Issued by the signer ${Date.now() - tk} ms after the stand-in started:`);
  info(`  ${parseCertificates(issued.certificateChain).length} certificates (leaf, intermediate), valid ${hhmm(issued.notBefore)}–${hhmm(issued.notAfter)} UTC, beginRefreshAt ${hhmm(issued.beginRefreshAt)}`);
  ids.coder = await loadIdentity({ dir: join(dir, 'pods', 'coder'), pollIntervalMs: 500 });
  cleanups.push(() => ids.coder!.close());
  info(`coder: ${join(dir, 'pods', 'coder')}/{credential-bundle.pem,ca.crt,policy.json} → ${ids.coder.spiffeID}`);

  step('Both deliveries side by side over mTLS, every 250 ms, while coder\'s pod certificate refreshes');
  const coderServer = createServer(ids.coder, {}, (s) => s.end(`hello ${peerIdentity(s)?.spiffeID}\n`));
  await new Promise<void>((r) => coderServer.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise((r) => coderServer.close(r)));
  const coderPort = (coderServer.address() as { port: number }).port;
  const coderID = 'spiffe://cluster.local/ns/agents/agent/coder';
  const pairs: Array<[string, () => Promise<string>]> = [
    ['coder (pod certificate) → planner (Secret)', () => call(ids.coder!)],
    ['orchestrator (Secret) → coder (pod certificate)', () => call(ids.orchestrator!, coderPort, coderID)],
  ];
  for (const [label, fn] of pairs) info(`${label}: "${await fn()}"`);
  const loops = pairs.map(([, fn]) => traffic(fn));
  const spki = (pem: string) => createHash('sha256').update(Buffer.from(parseCertificates(pem)[0]!.publicKey.rawData)).digest('hex').slice(0, 12);
  const firstSerial = ids.coder.svid.serialNumber;
  await eventually(async () => ids.coder!.svid.serialNumber !== firstSerial, { timeoutMs: 30_000, what: 'coder\'s refresh' });
  const refreshed = await kubelet.outcome();
  if (refreshed.type !== 'Issued') throw new Error(`coder's refresh was ${refreshed.type}: ${refreshed.reason}`);
  info(`coder refreshed: ${issued.request.metadata.name} → ${refreshed.request.metadata.name}, serial ${firstSerial.slice(0, 12)}… → ${ids.coder.svid.serialNumber.slice(0, 12)}…,`);
  info(`  a new key made on the node (public key sha256 ${spki(issued.certificateChain)}… → ${spki(refreshed.certificateChain)}…); the SDK reloaded it without a restart`);
  await new Promise((r) => setTimeout(r, 1500));
  await Promise.all(loops.map((l) => l.stop()));
  pairs.forEach(([label], i) => {
    info(`${label}: ${tallyLine(loops[i]!.tally)}`);
    failed.push(...loops[i]!.tally.failed);
  });

  step('coder\'s private key was never written to the API');
  const hasKey = (data: Record<string, string> = {}) => Object.values(data).some((v) => Buffer.from(v, 'base64').toString().includes('PRIVATE KEY'));
  const keyed = (await a.core.listNamespacedSecret({ namespace: 'agents' })).items.filter((x) => hasKey(x.data)).map((x) => x.metadata!.name!).sort();
  info(`Secrets in namespace agents holding a private key: ${keyed.join(', ')} (the Secret agents'); for coder: ${keyed.some((x) => x.startsWith('coder')) ? 'SOME' : 'none'}`);
  if (keyed.some((x) => x.startsWith('coder'))) failed.push('a Secret of coder holds a private key');
  const pcrs = (await kc.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({ group: 'certificates.k8s.io', version: 'v1', plural: 'podcertificaterequests', namespace: 'agents' }) as { items: PodCertificateRequest[] }).items
    .filter((p) => p.spec.podName === 'coder-0');
  // In the order the stand-in sent them.
  const sent = kubelet.requests.map((r) => r.metadata.name);
  pcrs.sort((x, y) => sent.indexOf(x.metadata.name) - sent.indexOf(y.metadata.name));
  for (const p of pcrs) {
    const csr = new x509.Pkcs10CertificateRequest(Buffer.from(p.spec.stubPKCS10Request, 'base64'));
    const csrKey = createHash('sha256').update(Buffer.from(csr.publicKey.rawData)).digest('hex').slice(0, 12);
    const chain = p.status?.certificateChain ?? '';
    const leaked = JSON.stringify(p).includes('PRIVATE KEY');
    const sameKey = chain !== '' && spki(chain) === csrKey;
    if (leaked) failed.push(`PodCertificateRequest ${p.metadata.name} holds a private key`);
    if (!sameKey) failed.push(`PodCertificateRequest ${p.metadata.name}: the leaf is not for the CSR's key`);
    info(`${p.metadata.name}: spec.stubPKCS10Request = CSR (subject "${csr.subject}", public key sha256 ${csrKey}…); status.certificateChain = ${parseCertificates(chain).length} certificates,`);
    info(`  leaf for ${sameKey ? 'that same public key' : 'ANOTHER key'}; a PRIVATE KEY block anywhere in the object: ${leaked ? 'FOUND' : 'none'}`);
  }
  info(`the key exists only in the pod's volume on n1: ${join(dir, 'pods', 'coder', 'credential-bundle.pem')}`);
  info('(so a root rotation now would keep the old root in the bundle until coder\'s certificates under it expire, within 1 h: the operator cannot re-issue a key it never held)');

  step('Who called what: agent-identity audit, from the proxies\' audit lines');
  // The tools proxy wrote a file (SIGTERM writes what is queued); researcher's proxy wrote to stdout, as
  // `kubectl logs researcher-0 -c agent-identity-proxy` would show, and the demo kept its lines.
  await toolsSidecar.process.stop();
  const researcherLines = researcher.proxy.process.events.filter((e) => e.event === 'audit').map(({ event: _, ...line }) => `${JSON.stringify(line)}\n`);
  const allAudit = join(dir, 'all.audit');
  await writeFile(allAudit, (await readFile(toolsAudit, 'utf8')) + researcherLines.join(''));
  info(`${toolsAudit} and researcher's proxy stdout → agent-identity audit -f ${allAudit}`);
  const auditTable = await cli('audit', '-f', allAudit);
  console.log(auditTable.replace(/^/gm, '    ').trimEnd());
  info('agent-identity audit -f … -o mermaid (denied edges dashed and red):');
  console.log((await cli('audit', '-f', allAudit, '-o', 'mermaid')).replace(/^/gm, '    ').trimEnd());
  // Identities show as namespace/name when every ID in the table is of one trust domain, else as full SPIFFE IDs (call-graph.ts).
  const row = (target: string, denied: number) => new RegExp(`(^|\\s)(\\S+/agent/|agents/)researcher +(\\S+/agent/|agents/)tools +${target} +inbound +1 +${denied}`, 'm');
  if (!row('tools/call delete_all', 1).test(auditTable)) failed.push(`the audit table has no denied delete_all row:\n${auditTable}`);
  if (!row('tools/call search', 0).test(auditTable)) failed.push(`the audit table has no allowed search row:\n${auditTable}`);

  step('Cleaning up');
  await cleanup();
  info('agents, operator and control plane stopped');
  for (const f of failed) console.error(`demo failed: ${f}`);
  if (failed.length) process.exitCode = 1;
  else succeeded = true;
} catch (err) {
  console.error(`demo failed: ${(err as Error).message}`);
  await cleanup();
  process.exitCode = 1;
}
