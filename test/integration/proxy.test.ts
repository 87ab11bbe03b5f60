// agent-identity proxy as it runs beside an agent: processes for the proxies,
// Python agents (standard library only, no certificate code) behind them,
// identities laid out as Kubernetes mounts them (both deliveries). No
// Kubernetes needed: the policy documents are written as the operator writes them.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import type { EgressDocument, PolicyDocument } from '../../src/api/documents.ts';
import { x509 } from '../../src/pki/index.ts';
import { connect, httpsAgent, loadIdentity, tlsConnectOptions } from '../../src/sdk/index.ts';
import { type Echo, headerValues, pythonCall, pythonGet, startPythonApp, startProxyProcess, type ProxyProcess } from '../support/proxy.ts';
import { denied, fileSet, type IssuedIdentity, makeTrustDomain, podCertificateFileSet, policyFor, swapMountedDir, type TestTrustDomain, writeMountedDir } from '../support/sdk-pki.ts';
import type { PeerProcess } from '../support/sdk-process.ts';

const HEADER_TIMEOUT_MS = 1000;
const MAX_BODY = 64 * 1024;

let base: string;
let td: TestTrustDomain;
const agent: Record<'caller' | 'planner' | 'intruder' | 'mallory', IssuedIdentity> = {} as never;
const dirs: Record<string, string> = {};
const children: PeerProcess[] = [];
let plannerApp: { process: PeerProcess; port: number };
let callerApp: { process: PeerProcess; port: number };
let planner: ProxyProcess;
let caller: ProxyProcess;
let intruder: ProxyProcess;
let mallory: ProxyProcess;

const host = (name: string) => `${name}.agents.svc`;
const leafHash = (pem: string) => createHash('sha256').update(new Uint8Array(new x509.X509Certificate(pem.split(/(?<=-----END CERTIFICATE-----)/)[0]!).rawData)).digest('hex');

function egress(allow: EgressDocument['allow'] | undefined): EgressDocument {
  return {
    mode: allow ? 'AllowList' : 'TrustDomain',
    allow: allow ?? [],
    destinations: (['caller', 'planner', 'intruder', 'mallory'] as const).map((n) => ({ host: host(n), spiffeID: agent[n].spiffeID })).sort((a, b) => (a.host < b.host ? -1 : 1)),
  };
}

// caller may call planner only; planner admits caller and mallory, but mallory is deny-listed.
const callerPolicy = (): PolicyDocument => ({ ...policyFor(agent.caller), egress: egress([{ spiffeID: agent.planner.spiffeID, rule: 'egress.allow[0]: agent agents/planner' }]) });
const plannerPolicy = (): PolicyDocument => ({
  ...policyFor(agent.planner, {
    allow: [{ spiffeID: agent.caller.spiffeID, rule: 'allow[0]: agent agents/caller' }, { spiffeID: agent.mallory.spiffeID, rule: 'allow[1]: agent agents/mallory' }],
    denyList: [denied(agent.mallory, 'Suspended')],
  }),
  egress: egress(undefined),
});
const openPolicy = (who: IssuedIdentity): PolicyDocument => ({ ...policyFor(who), egress: egress(undefined) });

const resolveAll = ['caller', 'planner', 'intruder', 'mallory'].flatMap((n) => ['--resolve', `${host(n)}=127.0.0.1`]);
const limits = ['--header-timeout', `${HEADER_TIMEOUT_MS}ms`, '--max-body-bytes', String(MAX_BODY)];

async function proxy(args: string[]): Promise<ProxyProcess> {
  const p = await startProxyProcess([...args, '--inbound-address', '127.0.0.1', ...resolveAll, ...limits]);
  children.push(p.process);
  return p;
}

const parse = (body: string) => JSON.parse(body) as Echo;

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'proxy-'));
  td = await makeTrustDomain();
  for (const name of ['caller', 'planner', 'intruder', 'mallory'] as const) agent[name] = await td.issue(name);
  for (const name of Object.keys(agent)) dirs[name] = join(base, name);
  // planner as pod-certificate delivery (the kubelet's credential bundle), the others as a Secret.
  await writeMountedDir(dirs.planner!, podCertificateFileSet(agent.planner, td.bundlePem, plannerPolicy()));
  await writeMountedDir(dirs.caller!, fileSet(agent.caller, td.bundlePem, callerPolicy()));
  await writeMountedDir(dirs.intruder!, fileSet(agent.intruder, td.bundlePem, openPolicy(agent.intruder)));
  await writeMountedDir(dirs.mallory!, fileSet(agent.mallory, td.bundlePem, openPolicy(agent.mallory)));
  [plannerApp, callerApp] = await Promise.all([startPythonApp(), startPythonApp()]);
  children.push(plannerApp.process, callerApp.process);
  [planner, caller, intruder, mallory] = await Promise.all([
    proxy(['--identity-dir', dirs.planner!, '--inbound-port', '0', '--app-port', String(plannerApp.port), '--outbound-port', '0']),
    proxy(['--identity-dir', dirs.caller!, '--inbound-port', '0', '--app-port', String(callerApp.port), '--outbound-port', '0']),
    // intruder's inbound proxy, in front of planner's app: a valid identity, but not the one that claims planner's name.
    proxy(['--identity-dir', dirs.intruder!, '--inbound-port', '0', '--app-port', String(plannerApp.port)]),
    proxy(['--identity-dir', dirs.mallory!, '--outbound-port', '0']),
  ]);
});

after(async () => {
  await Promise.all(children.map((p) => p.stop()));
  await rm(base, { recursive: true, force: true });
});

describe('agent-identity proxy: Python agents through both proxies', () => {
  it('caller → its outbound proxy → planner\'s inbound proxy → planner\'s app: the app sees the verified peer, and forged identity headers are gone', async () => {
    const answer = await pythonGet(`http://${host('planner')}:${planner.inboundPort}/hello?x=1`, caller.outboundPort!);
    assert.equal(answer.status, 200, answer.body);
    const echo = parse(answer.body);
    assert.equal(echo.path, '/hello?x=1');
    assert.deepEqual(headerValues(echo, 'x-agent-identity-peer'), [agent.caller.spiffeID]);
    assert.deepEqual(headerValues(echo, 'x-forwarded-client-cert'), [`Hash=${leafHash(agent.caller.certificatePem)};URI=${agent.caller.spiffeID}`]);
    assert.deepEqual(headerValues(echo, 'host'), [`${host('planner')}:${planner.inboundPort}`]);
  });

  it('and back: planner → caller (planner\'s identity from the credential bundle)', async () => {
    const answer = await pythonGet(`http://${host('caller')}:${caller.inboundPort}/back`, planner.outboundPort!);
    assert.equal(answer.status, 200, answer.body);
    assert.deepEqual(headerValues(parse(answer.body), 'x-agent-identity-peer'), [agent.planner.spiffeID]);
  });

  it('a client talking mTLS to the inbound proxy itself cannot pass forged identity headers either, in any case or number', async () => {
    const identity = await loadIdentity({ dir: dirs.caller, watch: false });
    const agentTLS = httpsAgent(identity, { authorize: agent.planner.spiffeID });
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const req = https.request({ host: '127.0.0.1', port: planner.inboundPort, path: '/direct', agent: agentTLS, headers: [
          'X-Agent-Identity-Peer', 'spiffe://cluster.local/ns/agents/agent/forged',
          'x-agent-identity-peer', 'spiffe://cluster.local/ns/agents/agent/forged2',
          'X-FORWARDED-CLIENT-CERT', 'Hash=00;URI=spiffe://cluster.local/ns/agents/agent/forged',
          'Connection', 'x-drop-me', 'x-drop-me', 'hop',
          'Host', 'planner',
        ] as unknown as Record<string, string> }, (res) => {
          let data = '';
          res.on('data', (d) => (data += d)).on('end', () => resolve(data));
        });
        req.on('error', reject).end();
      });
      const echo = parse(body);
      assert.deepEqual(headerValues(echo, 'x-agent-identity-peer'), [agent.caller.spiffeID]);
      assert.deepEqual(headerValues(echo, 'x-forwarded-client-cert'), [`Hash=${leafHash(agent.caller.certificatePem)};URI=${agent.caller.spiffeID}`]);
      assert.deepEqual(headerValues(echo, 'x-drop-me'), [], 'a header the Connection header names is hop-by-hop');
    } finally {
      agentTLS.destroy();
      identity.close();
    }
  });
});

describe('agent-identity proxy: egress', () => {
  it('an agent the egress policy does not allow: 403 naming the rule, before any connection', async () => {
    const answer = await pythonGet(`http://${host('intruder')}:${intruder.inboundPort}/`, caller.outboundPort!);
    assert.equal(answer.status, 403);
    assert.match(answer.body, new RegExp(`egress to intruder\\.agents\\.svc \\(${agent.intruder.spiffeID}\\) refused: calls to ${agent.intruder.spiffeID} are not allowed by the egress policy of ${agent.caller.spiffeID} \\(egress\\.allow list: egress\\.allow\\[0\\]: agent agents/planner\\)`));
    await caller.process.waitFor('refused', (e) => e.reason === 'EgressDenied');
  });

  it('a host no identity claims is external: 403', async () => {
    const answer = await pythonGet('http://example.com/', caller.outboundPort!);
    assert.equal(answer.status, 403);
    assert.match(answer.body, /egress to example\.com refused: no AgentIdentity claims it/);
  });

  it('a server presenting another agent\'s valid certificate for the name: 502 naming both IDs, and the app behind it is never called', async () => {
    // planner's name resolves to 127.0.0.1; this port is intruder's proxy, in front of planner's own app.
    const answer = await pythonGet(`http://${host('planner')}:${intruder.inboundPort}/impostor`, caller.outboundPort!);
    assert.equal(answer.status, 502);
    assert.match(answer.body, new RegExp(`presented ${agent.intruder.spiffeID}, expected ${agent.planner.spiffeID}`));
    await caller.process.waitFor('refused', (e) => e.reason === 'NotAuthorized' && e.peer === agent.intruder.spiffeID);
    assert.ok(!plannerApp.process.events.some((e) => e.event === 'request' && e.path === '/impostor'));
  });

  it('a deny-listed peer is refused by the inbound proxy although the allow list names it', async () => {
    const answer = await pythonGet(`http://${host('planner')}:${planner.inboundPort}/from-mallory`, mallory.outboundPort!);
    assert.equal(answer.status, 502);
    assert.match(answer.body, /closed the connection without an answer: its policy or deny list may refuse spiffe:\/\/cluster\.local\/ns\/agents\/agent\/mallory/);
    const refusal = await planner.process.waitFor('refused', (e) => e.reason === 'DenyListed');
    assert.equal(refusal.peer, agent.mallory.spiffeID);
    assert.match(String(refusal.message), new RegExp(`serial ${agent.mallory.serialNumber} is on the deny list \\(Suspended\\)`));
    assert.ok(!plannerApp.process.events.some((e) => e.event === 'request' && e.path === '/from-mallory'));
  });

  it('a server whose certificate is on the caller\'s deny list is refused by the outbound proxy: 502 naming the deny list', async () => {
    await swapMountedDir(dirs.mallory!, fileSet(agent.mallory, td.bundlePem, { ...openPolicy(agent.mallory), denyList: [denied(agent.intruder, 'Deleted')] }));
    await mallory.process.waitFor('identity reloaded');
    const answer = await pythonGet(`http://${host('intruder')}:${intruder.inboundPort}/to-denied`, mallory.outboundPort!);
    assert.equal(answer.status, 502);
    assert.match(answer.body, new RegExp(`the server at intruder\\.agents\\.svc:${intruder.inboundPort} was refused: peer certificate serial ${agent.intruder.serialNumber} is on the deny list \\(Deleted\\)`));
    assert.ok(!plannerApp.process.events.some((e) => e.event === 'request' && e.path === '/to-denied'));
  });

  it('CONNECT is refused with 405 and the reason; a request that is not absolute-form gets 400', async () => {
    const connectAnswer = await rawExchange(net.connect(caller.outboundPort!, '127.0.0.1'), `CONNECT ${host('planner')}:443 HTTP/1.1\r\nHost: ${host('planner')}:443\r\n\r\n`);
    assert.match(connectAnswer, /^HTTP\/1\.1 405 /);
    assert.match(connectAnswer, /CONNECT is not supported\. Call agents with plain http:\/\/ URLs through HTTP_PROXY/);
    const origin = await rawExchange(net.connect(caller.outboundPort!, '127.0.0.1'), 'GET /x HTTP/1.1\r\nHost: planner\r\nConnection: close\r\n\r\n');
    assert.match(origin, /^HTTP\/1\.1 400 /);
    assert.match(origin, /expected an absolute http:\/\/ URL/);
  });

  it('a body over --max-body-bytes gets 413', async () => {
    const answer = await pythonGet(`http://${host('planner')}:${planner.inboundPort}/big`, caller.outboundPort!, 'x'.repeat(MAX_BODY + 1));
    assert.equal(answer.status, 413, answer.body);
    assert.match(answer.body, new RegExp(`request body is larger than ${MAX_BODY} bytes`));
  });
});

/** Writes `request` on a socket (written once it connects, TLS or not) and resolves with all it answers until it closes. */
async function rawExchange(socket: net.Socket, request: string): Promise<string> {
  let answer = '';
  socket.on('data', (d) => (answer += d));
  // A reset (a dropped connection) ends the exchange like a close; what was answered tells.
  // (events.once would reject on the error, so the close is awaited by hand.)
  socket.on('error', () => undefined);
  const closed = new Promise((resolve) => socket.once('close', resolve));
  socket.write(request);
  await closed;
  return answer;
}

describe('agent-identity proxy: strict parsing and timeouts', () => {
  // Each pairs a Content-Length with a Transfer-Encoding a front end and a back end could read differently.
  const smuggling: [string, string][] = [
    ['CL.TE', 'POST {target} HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n'],
    ['TE.CL', 'POST {target} HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n0\r\n\r\n'],
    ['TE with a space before the colon', 'POST {target} HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n'],
    ['two differing Content-Lengths', 'POST {target} HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nContent-Length: 40\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n'],
  ];

  for (const [name, template] of smuggling) {
    it(`outbound: ${name} is refused with 400 and nothing reaches the app`, async () => {
      const answer = await rawExchange(net.connect(caller.outboundPort!, '127.0.0.1'), template.replace('{target}', `http://${host('planner')}:${planner.inboundPort}/front`));
      assert.match(answer, /^HTTP\/1\.1 400 /);
      assert.ok(!plannerApp.process.events.some((e) => e.event === 'request' && /smuggled|front/.test(String(e.path))));
    });

    it(`inbound (over mTLS): ${name} is refused with 400 and nothing reaches the app`, async () => {
      const identity = await loadIdentity({ dir: dirs.caller, watch: false });
      try {
        const socket = tls.connect({ host: '127.0.0.1', port: planner.inboundPort!, ...tlsConnectOptions(identity, { authorize: agent.planner.spiffeID }) });
        const answer = await rawExchange(socket, template.replace('{target}', '/front'));
        assert.match(answer, /^HTTP\/1\.1 400 /);
        assert.ok(!plannerApp.process.events.some((e) => e.event === 'request' && /smuggled|front/.test(String(e.path))));
      } finally {
        identity.close();
      }
    });
  }

  it('a client that never finishes its headers is answered 408 and closed after the header timeout (outbound and inbound)', async () => {
    const slow = async (socket: net.Socket) => {
      const started = performance.now();
      const answer = await rawExchange(socket, `GET http://${host('planner')}:1/slow HTTP/1.1\r\nHost: x\r\nX-Partial: `);
      return { answer, ms: performance.now() - started };
    };
    const identity = await loadIdentity({ dir: dirs.caller, watch: false });
    try {
      const [out, inn] = await Promise.all([
        slow(net.connect(caller.outboundPort!, '127.0.0.1')),
        slow(tls.connect({ host: '127.0.0.1', port: planner.inboundPort!, ...tlsConnectOptions(identity, { authorize: agent.planner.spiffeID }) })),
      ]);
      for (const r of [out, inn]) {
        assert.match(r.answer, /^HTTP\/1\.1 408 /);
        // Closed by the timeout, not by anything sooner; the upper bound only catches a timeout that never fires.
        assert.ok(r.ms >= HEADER_TIMEOUT_MS * 0.9, `closed after ${r.ms} ms`);
        assert.ok(r.ms < HEADER_TIMEOUT_MS * 10, `closed after ${r.ms} ms`);
      }
    } finally {
      identity.close();
    }
  });
});

describe('agent-identity proxy: TCP mode', () => {
  it('pipes bytes for an admitted peer, adds no headers, and refuses a peer the policy does not allow', async () => {
    const tcp = await proxy(['--identity-dir', dirs.planner!, '--inbound-port', '0', '--app-port', String(plannerApp.port), '--mode', 'tcp']);
    const callerIdentity = await loadIdentity({ dir: dirs.caller, watch: false });
    const intruderIdentity = await loadIdentity({ dir: dirs.intruder, watch: false });
    try {
      const socket = await connect(callerIdentity, '127.0.0.1', tcp.inboundPort!, { authorize: agent.planner.spiffeID });
      const answer = await rawExchange(socket, 'GET /over-tcp HTTP/1.1\r\nHost: planner\r\nX-Agent-Identity-Peer: forged\r\nConnection: close\r\n\r\n');
      assert.match(answer, /^HTTP\/1\.1 200 /);
      const echo = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as Echo;
      assert.deepEqual(headerValues(echo, 'x-agent-identity-peer'), ['forged'], 'TCP mode passes bytes as they are');

      // Under TLS 1.3 the client may finish its handshake before the server judged it: refused then means closed unanswered.
      const refused = await connect(intruderIdentity, '127.0.0.1', tcp.inboundPort!, { authorize: agent.planner.spiffeID })
        .then((s) => rawExchange(s, 'GET /from-intruder HTTP/1.1\r\nHost: planner\r\n\r\n'), () => '');
      assert.equal(refused, '');
      const refusal = await tcp.process.waitFor('refused', (e) => e.reason === 'NotAuthorized');
      assert.equal(refusal.peer, agent.intruder.spiffeID);
      assert.ok(!plannerApp.process.events.some((e) => e.event === 'request' && e.path === '/from-intruder'));
    } finally {
      callerIdentity.close();
      intruderIdentity.close();
    }
  });
});

describe('agent-identity proxy: a peer deny-listed while connected', () => {
  it('its idle connection closes at once, its request in flight finishes and then its connection closes, and it cannot connect again', async () => {
    const identity = await loadIdentity({ dir: dirs.caller, watch: false });
    const keepAlive = httpsAgent(identity, { authorize: agent.planner.spiffeID, keepAlive: true });
    const release = join(base, 'release-revoked');
    const get = (path: string) => new Promise<{ status: number; socket: net.Socket }>((resolve, reject) => {
      https.get({ host: '127.0.0.1', port: planner.inboundPort, path, agent: keepAlive }, (res) => {
        const socket = res.socket;
        res.resume().on('end', () => resolve({ status: res.statusCode!, socket }));
      }).on('error', reject);
    });
    // A second connection of the same peer, idle in its pool when the deny list changes.
    const idleAgent = httpsAgent(identity, { authorize: agent.planner.spiffeID, keepAlive: true });
    try {
      const idle = await new Promise<net.Socket>((resolve, reject) => {
        https.get({ host: '127.0.0.1', port: planner.inboundPort, path: '/idle', agent: idleAgent }, (res) => {
          const socket = res.socket;
          res.resume().on('end', () => resolve(socket));
        }).on('error', reject);
      });
      // The proxies' idle timeout (60 s) would close it too, much later: waiting is bounded well below that.
      const idleClosed = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the idle connection of the deny-listed peer is still open')), 20_000);
        idle.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      const inFlight = get(`/slow?release=${encodeURIComponent(release)}`);
      await plannerApp.process.waitFor('request', (e) => String(e.path).startsWith('/slow?release=') && String(e.path).includes('revoked'));
      await swapMountedDir(dirs.planner!, podCertificateFileSet(agent.planner, td.bundlePem, { ...plannerPolicy(), denyList: [denied(agent.caller, 'Suspended')] }));
      const refusal = await planner.process.waitFor('refused', (e) => String(e.message).startsWith('an open connection'));
      assert.equal(refusal.peer, agent.caller.spiffeID);
      assert.equal(refusal.reason, 'DenyListed');
      await idleClosed;
      await writeFile(release, '');
      const done = await inFlight;
      assert.equal(done.status, 200);
      if (!done.socket.destroyed) await once(done.socket, 'close');
      await assert.rejects(get('/after-revocation'), /ECONNRESET|socket hang up/);
      assert.ok(!plannerApp.process.events.some((e) => e.event === 'request' && e.path === '/after-revocation'));
    } finally {
      keepAlive.destroy();
      idleAgent.destroy();
      identity.close();
      await swapMountedDir(dirs.planner!, podCertificateFileSet(agent.planner, td.bundlePem, plannerPolicy()));
      await planner.process.waitFor('identity reloaded');
    }
  });
});

describe('agent-identity proxy: connection cap', () => {
  it('with --max-connections 2, a third connection is dropped until one closes', async () => {
    const capped = await proxy(['--identity-dir', dirs.caller!, '--outbound-port', '0', '--max-connections', '2']);
    const open = async () => {
      const s = net.connect(capped.outboundPort!, '127.0.0.1');
      await once(s, 'connect');
      return s;
    };
    const [a, b] = [await open(), await open()];
    // Both are accepted: each answers.
    const third = await rawExchange(net.connect(capped.outboundPort!, '127.0.0.1'), 'CONNECT x:1 HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(third, '', 'dropped on accept, unanswered');
    a.destroy();
    await once(a, 'close');
    // The server hears of the close a moment later; retry until it has room again.
    let answer = '';
    for (let i = 0; i < 50 && answer === ''; i++) answer = await rawExchange(net.connect(capped.outboundPort!, '127.0.0.1'), 'CONNECT x:1 HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match(answer, /^HTTP\/1\.1 405 /);
    b.destroy();
  });
});

describe('agent-identity proxy: hot reload', () => {
  it('renewal of both identities (Secret and credential bundle) while a request is in flight: it completes, and new calls use the new certificates', async () => {
    const release = join(base, 'release');
    const inFlight = pythonCall(`http://${host('planner')}:${planner.inboundPort}/slow?release=${encodeURIComponent(release)}`, caller.outboundPort!);
    children.push(inFlight);
    await plannerApp.process.waitFor('request', (e) => String(e.path).startsWith('/slow'));

    // Renewal: new Leaves, same SPIFFE IDs; the kubelet swaps ..data.
    const caller0 = agent.caller;
    const renewed = { caller: await td.issue('caller'), planner: await td.issue('planner') };
    agent.caller = renewed.caller;
    agent.planner = renewed.planner;
    await swapMountedDir(dirs.caller!, fileSet(renewed.caller, td.bundlePem, callerPolicy()));
    await swapMountedDir(dirs.planner!, podCertificateFileSet(renewed.planner, td.bundlePem, plannerPolicy()));
    await caller.process.waitFor('identity reloaded', (e) => e.serialNumber === renewed.caller.serialNumber);
    await planner.process.waitFor('identity reloaded', (e) => e.serialNumber === renewed.planner.serialNumber);

    await writeFile(release, '');
    const done = await inFlight.waitFor('response');
    assert.equal(done.status, 200, String(done.body));
    assert.deepEqual(headerValues(parse(String(done.body)), 'x-forwarded-client-cert'), [`Hash=${leafHash(caller0.certificatePem)};URI=${renewed.caller.spiffeID}`], 'admitted with the old Leaf');

    const after = await pythonGet(`http://${host('planner')}:${planner.inboundPort}/after-renewal`, caller.outboundPort!);
    assert.equal(after.status, 200, after.body);
    assert.deepEqual(headerValues(parse(after.body), 'x-forwarded-client-cert'), [`Hash=${leafHash(renewed.caller.certificatePem)};URI=${renewed.caller.spiffeID}`], 'a new connection with the new Leaf');
  });
});

describe('agent-identity proxy: SIGTERM', () => {
  it('stops accepting, lets the request in flight finish, then exits 0', async () => {
    const leaving = await proxy(['--identity-dir', dirs.caller!, '--outbound-port', '0']);
    const release = join(base, 'release-sigterm');
    const inFlight = pythonCall(`http://${host('planner')}:${planner.inboundPort}/slow?release=${encodeURIComponent(release)}&sigterm`, leaving.outboundPort!);
    children.push(inFlight);
    await plannerApp.process.waitFor('request', (e) => String(e.path).endsWith('&sigterm'));
    const exited = once(leaving.process.child, 'exit');
    leaving.process.child.kill('SIGTERM');
    await leaving.process.waitFor('draining');
    // Closed for new connections while the request is still held.
    const refused = await rawExchange(net.connect(leaving.outboundPort!, '127.0.0.1'), 'CONNECT x:1 HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(refused, '');
    assert.equal(leaving.process.child.exitCode, null, 'still draining');
    await writeFile(release, '');
    const done = await inFlight.waitFor('response');
    assert.equal(done.status, 200, String(done.body));
    assert.deepEqual(await exited, [0, null]);
  });
});
