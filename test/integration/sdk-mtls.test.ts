// SDK agents in separate processes completing (or refusing) mutual TLS with
// identities laid out as Kubernetes mounts them, and the same identities
// working with OpenSSL and Python's ssl module. No Kubernetes needed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { connect, loadIdentity, peerIdentity } from '../../src/sdk/index.ts';
import { denied, fileSet, type IssuedIdentity, makeTrustDomain, policyFor, swapMountedDir, type TestTrustDomain, writeMountedDir } from '../support/sdk-pki.ts';
import { PeerProcess, run, sdkClient, sdkServer } from '../support/sdk-process.ts';

let base: string;
let td: TestTrustDomain;
const agent: Record<string, IssuedIdentity> = {};
let plannerDir: string;
let server: PeerProcess;
let port: number;
const children: PeerProcess[] = [];
let mounts = 0;

const plannerPolicy = (planner: IssuedIdentity) =>
  policyFor(planner, {
    allow: [
      { spiffeID: agent.orchestrator!.spiffeID, rule: 'allow[0]: agent agents/orchestrator' },
      { spiffeID: agent.suspended!.spiffeID, rule: 'allow[1]: agent agents/suspended' },
    ],
    denyList: [denied(agent.suspended!, 'Suspended')],
  });

/** The mounted directory of an agent with a TrustDomain-mode policy. */
async function mounted(who: IssuedIdentity, bundlePem = td.bundlePem): Promise<string> {
  const dir = join(base, `${who.spiffeID.split('/').pop()}-${++mounts}`);
  await writeMountedDir(dir, fileSet(who, bundlePem, policyFor(who)));
  return dir;
}

function client(dir: string, expected = agent.planner!.spiffeID): PeerProcess {
  const c = sdkClient(dir, port, expected);
  children.push(c);
  return c;
}

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'sdk-mtls-'));
  td = await makeTrustDomain();
  for (const name of ['planner', 'orchestrator', 'intruder', 'suspended']) agent[name] = await td.issue(name);
  plannerDir = join(base, 'planner');
  await writeMountedDir(plannerDir, fileSet(agent.planner!, td.bundlePem, plannerPolicy(agent.planner!)));
  server = sdkServer(plannerDir);
  port = Number((await server.waitFor('listening')).port);
});

after(async () => {
  await Promise.all([server, ...children].map((p) => p?.stop()));
  await rm(base, { recursive: true, force: true });
});

describe('SDK agents in separate processes', () => {
  it('an allowed peer completes mTLS, each side knowing the other', async () => {
    const orchestrator = client(await mounted(agent.orchestrator!));
    orchestrator.send('connect');
    const connected = await orchestrator.waitFor('connected');
    assert.equal(connected.serialNumber, agent.planner!.serialNumber);
    assert.equal((await orchestrator.waitFor('data')).data, `hello ${agent.orchestrator!.spiffeID} (allow[0]: agent agents/orchestrator)\n`);
    assert.deepEqual(await server.waitFor('accepted'), { event: 'accepted', peer: agent.orchestrator!.spiffeID, rule: 'allow[0]: agent agents/orchestrator' });
  });

  it('a peer of the trust domain that the policy does not list is refused, naming the policy rules', async () => {
    const intruder = client(await mounted(agent.intruder!));
    intruder.send('connect');
    const refused = await server.waitFor('refused', (e) => String(e.message).includes('intruder'));
    assert.equal(refused.reason, 'NotAuthorized');
    assert.equal(
      refused.message,
      `peer ${agent.intruder!.spiffeID} is not allowed by the policy of ${agent.planner!.spiffeID} (allow list: allow[0]: agent agents/orchestrator; allow[1]: agent agents/suspended)`,
    );
    // Its TLS 1.3 handshake finished before the server judged it; then the server hung up without a byte.
    await intruder.waitFor('closed');
    assert.equal(intruder.events.filter((e) => e.event === 'data').length, 0);
  });

  it('a client with no certificate is refused', async () => {
    const refused = server.waitFor('refused', (e) => e.reason === 'NoCertificate');
    const socket = tls.connect({ host: '127.0.0.1', port, ca: td.bundlePem, checkServerIdentity: () => undefined });
    socket.on('error', () => undefined);
    const closed = once(socket, 'close');
    // Flowing, so the server's hang-up is read and ends the socket.
    socket.resume();
    assert.equal((await refused).message, 'peer presented no certificate');
    await closed;
  });

  it('a client from another CA is refused by the server, and refuses the server in turn', async () => {
    const other = await makeTrustDomain();
    const stranger = client(await mounted(await other.issue('orchestrator'), other.bundlePem));
    stranger.send('connect');
    const refused = await server.waitFor('refused', (e) => e.reason === 'UntrustedChain');
    assert.match(String(refused.message), /^peer certificate does not chain to the trust bundle: .* which is not a root in the bundle$/);
    const own = await stranger.waitFor('connectError');
    assert.equal(own.reason, 'UntrustedChain');
  });

  it('a deny-listed certificate is refused although its SPIFFE ID is allowed', async () => {
    const suspended = client(await mounted(agent.suspended!));
    suspended.send('connect');
    const refused = await server.waitFor('refused', (e) => e.reason === 'DenyListed');
    assert.equal(refused.message, `peer certificate serial ${agent.suspended!.serialNumber} is on the deny list (Suspended)`);
  });

  it('rotating the mounted files: new connections get the new certificate, an open one keeps working', async () => {
    const orchestrator = client(await mounted(agent.orchestrator!));
    orchestrator.send('connect');
    assert.equal((await orchestrator.waitFor('connected')).serialNumber, agent.planner!.serialNumber);
    await orchestrator.waitFor('data');

    const renewed = await td.issue('planner');
    await swapMountedDir(plannerDir, fileSet(renewed, td.bundlePem, plannerPolicy(renewed)));
    assert.equal((await server.waitFor('update')).serialNumber, renewed.serialNumber);

    orchestrator.send('connect');
    const second = await orchestrator.waitFor('connected');
    assert.equal(second.conn, 1);
    assert.equal(second.serialNumber, renewed.serialNumber);
    await orchestrator.waitFor('data', (e) => e.conn === 1);

    orchestrator.send('send 0 still on the old certificate');
    assert.equal((await orchestrator.waitFor('data', (e) => e.conn === 0)).data, 'still on the old certificate\n');
  });
});

describe('interoperability', () => {
  let files: Record<string, string>;
  before(async () => {
    // Leaf and intermediate apart, as the OpenSSL CLI takes them.
    const [leaf, intermediate] = agent.orchestrator!.certificatePem.split(/(?<=-----END CERTIFICATE-----\n)/);
    files = { leaf: join(base, 'o-leaf.pem'), chain: join(base, 'o-chain.pem'), full: join(base, 'o-full.pem'), key: join(base, 'o.key'), ca: join(base, 'ca.pem') };
    await writeFile(files.leaf!, leaf!);
    await writeFile(files.chain!, intermediate!);
    await writeFile(files.full!, agent.orchestrator!.certificatePem);
    await writeFile(files.key!, agent.orchestrator!.privateKeyPem);
    await writeFile(files.ca!, td.bundlePem);
  });

  it('openssl s_client → SDK server', async () => {
    const { output } = await run(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${port}`, '-cert', files.leaf!, '-cert_chain', files.chain!, '-key', files.key!, '-CAfile', files.ca!, '-verify_return_error'],
      { until: `hello ${agent.orchestrator!.spiffeID}` },
    );
    assert.match(output, /Verify return code: 0 \(ok\)/);
    assert.ok(output.includes(`hello ${agent.orchestrator!.spiffeID} (allow[0]: agent agents/orchestrator)`), output);
  });

  it('python ssl client → SDK server', async () => {
    const script = [
      'import json, socket, ssl, sys',
      'ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)',
      'ctx.check_hostname = False  # SPIFFE identifies by URI SAN, not host name',
      'ctx.load_verify_locations(cafile=sys.argv[2])',
      'ctx.load_cert_chain(certfile=sys.argv[3], keyfile=sys.argv[4])',
      "with ctx.wrap_socket(socket.create_connection(('127.0.0.1', int(sys.argv[1])))) as s:",
      "    uris = [v for k, v in s.getpeercert().get('subjectAltName', ()) if k == 'URI']",
      '    greeting = s.recv(4096).decode()',
      "    s.sendall(b'ping\\n')",
      '    echo = s.recv(4096).decode()',
      "    print(json.dumps({'uris': uris, 'greeting': greeting, 'echo': echo}))",
    ].join('\n');
    const { code, output } = await run('python3', ['-c', script, String(port), files.ca!, files.full!, files.key!]);
    assert.equal(code, 0, output);
    assert.deepEqual(JSON.parse(output), {
      uris: [agent.planner!.spiffeID],
      greeting: `hello ${agent.orchestrator!.spiffeID} (allow[0]: agent agents/orchestrator)\n`,
      echo: 'ping\n',
    });
  });

  it('SDK client → openssl s_server', async () => {
    const planner = agent.planner!;
    const [leaf, intermediate] = planner.certificatePem.split(/(?<=-----END CERTIFICATE-----\n)/);
    await writeFile(join(base, 'p-leaf.pem'), leaf!);
    await writeFile(join(base, 'p-chain.pem'), intermediate!);
    await writeFile(join(base, 'p.key'), planner.privateKeyPem);
    const sServer = spawnSServer(['-cert', join(base, 'p-leaf.pem'), '-cert_chain', join(base, 'p-chain.pem'), '-key', join(base, 'p.key'), '-CAfile', files.ca!]);
    try {
      const sPort = await sServer.port;
      const identity = await loadIdentity({ dir: await mounted(agent.orchestrator!), watch: false });
      const socket = await connect(identity, '127.0.0.1', sPort, { authorize: planner.spiffeID });
      assert.equal(peerIdentity(socket)?.serialNumber, planner.serialNumber);
      socket.write('ping\n');
      const [reply] = await once(socket, 'data');
      assert.equal(String(reply), 'gnip\n', 's_server -rev echoes reversed lines');
      socket.destroy();
      identity.close();
      assert.match(sServer.output(), /verify return:1/);
    } finally {
      sServer.child.kill();
    }
  });
});

/** openssl s_server that requires a client certificate chaining to the CA file, and echoes lines reversed. */
function spawnSServer(args: string[]) {
  const child = spawn('openssl', ['s_server', '-accept', '127.0.0.1:0', '-Verify', '1', '-verify_return_error', '-rev', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  const port = new Promise<number>((resolve, reject) => {
    const onData = (d: Buffer) => {
      output += d;
      const m = /ACCEPT 127\.0\.0\.1:(\d+)/.exec(output);
      if (m) resolve(Number(m[1]));
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', () => reject(new Error(`s_server exited: ${output}`)));
    child.on('error', reject);
  });
  return { child, port, output: () => output };
}
