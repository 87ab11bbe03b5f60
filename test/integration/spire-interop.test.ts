// Interop with SPIRE (issue 21, item 5): a real spire-server v1.13.3 (built from
// the Go module proxy by scripts/spire-server.sh) is the partner trust domain
// spire.test, federated both ways with our TrustDomain cluster-a.test over
// https_spiffe bundle endpoints, against a real API server and our operator:
// - SPIRE fetches our bundle from our endpoint (it then holds our Roots with our
//   refresh hint, which the PEM it was bootstrapped with did not carry), and
//   follows a root rotation;
// - we fetch SPIRE's bundle from its endpoint (ClusterFederatedTrustDomain
//   status: sequence and Root fingerprints equal SPIRE's own bundle);
// - an X.509-SVID minted by SPIRE and one of our AgentIdentity SVIDs complete
//   mTLS both ways in go-spiffe (test/interop/spiffe-peer), each side verifying
//   the other with the bundle that federation delivered to it, and fail without it.
// - the same SPIRE-minted SVID and a real SDK agent (its files mounted as the
//   kubelet does, federated-bundles.json included) complete mTLS both ways, our
//   agent as server and as client; our SDK refuses the SPIRE workload when our
//   TrustDomain stops federating with spire.test (UntrustedChain) or when the
//   agent's policy does not admit it (NotAuthorized).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { createServer as createTcpServer } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { TestEnv } from '../support/env.ts';
import { setUp, tearDown } from '../support/suite.ts';
import { eventually, OPERATOR_NAMESPACE } from '../support/operator.ts';
import { api, secretText } from '../support/objects.ts';
import { goTool, startSpire, type SpirePartner } from '../support/spire.ts';
import { ANNOTATION_ROTATE_REQUESTED_AT, CLUSTER_FEDERATED_TRUST_DOMAIN, GROUP, VERSION } from '../../src/api/group.ts';
import type { ClusterFederatedTrustDomain, ConfigMap } from '../../src/api/types.ts';
import type { Operator } from '../../src/operator.ts';
import { startBundleEndpoint, type BundleEndpoint } from '../../src/federation/endpoint.ts';
import { parseBundleDocument, rootFingerprints, type SpiffeBundle } from '../../src/federation/document.ts';
import { parseCertificates } from '../../src/pki/parse.ts';
import { createLogger } from '../../src/log.ts';
import { mountIdentity, type Mount } from '../support/kubelet.ts';
import { startProxyProcess } from '../support/proxy.ts';
import { connect, createServer, loadIdentity, PeerRefusedError, peerIdentity, type AgentServer, type Identity } from '../../src/sdk/index.ts';

const OUR_TD = 'cluster-a.test';
const SPIRE_TD = 'spire.test';
const OUR_ENDPOINT_ID = `spiffe://${OUR_TD}/agent-identity-operator/bundle-endpoint`;
// Our refresh hint: a rotation waits it (plus the propagation delay) before the new Root signs, so SPIRE,
// polling us at the hint, holds the Root before our endpoint's SVID chains to it. SPIRE treats any hint
// under a minute as one, so the tests ask it to refresh instead of waiting.
const REFRESH_HINT_S = 10;
const OPERATOR = { federationRefreshMinMs: 1000, federationRefreshMaxMs: 3000, propagationDelayMs: 1500, reissueWindowMs: 1000, rotationGraceMs: 1500, rotationPollMs: 300 };

let env: TestEnv;
let op: Operator;
let a: ReturnType<typeof api>;
let endpoint: BundleEndpoint;
let spire: SpirePartner;
let spiffePeer: string;
let dir: string;

before(async () => {
  // Built once and cached (minutes the first time); `make test` builds them before any test starts.
  const spireServer = goTool('spire-server.sh');
  spiffePeer = goTool('spiffe-peer.sh');
  dir = mkdtempSync(join(tmpdir(), 'aio-spire-interop-'));
  ({ env, op, a } = await setUp({
    trustDomain: { trustDomain: OUR_TD, ca: { selfSigned: {} }, federatesWith: [SPIRE_TD], federation: { bundleEndpoint: { profile: { type: 'https_spiffe' }, refreshHint: `${REFRESH_HINT_S}s` } } },
    operator: OPERATOR,
  }));
  endpoint = await startBundleEndpoint({ kubeConfig: env.kc, namespace: OPERATOR_NAMESPACE, host: '127.0.0.1', port: 0, pollMs: 200, logger: createLogger('silent', 'json') });
  await eventually(async () => endpoint.served().includes(OUR_TD), { what: 'our endpoint to serve cluster-a.test', timeoutMs: 60_000 });
  spire = await startSpire(spireServer, {
    trustDomain: SPIRE_TD,
    federatesWith: { trustDomain: OUR_TD, bundleEndpointURL: `https://127.0.0.1:${endpoint.port}/bundles/${OUR_TD}`, endpointSPIFFEID: OUR_ENDPOINT_ID },
  });
});
after(async () => {
  // SPIRE_LOG=/path keeps spire-server's own log, for when SPIRE disagrees with us.
  if (process.env.SPIRE_LOG) writeFileSync(process.env.SPIRE_LOG, spire?.output() ?? '');
  await spire?.stop();
  await endpoint?.close();
  await tearDown({ env, op });
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const custom = () => env.kc.makeApiClient(CustomObjectsApi);
const cftd = { group: GROUP, version: VERSION, plural: CLUSTER_FEDERATED_TRUST_DOMAIN.plural };
const getFederated = () => custom().getClusterCustomObject({ ...cftd, name: 'spire' }) as Promise<ClusterFederatedTrustDomain>;
const configMap = (name: string) => a.core.readNamespacedConfigMap({ namespace: OPERATOR_NAMESPACE, name }) as Promise<ConfigMap>;
const sorted = async (roots: SpiffeBundle['roots']) => (await rootFingerprints(roots)).sort();
/** What we publish: the leader's document (the endpoint serves exactly it). */
const ourDocument = async () => parseBundleDocument((await configMap('spiffe-bundle-default')).data!['bundle.spiffe.json']!);
/** SPIRE's copy of our bundle, as its own CLI lists it. */
const spireHeldOurs = async () => parseBundleDocument(await spire.cli(['bundle', 'list', '-id', `spiffe://${OUR_TD}`, '-format', 'spiffe']));
const file = (name: string, text: string) => { const p = join(dir, name); writeFileSync(p, text); return p; };

test('SPIRE fetches our bundle from our endpoint: our Roots and refresh hint', async () => {
  // Bootstrap as an admin would: our Roots as PEM, taken out of band (they carry no sequence).
  const initialPem = (await configMap('trust-bundle-default')).data!['ca.crt']!;
  await spire.cli(['bundle', 'set', '-id', `spiffe://${OUR_TD}`, '-format', 'pem', '-path', file('ours-initial.pem', initialPem)]);
  await spire.cli(['federation', 'refresh', '-id', OUR_TD]);
  const ours = await ourDocument();
  // SPIRE 1.13.3 keeps the Roots and the refresh hint of a fetched bundle and drops its spiffe_sequence
  // (pkg/common/bundleutil.Decode reads neither it nor anything else): the hint, which the PEM it was
  // bootstrapped with does not carry, is what shows the copy came from our endpoint.
  const held = await eventually(async () => {
    const b = await spireHeldOurs();
    if (b.refreshHintSeconds !== ours.refreshHintSeconds) throw new Error(`SPIRE holds refresh hint ${b.refreshHintSeconds} (${b.roots.length} Roots), we serve ${ours.refreshHintSeconds}`);
    return b;
  }, { what: 'SPIRE to hold the bundle our endpoint serves' });
  assert.equal(held.refreshHintSeconds, REFRESH_HINT_S);
  assert.deepEqual(await sorted(held.roots), await sorted(ours.roots));
  assert.deepEqual(await sorted(held.roots), (await a.getTrustDomain('default')).status!.roots!.map((r) => r.fingerprint).sort());
});

test('we fetch SPIRE\'s bundle from its endpoint: Refreshed, with SPIRE\'s sequence and Root fingerprints', async () => {
  const initialPem = await spire.cli(['bundle', 'show', '-format', 'pem']);
  await custom().createClusterCustomObject({ ...cftd, body: {
    apiVersion: `${GROUP}/${VERSION}`, kind: 'ClusterFederatedTrustDomain', metadata: { name: 'spire' },
    spec: {
      trustDomain: SPIRE_TD, bundleEndpointURL: spire.bundleEndpointURL, trustDomainBundle: initialPem,
      bundleEndpointProfile: { type: 'https_spiffe', endpointSPIFFEID: spire.endpointSPIFFEID },
    },
  } });
  const theirs = parseBundleDocument(await spire.cli(['bundle', 'show', '-format', 'spiffe']));
  assert.ok(theirs.sequence !== undefined && theirs.sequence > 0, 'SPIRE numbers its bundle');
  const status = await eventually(async () => {
    const o = await getFederated();
    return o.status?.conditions?.some((c) => c.type === 'Refreshed' && c.status === 'True') && o.status;
  }, { what: 'the ClusterFederatedTrustDomain to be Refreshed', timeoutMs: 60_000 });
  assert.equal(status.conditions!.find((c) => c.type === 'Ready')?.status, 'True');
  assert.equal(status.sequence, theirs.sequence);
  assert.deepEqual(status.roots!.map((r) => r.fingerprint).sort(), await sorted(theirs.roots));
  const stored = parseBundleDocument((await configMap('federated-bundle-spire')).data!['bundle.spiffe.json']!);
  assert.equal(stored.jwtAuthorities, theirs.jwtAuthorities, 'SPIRE\'s jwt-svid keys came along (accepted, unused)');
  assert.ok(theirs.jwtAuthorities > 0);
});

/** An X.509-SVID that SPIRE mints (`x509 mint`) into dir/<name>: read its files (svid.pem, key.pem, bundle.pem) by name. */
async function mint(name: string, id: string): Promise<(file: string) => string> {
  const out = join(dir, name);
  mkdirSync(out);
  await spire.cli(['x509', 'mint', '-spiffeID', id, '-write', out]);
  return (file) => readFileSync(join(out, file), 'utf8');
}

/** A go-spiffe server; resolves once it listens, with its address and the lines it prints per connection. */
async function serve(args: string[]): Promise<{ addr: string; lines: string[]; stop(): void }> {
  const proc = spawn(spiffePeer, ['serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  const lines: string[] = [];
  const addr = await new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on('line', (l) => { lines.push(l); if (l.startsWith('listening ')) resolve(l.slice('listening '.length)); });
    proc.once('exit', (code) => reject(new Error(`spiffe-peer serve exited ${code}: ${err}`)));
  });
  return { addr, lines, stop: () => proc.kill() };
}

const connectPeer = (args: string[]) => new Promise<{ ok: boolean; out: string }>((resolve) =>
  execFile(spiffePeer, ['connect', ...args], { encoding: 'utf8', timeout: 20_000 }, (e, stdout, stderr) => resolve({ ok: !e, out: stdout + stderr })));

interface Peer { id: string; args: string[] }

/** One side of the handshake: an SVID and the bundle set it verifies peers with (one bundle per trust domain). */
function peer(name: string, id: string, svidPem: string, keyPem: string, bundles: Record<string, string>): Peer {
  return {
    id,
    args: ['-svid', file(`${name}-svid.pem`, svidPem), '-key', file(`${name}-key.pem`, keyPem),
      ...Object.entries(bundles).flatMap(([td, pem]) => ['-bundle', `${td}=${file(`${name}-${td}.pem`, pem)}`])],
  };
}

async function handshake(server: Peer, client: Peer): Promise<{ ok: boolean; out: string; serverSaw: string[] }> {
  const s = await serve([...server.args, '-authorize', client.id]);
  try {
    const r = await connectPeer([...client.args, '-authorize', server.id, '-addr', s.addr]);
    // The server prints its verdict on the client once the handshake ends, whichever way.
    await eventually(async () => s.lines.length > 1, { what: 'the server\'s verdict' });
    return { ...r, serverSaw: s.lines.slice(1) };
  } finally {
    s.stop();
  }
}

test('a SPIRE-minted SVID and one of our agents\' SVIDs complete mTLS both ways in go-spiffe, through the federated bundles', async () => {
  await a.createIdentity('default', 'planner');
  const identity = await eventually(async () => { const i = await a.getIdentity('default', 'planner'); return i.status?.secretName ? i : undefined; }, { what: 'our agent\'s SVID', timeoutMs: 60_000 });
  const secret = await a.getSecret('default', identity.status!.secretName!);
  const workloadID = `spiffe://${SPIRE_TD}/workload/partner`;
  const mintedFile = await mint('minted', workloadID);

  // Each side's set: its own Roots, and the partner's Roots as federation delivered them to it.
  const theirsAtUs = (await configMap('federated-bundle-spire')).data!['ca.crt']!;
  const oursAtSpire = await spire.cli(['bundle', 'list', '-id', `spiffe://${OUR_TD}`, '-format', 'pem']);
  assert.ok(parseCertificates(oursAtSpire).length >= 1);
  const ourAgent = peer('agent', identity.status!.spiffeID!, secretText(secret, 'tls.crt'), secretText(secret, 'tls.key'),
    { [OUR_TD]: secretText(secret, 'ca.crt'), [SPIRE_TD]: theirsAtUs });
  const spireWorkload = peer('workload', workloadID, mintedFile('svid.pem'), mintedFile('key.pem'),
    { [SPIRE_TD]: mintedFile('bundle.pem'), [OUR_TD]: oursAtSpire });

  for (const [server, client] of [[ourAgent, spireWorkload], [spireWorkload, ourAgent]] as const) {
    const r = await handshake(server, client);
    assert.ok(r.ok, `${client.id} -> ${server.id}: ${r.out}`);
    assert.match(r.out, new RegExp(`^connected ${server.id}: hello ${client.id}`));
    assert.deepEqual(r.serverSaw, [`accepted ${client.id}`]);
  }

  // Without the partner's bundle, or with the wrong trust domain's Roots under its name, each side refuses.
  const alone = peer('workload-alone', workloadID, mintedFile('svid.pem'), mintedFile('key.pem'), { [SPIRE_TD]: mintedFile('bundle.pem') });
  const r1 = await handshake(ourAgent, alone);
  assert.equal(r1.ok, false, r1.out);
  assert.match(r1.out, /cluster-a\.test/, 'go-spiffe names the trust domain it has no bundle for');
  const crossed = peer('agent-crossed', ourAgent.id, secretText(secret, 'tls.crt'), secretText(secret, 'tls.key'),
    { [OUR_TD]: secretText(secret, 'ca.crt'), [SPIRE_TD]: secretText(secret, 'ca.crt') });
  const r2 = await handshake(crossed, spireWorkload);
  assert.equal(r2.ok, false, r2.out);
  assert.match(r2.serverSaw.join('\n'), /^refused /);
});

interface SdkAgent { id: string; identity: Identity; mount: Mount; server: AgentServer; port: number }

/** One of our agents as it runs in a pod: its AgentIdentity issued, its files mounted as the kubelet does, the SDK on them, a server that greets each admitted peer. */
async function sdkAgent(name: string, policy: object): Promise<SdkAgent> {
  await a.createIdentity('default', name, { policy });
  await eventually(async () => (await a.getIdentity('default', name)).status?.serialNumber, { what: `${name} to be issued`, timeoutMs: 60_000 });
  const mount = await mountIdentity(env.kc, 'default', name, join(dir, `sdk-${name}`), 200);
  const identity = await loadIdentity({ dir: mount.dir, pollIntervalMs: 200 });
  const server = createServer(identity, {}, (s) => {
    s.on('error', () => undefined);
    s.end(`hello ${peerIdentity(s)!.spiffeID}\n`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { id: identity.spiffeID, identity, mount, server, port: (server.address() as AddressInfo).port };
}

/** The go-spiffe client (`peer`) calls our agent: its output, and our server's refusal if there was one. */
async function callAgent(from: Peer, to: SdkAgent): Promise<{ ok: boolean; out: string; refused?: PeerRefusedError }> {
  let refused: PeerRefusedError | undefined;
  const onRefused = (err: PeerRefusedError) => (refused = err);
  to.server.on('refused', onRefused);
  try {
    const r = await connectPeer([...from.args, '-authorize', to.id, '-addr', `127.0.0.1:${to.port}`]);
    // A refused client leaves with "no greeting": the refusal was emitted before our server closed the connection.
    return { ...r, refused };
  } finally {
    to.server.off('refused', onRefused);
  }
}

/** Our agent (SDK client) calls the go-spiffe server (`to`): the greeting it reads, and the server's verdict on us. */
async function agentCalls(from: SdkAgent, to: Peer): Promise<{ greeting: string; serverSaw: string[] }> {
  const s = await serve([...to.args, '-authorize', from.id]);
  try {
    const socket = await connect(from.identity, '127.0.0.1', Number(s.addr.split(':').at(-1)), { authorize: to.id });
    socket.on('error', () => undefined);
    const greeting = await new Promise<string>((resolve) => {
      let data = '';
      socket.on('data', (d) => (data += String(d)));
      socket.on('close', () => resolve(data.trim()));
    });
    await eventually(async () => s.lines.length > 1, { what: 'the server\'s verdict' });
    return { greeting, serverSaw: s.lines.slice(1) };
  } finally {
    s.stop();
  }
}

const setFederatesWith = (federatesWith: string[] | null) => custom().patchClusterCustomObject({ group: GROUP, version: VERSION, plural: 'trustdomains', name: 'default', body: { spec: { federatesWith } } },
  setHeaderOptions('Content-Type', PatchStrategy.MergePatch));

test('a SPIRE-minted SVID (go-spiffe) and our SDK agent complete mTLS both ways; our SDK refuses it without the federation or outside its policy; the same through the inbound proxy', async (t) => {
  const workloadID = `spiffe://${SPIRE_TD}/workload/sdk-partner`;
  const [tools, closed] = await Promise.all([
    sdkAgent('tools', { allow: [{ trustDomain: SPIRE_TD }] }),
    // Admits one other SPIRE workload, not this one.
    sdkAgent('closed', { allow: [{ spiffeID: `spiffe://${SPIRE_TD}/workload/someone-else` }] }),
  ]);
  t.after(() => {
    for (const x of [tools, closed]) {
      x.server.close();
      x.mount.stop();
      x.identity.close();
    }
  });
  const minted = await mint('minted-sdk', workloadID);
  const workload = peer('sdk-workload', workloadID, minted('svid.pem'), minted('key.pem'),
    { [SPIRE_TD]: minted('bundle.pem'), [OUR_TD]: await spire.cli(['bundle', 'list', '-id', `spiffe://${OUR_TD}`, '-format', 'pem']) });
  // SPIRE's Roots reach the agents through federated-bundles.json, as the webhook projects it.
  const spireRoots = await sorted(parseBundleDocument(await spire.cli(['bundle', 'show', '-format', 'spiffe'])).roots);
  for (const x of [tools, closed]) {
    await eventually(async () => x.identity.bundles.forTrustDomain(SPIRE_TD)?.roots.length, { what: `${x.id} to hold spire.test's Roots`, timeoutMs: 60_000 });
    assert.deepEqual(await sorted(x.identity.bundles.forTrustDomain(SPIRE_TD)!.roots), spireRoots);
  }

  // Our agent as server, the SPIRE workload as client.
  const inbound = await callAgent(workload, tools);
  assert.ok(inbound.ok, `${workloadID} -> ${tools.id}: ${inbound.out} ${inbound.refused?.message ?? ''}`);
  assert.match(inbound.out, new RegExp(`^connected ${tools.id}: hello ${workloadID}\n`));
  // Our agent as client, the SPIRE workload as server.
  const outbound = await agentCalls(tools, workload);
  assert.equal(outbound.greeting, `hello ${tools.id} from ${workloadID}`);
  assert.deepEqual(outbound.serverSaw, [`accepted ${tools.id}`]);

  // A policy that does not admit it: the chain verifies, the rule refuses.
  const outside = await callAgent(workload, closed);
  assert.equal(outside.ok, false, outside.out);
  assert.equal(outside.refused?.reason, 'NotAuthorized', outside.refused?.message);
  assert.equal(outside.refused?.peerID, workloadID);

  // Our TrustDomain stops federating with spire.test: the agent's files lose SPIRE's Roots, and the SDK refuses both ways.
  await setFederatesWith(null);
  await eventually(async () => tools.identity.bundles.forTrustDomain(SPIRE_TD) === undefined, { what: 'the agent to drop spire.test\'s Roots', timeoutMs: 60_000 });
  const unfederated = await callAgent(workload, tools);
  assert.equal(unfederated.ok, false, unfederated.out);
  assert.equal(unfederated.refused?.reason, 'UntrustedChain', unfederated.refused?.message);
  assert.match(unfederated.refused!.message, /no bundle for trust domain spire\.test is held/);
  await assert.rejects(agentCalls(tools, workload), (e: PeerRefusedError) => e.reason === 'UntrustedChain' && /no bundle for trust domain spire\.test/.test(e.message));

  // Federating again: the SDK reloads the set, and the call goes through with no restart.
  await setFederatesWith([SPIRE_TD]);
  await eventually(async () => tools.identity.bundles.forTrustDomain(SPIRE_TD), { what: 'the agent to hold spire.test\'s Roots again', timeoutMs: 60_000 });
  assert.ok((await callAgent(workload, tools)).ok);

  // The same agents behind `agent-identity proxy` (inbound, tcp mode, beside an app that knows nothing of
  // certificates): it admits the SPIRE workload by tools' trustDomain rule and refuses it by closed's policy.
  // (Outbound is not tried: the proxy calls agents over HTTP only, and the go-spiffe peer speaks a line protocol.)
  const app = createTcpServer((s) => { s.on('error', () => undefined); s.end('hello from the app\n'); });
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  t.after(() => app.close());
  for (const x of [tools, closed]) {
    const proxy = await startProxyProcess(['--identity-dir', x.mount.dir, '--inbound-address', '127.0.0.1', '--inbound-port', '0', '--app-port', String((app.address() as AddressInfo).port), '--mode', 'tcp']);
    try {
      const r = await connectPeer([...workload.args, '-authorize', x.id, '-addr', `127.0.0.1:${proxy.inboundPort}`]);
      if (x === tools) {
        assert.ok(r.ok, r.out);
        assert.match(r.out, new RegExp(`^connected ${tools.id}: hello from the app\n`));
      } else {
        assert.equal(r.ok, false, r.out);
        const refusal = await proxy.process.waitFor('refused');
        assert.equal(refusal.reason, 'NotAuthorized', String(refusal.message));
        assert.equal(refusal.peer, workloadID);
      }
    } finally {
      await proxy.process.stop();
    }
  }
});

test('a root rotation on our side reaches SPIRE before the new Root signs, and SPIRE still fetches from us after', async () => {
  const before = await sorted((await spireHeldOurs()).roots);
  await custom().patchClusterCustomObject({ group: GROUP, version: VERSION, plural: 'trustdomains', name: 'default', body: { metadata: { annotations: { [ANNOTATION_ROTATE_REQUESTED_AT]: new Date().toISOString() } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  const rotating = await eventually(async () => { const d = await ourDocument(); return d.roots.length === 2 && d; }, { what: 'us to publish the incoming Root', timeoutMs: 60_000 });
  const published = await sorted(rotating.roots);
  // SPIRE polls at a quarter of the hint, and never takes a hint below 1 minute: ask it now instead of waiting.
  const held = await eventually(async () => {
    await spire.cli(['federation', 'refresh', '-id', OUR_TD]);
    const b = await sorted((await spireHeldOurs()).roots);
    return b.join() === published.join() && b;
  }, { what: 'SPIRE to hold both of our Roots', timeoutMs: 30_000, intervalMs: 500 });
  assert.equal(held.length, 2);
  assert.ok(before.every((f) => held.includes(f)), 'the current Root stays beside the incoming one');

  // The new Root signs only after the propagation delay plus our refresh hint: a switch that came after the
  // propagation delay alone (1.5 s here) once raced SPIRE's refresh, and then SPIRE could not authenticate
  // our endpoint's new SVID ("certificate signed by unknown authority") and never fetched from us again.
  const rotation = await eventually(async () => {
    const r = (await a.getTrustDomain('default')).status?.rotation;
    if (!r) throw new Error('the rotation ended before its signer switch was seen');
    return r.phase !== 'PublishingRoot' && r;
  }, { what: 'the new Root to sign', timeoutMs: 60_000, intervalMs: 100 });
  const switchedAfterMs = Date.parse(rotation.phaseStartedAt) - Date.parse(rotation.startedAt);
  // (Status times are whole seconds: a second less.)
  assert.ok(switchedAfterMs >= OPERATOR.propagationDelayMs + REFRESH_HINT_S * 1000 - 1000, `the new Root signed ${switchedAfterMs} ms into the rotation`);

  // Our endpoint moves to an SVID under the new Root, and SPIRE authenticates it with the Roots it fetched.
  await eventually(async () => (await servedIssuer()) === (await a.getTrustDomain('default')).status?.intermediate?.fingerprint,
    { what: 'our endpoint to present an SVID the new intermediate signed', timeoutMs: 30_000 });
  await spire.cli(['federation', 'refresh', '-id', OUR_TD]);
});

/** The fingerprint of the CA certificate that signed the SVID our bundle endpoint presents. */
async function servedIssuer(): Promise<string | undefined> {
  const socket = tlsConnect({ host: '127.0.0.1', port: endpoint.port, rejectUnauthorized: false });
  try {
    await once(socket, 'secureConnect');
    const issuer = socket.getPeerCertificate(true).issuerCertificate;
    return issuer ? `sha256:${createHash('sha256').update(issuer.raw).digest('hex')}` : undefined;
  } finally {
    socket.destroy();
  }
}
