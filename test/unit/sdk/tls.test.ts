// The SDK's servers and clients over real loopback sockets, in one process:
// who is admitted, who is refused and why, and what a reload changes.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls, { type TLSSocket } from 'node:tls';
import { authorizeID } from '../../../src/sdk/authorizer.ts';
import { connect, httpsAgent, tlsConnectOptions } from '../../../src/sdk/client.ts';
import { PeerRefusedError } from '../../../src/sdk/errors.ts';
import { type Identity, loadIdentity } from '../../../src/sdk/identity.ts';
import { peerIdentity } from '../../../src/sdk/peer.ts';
import { type AgentServer, createHttpsServer, createServer } from '../../../src/sdk/server.ts';
import { denied, fileSet, type IssuedIdentity, makeTrustDomain, type PolicyOptions, policyFor, type TestTrustDomain, writePlainDir } from '../../support/sdk-pki.ts';

let base: string;
let td: TestTrustDomain;
const issued: Record<string, IssuedIdentity> = {};
const identities: Identity[] = [];
const servers: { close(): unknown }[] = [];
let dirs = 0;

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'sdk-tls-'));
  td = await makeTrustDomain();
  for (const name of ['planner', 'orchestrator', 'intruder', 'suspended']) issued[name] = await td.issue(name);
});
after(async () => {
  for (const s of servers) s.close();
  for (const i of identities) i.close();
  await rm(base, { recursive: true, force: true });
});

async function identityOf(who: IssuedIdentity, policy: PolicyOptions = {}, trustDomain = td): Promise<Identity & { dir: string }> {
  const dir = join(base, `d${++dirs}`);
  await writePlainDir(dir, fileSet(who, trustDomain.bundlePem, policyFor(who, policy)));
  const identity = await loadIdentity({ dir, watch: false });
  identities.push(identity);
  return Object.assign(identity, { dir });
}

const plannerPolicy = (): PolicyOptions => ({
  allow: [
    { spiffeID: issued.orchestrator!.spiffeID, rule: 'allow[0]: agent agents/orchestrator' },
    { spiffeID: issued.suspended!.spiffeID, rule: 'allow[1]: agent agents/suspended' },
  ],
  denyList: [denied(issued.suspended!, 'Suspended')],
});

/** An echo server that greets admitted peers with the rule that admitted them. */
async function listen(server: AgentServer): Promise<number> {
  servers.push(server);
  server.on('secureConnection', (s: TLSSocket) => {
    // A client that refuses this server, or is done, hangs up mid-greeting: ECONNRESET is expected here.
    s.on('error', () => undefined);
    s.write(`hello ${peerIdentity(s)?.spiffeID} by ${peerIdentity(s)?.rule}\n`);
    s.pipe(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** The server's verdict on one raw client connection: the greeting, or the refusal. */
async function verdict(server: AgentServer, port: number, client: tls.ConnectionOptions): Promise<string> {
  const refused = once(server, 'refused').then(([err]) => `refused: ${(err as Error).message}`);
  const socket = tls.connect({ host: '127.0.0.1', port, checkServerIdentity: () => undefined, rejectUnauthorized: false, ...client });
  socket.on('error', () => undefined);
  const greeted = once(socket, 'data').then(([d]) => String(d).trim());
  try {
    return await Promise.race([refused, greeted]);
  } finally {
    socket.destroy();
  }
}

const rawClient = (who: IssuedIdentity, bundlePem = td.bundlePem): tls.ConnectionOptions => ({ cert: who.certificatePem, key: who.privateKeyPem, ca: bundlePem });

describe('createServer', () => {
  let server: AgentServer;
  let port: number;
  let admittedCount = 0;
  before(async () => {
    const planner = await identityOf(issued.planner!, plannerPolicy());
    server = createServer(planner, {}, () => admittedCount++);
    port = await listen(server);
  });

  it('admits a peer on the allow list and names the rule', async () => {
    assert.equal(await verdict(server, port, rawClient(issued.orchestrator!)), `hello ${issued.orchestrator!.spiffeID} by allow[0]: agent agents/orchestrator`);
  });

  it('refuses a peer of the trust domain that is not on the allow list', async () => {
    assert.equal(
      await verdict(server, port, rawClient(issued.intruder!)),
      `refused: peer ${issued.intruder!.spiffeID} is not allowed by the policy of ${issued.planner!.spiffeID} (allow list: allow[0]: agent agents/orchestrator; allow[1]: agent agents/suspended)`,
    );
  });

  it('refuses a deny-listed certificate even though the policy allows its ID', async () => {
    assert.equal(await verdict(server, port, rawClient(issued.suspended!)), `refused: peer certificate serial ${issued.suspended!.serialNumber} is on the deny list (Suspended)`);
  });

  it('refuses a client without a certificate', async () => {
    assert.equal(await verdict(server, port, { ca: td.bundlePem }), 'refused: peer presented no certificate');
  });

  it('refuses a client from another CA (same trust domain name), naming the root it does not know', async () => {
    const other = await makeTrustDomain();
    const stranger = await other.issue('orchestrator');
    const otherRoot = other.root.certificate.subject;
    assert.equal(
      await verdict(server, port, rawClient(stranger, other.bundlePem)),
      `refused: peer certificate does not chain to the trust bundle: certificate "${other.intermediate.certificate.subject}" was issued by "${otherRoot}", which is not a root in the bundle`,
    );
  });

  it('never hands a refused socket to the application', () => {
    assert.equal(admittedCount, 1, 'only the orchestrator got through');
  });

  it('uses a custom Authorizer instead of the policy when given one', async () => {
    const planner = await identityOf(issued.planner!, plannerPolicy());
    const custom = createServer(planner, { authorize: authorizeID(issued.intruder!.spiffeID) });
    const customPort = await listen(custom);
    assert.equal(await verdict(custom, customPort, rawClient(issued.intruder!)), `hello ${issued.intruder!.spiffeID} by id ${issued.intruder!.spiffeID}`);
    assert.match(await verdict(custom, customPort, rawClient(issued.orchestrator!)), /^refused: peer .*orchestrator is not allowed: expected .*intruder$/);
  });
});

describe('clients', () => {
  let plannerPort: number;
  let orchestrator: Identity;
  before(async () => {
    const planner = await identityOf(issued.planner!);
    plannerPort = await listen(createServer(planner));
    orchestrator = await identityOf(issued.orchestrator!);
  });

  it('connect resolves once the server is the expected SPIFFE ID, and exchanges data', async () => {
    const socket = await connect(orchestrator, '127.0.0.1', plannerPort, { authorize: issued.planner!.spiffeID });
    assert.equal(peerIdentity(socket)?.spiffeID.toString(), issued.planner!.spiffeID);
    assert.equal(peerIdentity(socket)?.serialNumber, issued.planner!.serialNumber);
    const [greeting] = await once(socket, 'data');
    assert.equal(String(greeting).trim(), `hello ${issued.orchestrator!.spiffeID} by member of trust domain cluster.local (no allow list)`);
    socket.destroy();
  });

  it('connect rejects with PeerRefusedError when the server is someone else', async () => {
    await assert.rejects(connect(orchestrator, '127.0.0.1', plannerPort, { authorize: issued.intruder!.spiffeID }), (err: unknown) => {
      assert.ok(err instanceof PeerRefusedError);
      assert.equal(err.reason, 'NotAuthorized');
      assert.equal(err.message, `peer ${issued.planner!.spiffeID} is not allowed: expected ${issued.intruder!.spiffeID}`);
      return true;
    });
  });

  it('connect rejects a server from another CA', async () => {
    const other = await makeTrustDomain();
    const impostor = await identityOf(await other.issue('planner'), {}, other);
    const impostorPort = await listen(createServer(impostor));
    await assert.rejects(connect(orchestrator, '127.0.0.1', impostorPort, { authorize: issued.planner!.spiffeID }), (err: unknown) => {
      assert.ok(err instanceof PeerRefusedError);
      assert.equal(err.reason, 'UntrustedChain');
      return true;
    });
  });

  it('tlsConnectOptions checks the SPIFFE ID in place of the host name', async () => {
    const ok = tls.connect({ host: '127.0.0.1', port: plannerPort, ...tlsConnectOptions(orchestrator, { authorize: issued.planner!.spiffeID }) });
    await once(ok, 'secureConnect');
    assert.equal(ok.authorized, true);
    ok.destroy();
    const wrong = tls.connect({ host: '127.0.0.1', port: plannerPort, ...tlsConnectOptions(orchestrator, { authorize: issued.intruder!.spiffeID }) });
    const [err] = await once(wrong, 'error');
    assert.ok(err instanceof PeerRefusedError);
    assert.match(err.message, /is not allowed: expected .*intruder/);
  });
});

describe('HTTPS', () => {
  it('an httpsAgent request reaches a createHttpsServer handler that knows the caller, with the caller\'s current certificate', async () => {
    const planner = await identityOf(issued.planner!, plannerPolicy());
    const server = createHttpsServer(planner, {}, (req, res) => {
      const caller = peerIdentity(req.socket as TLSSocket);
      res.end(`${caller?.spiffeID} ${caller?.serialNumber}`);
    });
    servers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const get = (agent: https.Agent) =>
      new Promise<string>((resolve, reject) => {
        https.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve(body));
        }).on('error', reject);
      });

    const orchestrator = await identityOf(issued.orchestrator!);
    const agent = httpsAgent(orchestrator, { authorize: issued.planner!.spiffeID });
    assert.equal(await get(agent), `${issued.orchestrator!.spiffeID} ${issued.orchestrator!.serialNumber}`);

    const renewed = await td.issue('orchestrator');
    await writePlainDir(orchestrator.dir, fileSet(renewed, td.bundlePem, policyFor(renewed)));
    assert.equal(await orchestrator.reload(), true);
    assert.equal(await get(agent), `${renewed.spiffeID} ${renewed.serialNumber}`, 'the next connection presents the renewed certificate');

    const refused = once(server, 'refused');
    await assert.rejects(get(httpsAgent(await identityOf(issued.intruder!), { authorize: issued.planner!.spiffeID })));
    assert.match(String((await refused)[0]), /intruder is not allowed by the policy/);
  });
});

describe('a server across a reload', () => {
  it('presents the new certificate to new connections, keeps old ones open, and keeps the caller TLS options', async () => {
    const planner = await identityOf(issued.planner!);
    // A caller option setSecureContext would silently drop if not passed again.
    const server = createServer(planner, { maxVersion: 'TLSv1.2' });
    const port = await listen(server);
    const client = await identityOf(issued.orchestrator!);
    const old = await connect(client, '127.0.0.1', port, { authorize: planner.spiffeID });
    await once(old, 'data');

    const renewed = await td.issue('planner');
    await writePlainDir(planner.dir, fileSet(renewed, td.bundlePem, policyFor(renewed)));
    assert.equal(await planner.reload(), true);

    const fresh = await connect(client, '127.0.0.1', port, { authorize: planner.spiffeID });
    assert.equal(peerIdentity(fresh)?.serialNumber, renewed.serialNumber);
    assert.equal(fresh.getProtocol(), 'TLSv1.2');
    assert.equal(fresh.isSessionReused(), false);
    assert.equal(peerIdentity(old)?.serialNumber, issued.planner!.serialNumber);
    old.write('still here');
    const [echo] = await once(old, 'data');
    assert.equal(String(echo), 'still here');
    old.destroy();
    fresh.destroy();
  });
});
