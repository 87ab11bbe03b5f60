// Open connections are admitted again on every reload, in both directions
// (src/proxy/readmit.ts): the outbound proxy's pooled connections to a peer
// and the inbound proxy's connections from one. A peer whose Root left the
// Bundle, that was deny-listed, or that egress no longer allows gets no
// further request; a reload that changes nothing for a peer keeps its
// connection (and a request waiting for it). No Kubernetes needed: the files
// are laid out as the kubelet writes them.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type { PolicyDocument } from '../../src/api/documents.ts';
import { type AgentHttpsServer, createHttpsServer, httpsAgent, type Identity, loadIdentity } from '../../src/sdk/index.ts';
import { startProxyProcess, type ProxyProcess } from '../support/proxy.ts';
import { denied, fileSet, type IssuedIdentity, makeTrustDomain, policyFor, swapMountedDir, type TestTrustDomain, writeMountedDir } from '../support/sdk-pki.ts';

const HOST = 'planner.agents.svc';
// A federated partner's agent (partner.example), reached through an egress spiffeID rule's hosts.
const PARTNER_HOST = 'planner.partner.example';

let base: string;
// Two Roots of one trust domain: the caller's (td) and the planner's (other), as during a root rotation.
let td: TestTrustDomain;
let other: TestTrustDomain;
let caller: IssuedIdentity;
let planner: IssuedIdentity;
let bystander: IssuedIdentity;
let plannerIdentity: Identity;
let plannerServer: AgentHttpsServer;
let proxy: ProxyProcess;
/** The planner's side of every connection the proxy opened, in order. */
const connections: Socket[] = [];
/** Held answers, by path: a request to /hold/<name> is answered when released. */
const held = new Map<string, () => void>();
const heard: string[] = [];

const callerDir = () => join(base, 'caller');
const bothRoots = () => `${td.bundlePem}${other.bundlePem}`;
const callerPolicy = (over: Partial<PolicyDocument> = {}): PolicyDocument => ({
  ...policyFor(caller),
  egress: { mode: 'TrustDomain', allow: [], destinations: [{ host: HOST, spiffeID: planner.spiffeID }] },
  ...over,
});

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'proxy-readmit-'));
  [td, other] = await Promise.all([makeTrustDomain(), makeTrustDomain()]);
  [caller, bystander, planner] = await Promise.all([td.issue('caller'), td.issue('bystander'), other.issue('planner')]);
  await writeMountedDir(join(base, 'planner'), fileSet(planner, bothRoots(), policyFor(planner)));
  await writeMountedDir(callerDir(), fileSet(caller, bothRoots(), callerPolicy()));
  plannerIdentity = await loadIdentity({ dir: join(base, 'planner'), watch: false });
  plannerServer = createHttpsServer(plannerIdentity, {}, (req, res) => {
    heard.push(req.url!);
    if (req.url!.startsWith('/hold/')) held.set(req.url!, () => res.end('ok'));
    else res.end('ok');
  });
  plannerServer.on('secureConnection', (s: Socket) => connections.push(s));
  await new Promise<void>((resolve) => plannerServer.listen(0, '127.0.0.1', resolve));
  proxy = await startProxyProcess(['--identity-dir', callerDir(), '--outbound-port', '0', '--resolve', `${HOST}=127.0.0.1`, '--resolve', `${PARTNER_HOST}=127.0.0.1`, '--max-connections-per-peer', '1']);
});

after(async () => {
  await proxy?.process.stop();
  plannerServer?.close();
  plannerServer?.closeAllConnections();
  plannerIdentity?.close();
  await rm(base, { recursive: true, force: true });
});

/** One plain-HTTP call through the outbound proxy, as an agent with HTTP_PROXY makes it. */
function call(path: string, to: { host: string; server: AgentHttpsServer } = { host: HOST, server: plannerServer }): Promise<{ status: number; body: string }> {
  const url = `http://${to.host}:${(to.server.address() as AddressInfo).port}${path}`;
  return new Promise((resolve, reject) => {
    http.request({ host: '127.0.0.1', port: proxy.outboundPort, path: url, headers: { host: new URL(url).host }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => { body += c; }).on('end', () => resolve({ status: res.statusCode!, body }));
    }).on('error', reject).end();
  });
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (const deadline = Date.now() + 15_000; !ok();) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const closed = (s: Socket) => (s.destroyed ? Promise.resolve() : once(s, 'close').then(() => undefined));
const reloadCaller = async (bundlePem: string, policy: PolicyDocument, federated?: Record<string, string>) => {
  await swapMountedDir(callerDir(), { ...fileSet(caller, bundlePem, policy), ...(federated ? { 'federated-bundles.json': JSON.stringify({ version: 1, bundles: federated }) } : {}) });
  await proxy.process.waitFor('identity reloaded');
};

describe('outbound proxy: pooled connections are admitted again on reload', () => {
  afterEach(async () => {
    await reloadCaller(bothRoots(), callerPolicy());
  });

  it('a reload that changes nothing for the peer keeps its connection, and the request waiting for it is served', async () => {
    const before = connections.length;
    const first = call('/hold/first');
    await until('the first call reached the planner', () => held.has('/hold/first'));
    // The cap is 1: this one waits in the pool for the first one's connection.
    const waiting = call('/after-first');
    await reloadCaller(bothRoots(), callerPolicy({ denyList: [denied(bystander, 'Suspended')] }));
    held.get('/hold/first')!();
    assert.deepEqual(await Promise.all([first, waiting]), [{ status: 200, body: 'ok' }, { status: 200, body: 'ok' }]);
    assert.equal(connections.length - before, 1, 'one connection served both calls across the reload');
  });

  it('the peer\'s Root leaves the Bundle: its idle connection closes at once, and the next call is refused', async () => {
    assert.equal((await call('/warm')).status, 200);
    const pooled = connections.at(-1)!;
    assert.ok(!pooled.destroyed);
    await reloadCaller(td.bundlePem, callerPolicy());
    const refusal = await proxy.process.waitFor('refused', (e) => String(e.message).startsWith('an open connection'));
    assert.equal(refusal.reason, 'UntrustedChain');
    assert.equal(refusal.direction, 'outbound');
    await closed(pooled);
    const next = await call('/after-retired-root');
    assert.equal(next.status, 502);
    assert.match(next.body, /does not chain to the trust bundle/);
    assert.ok(!heard.includes('/after-retired-root'));
  });

  it('the peer is deny-listed while a call is in flight: the call is answered, then the connection closes and is not reused', async () => {
    const first = call('/hold/revoked');
    await until('the call reached the planner', () => held.has('/hold/revoked'));
    const inFlight = connections.at(-1)!;
    await reloadCaller(bothRoots(), callerPolicy({ denyList: [denied(planner, 'Deleted')] }));
    const refusal = await proxy.process.waitFor('refused', (e) => String(e.message).startsWith('an open connection'));
    assert.equal(refusal.reason, 'DenyListed');
    assert.equal(refusal.peer, planner.spiffeID);
    held.get('/hold/revoked')!();
    assert.deepEqual(await first, { status: 200, body: 'ok' });
    await closed(inFlight);
    const next = await call('/after-deny');
    assert.equal(next.status, 502);
    assert.match(next.body, /is on the deny list \(Deleted\)/);
    assert.ok(!heard.includes('/after-deny'));
  });

  it('egress no longer allows the peer: its idle connection closes at once', async () => {
    assert.equal((await call('/warm-egress')).status, 200);
    const pooled = connections.at(-1)!;
    const egress = { mode: 'AllowList' as const, allow: [], destinations: [{ host: HOST, spiffeID: planner.spiffeID }] };
    await reloadCaller(bothRoots(), callerPolicy({ egress }));
    const refusal = await proxy.process.waitFor('refused', (e) => String(e.message).startsWith('an open connection'));
    assert.equal(refusal.reason, 'NotAuthorized');
    assert.match(String(refusal.message), /not allowed by the egress policy/);
    await closed(pooled);
    assert.equal((await call('/after-egress')).status, 403);
  });
});

describe('inbound proxy: open connections are admitted again on reload', () => {
  it('a client whose Root leaves the Bundle is cut off at once when idle', async () => {
    const app = http.createServer((_req, res) => res.end('app'));
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    const inboundDir = join(base, 'inbound');
    await writeMountedDir(inboundDir, fileSet(caller, bothRoots(), policyFor(caller)));
    const inbound = await startProxyProcess(['--identity-dir', inboundDir, '--inbound-address', '127.0.0.1', '--inbound-port', '0', '--app-port', String((app.address() as AddressInfo).port)]);
    const pool = httpsAgent(plannerIdentity, { authorize: caller.spiffeID, keepAlive: true });
    try {
      const socket = await new Promise<Socket>((resolve, reject) => {
        https.get({ host: '127.0.0.1', port: inbound.inboundPort, path: '/', agent: pool }, (res) => {
          const s = res.socket;
          res.resume().on('end', () => resolve(s));
        }).on('error', reject);
      });
      await swapMountedDir(inboundDir, fileSet(caller, td.bundlePem, policyFor(caller)));
      const refusal = await inbound.process.waitFor('refused', (e) => String(e.message).startsWith('an open connection'));
      assert.equal(refusal.reason, 'UntrustedChain');
      assert.equal(refusal.direction, 'inbound');
      // Bounded well below the idle timeout (60 s), which would close it too.
      await Promise.race([closed(socket), new Promise((_, reject) => setTimeout(() => reject(new Error('the connection is still open')), 15_000))]);
    } finally {
      pool.destroy();
      await inbound.process.stop();
      app.close();
    }
  });
});

describe('outbound proxy: a federated partner\'s Root leaves the partner\'s Bundle', () => {
  let partnerServer: AgentHttpsServer;
  let partnerIdentity: Identity;
  const partnerConnections: Socket[] = [];
  after(async () => {
    partnerServer?.close();
    partnerServer?.closeAllConnections();
    partnerIdentity?.close();
    await reloadCaller(bothRoots(), callerPolicy());
  });

  it('the pooled connection to the partner is checked against the partner\'s Bundle, and closes once its Root is gone from it', async () => {
    const [partnerTD, partnerRotated] = await Promise.all([makeTrustDomain('partner.example'), makeTrustDomain('partner.example')]);
    const partner = await partnerTD.issue('planner');
    const dir = join(base, 'partner');
    await writeMountedDir(dir, { ...fileSet(partner, partnerTD.bundlePem, policyFor(partner, { allow: [{ spiffeID: caller.spiffeID, rule: 'allow[0]: spiffeID caller' }] })),
      'federated-bundles.json': JSON.stringify({ version: 1, bundles: { [td.trustDomain]: bothRoots() } }) });
    partnerIdentity = await loadIdentity({ dir, watch: false });
    const partnerHeld = new Map<string, () => void>();
    partnerServer = createHttpsServer(partnerIdentity, {}, (req, res) => {
      if (req.url!.startsWith('/hold/')) partnerHeld.set(req.url!, () => res.end('partner ok'));
      else res.end('partner ok');
    });
    partnerServer.on('secureConnection', (s: Socket) => partnerConnections.push(s));
    await new Promise<void>((resolve) => partnerServer.listen(0, '127.0.0.1', resolve));
    const egress = (): PolicyDocument => callerPolicy({ egress: {
      mode: 'AllowList', allow: [{ spiffeID: partner.spiffeID, rule: 'egress.allow[0]: spiffeID partner' }],
      destinations: [{ host: PARTNER_HOST, spiffeID: partner.spiffeID }],
    } });
    await reloadCaller(bothRoots(), egress(), { 'partner.example': partnerTD.bundlePem });
    const to = { host: PARTNER_HOST, server: partnerServer };
    assert.deepEqual(await call('/warm', to), { status: 200, body: 'partner ok' });
    const pooled = partnerConnections.at(-1)!;
    // A reload that changes nothing for the partner keeps its connection (checked against the partner's Bundle,
    // not ours): the call in flight and the one waiting for the pool's only connection are both served on it.
    const first = call('/hold/partner', to);
    await until('the call reached the partner', () => partnerHeld.has('/hold/partner'));
    const waiting = call('/after-hold', to);
    await reloadCaller(bothRoots(), { ...egress(), denyList: [denied(bystander, 'Suspended')] }, { 'partner.example': partnerTD.bundlePem });
    partnerHeld.get('/hold/partner')!();
    assert.deepEqual(await Promise.all([first, waiting]), [{ status: 200, body: 'partner ok' }, { status: 200, body: 'partner ok' }]);
    assert.equal(partnerConnections.at(-1), pooled, 'one connection served every call across the reload');
    // The partner rotated and retired the Root its Leaf chains to: our copy of its Bundle now holds only the new one.
    const reloads = () => proxy.process.events.filter((e) => e.event === 'identity reloaded');
    const reloadsBefore = reloads().length;
    await reloadCaller(bothRoots(), egress(), { 'partner.example': partnerRotated.bundlePem });
    const refusal = await proxy.process.waitFor('refused', (e) => String(e.message).startsWith('an open connection') && String(e.message).includes('partner.example'));
    assert.equal(refusal.reason, 'UntrustedChain');
    // Refused by this reload, not by the one before that changed nothing for the partner.
    assert.ok(proxy.process.events.indexOf(refusal) > proxy.process.events.indexOf(reloads()[reloadsBefore]!), 'refused only once its Root left the partner\'s Bundle');
    await closed(pooled);
    const next = await call('/after-partner-rotation', to);
    assert.equal(next.status, 502);
  });
});
