// The SDK's HTTPS server holds requests to the narrowing rules of policy.json
// itself, before any listener: over real loopback mTLS, in one process.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { PolicyDocument } from '../../../src/api/documents.ts';
import type { AuditRecord } from '../../../src/audit/record.ts';
import { connect, httpsAgent } from '../../../src/sdk/client.ts';
import { type Identity, loadIdentity } from '../../../src/sdk/identity.ts';
import { createHttpsServer, createServer } from '../../../src/sdk/server.ts';
import { fileSet, type IssuedIdentity, makeTrustDomain, policyFor, type TestTrustDomain, writePlainDir } from '../../support/sdk-pki.ts';

let base: string;
let td: TestTrustDomain;
const issued: Record<string, IssuedIdentity> = {};
const identities: Identity[] = [];
const closers: (() => unknown)[] = [];

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'sdk-rpc-'));
  td = await makeTrustDomain();
  for (const name of ['tools', 'orchestrator', 'planner']) issued[name] = await td.issue(name);
});
after(async () => {
  for (const c of closers) c();
  for (const i of identities) i.close();
  await rm(base, { recursive: true, force: true });
});

async function identityOf(who: IssuedIdentity, policy: PolicyDocument): Promise<Identity> {
  const dir = join(base, who.spiffeID.split('/').at(-1)! + identities.length);
  await writePlainDir(dir, fileSet(who, td.bundlePem, policy));
  const identity = await loadIdentity({ dir, watch: false });
  identities.push(identity);
  return identity;
}

/** tools: the orchestrator may call search on /mcp only; the planner may do anything. */
const toolsPolicy = (): PolicyDocument => ({
  ...policyFor(issued.tools!, { allow: [
    { spiffeID: issued.orchestrator!.spiffeID, rule: 'allow[0]: agent agents/orchestrator', rules: [0] },
    { spiffeID: issued.planner!.spiffeID, rule: 'allow[1]: agent agents/planner' },
  ] }),
  version: 2,
  narrowings: [{ index: 0, rule: 'allow[0]: agent agents/orchestrator', http: { paths: ['/mcp'] }, mcp: { tools: ['search'] } }],
});

function post(port: number, agent: https.Agent, path: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject).end(body);
  });
}

describe('createHttpsServer: request-level policy', () => {
  it('a narrowed peer: allowed calls reach the handler with their body, refused ones get -32003; an open peer passes; one record per decision', async () => {
    const tools = await identityOf(issued.tools!, toolsPolicy());
    const records: AuditRecord[] = [];
    const bodies: string[] = [];
    const server = createHttpsServer(tools, { requests: { onDecision: (r) => records.push(r) } }, (req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => {
        bodies.push(body);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'search' }, { name: 'delete_all' }] } }));
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    closers.push(() => server.close());
    const port = (server.address() as AddressInfo).port;
    const as = async (name: string) => httpsAgent(await identityOf(issued[name]!, policyFor(issued[name]!)), { authorize: tools.spiffeID });

    const orchestrator = await as('orchestrator');
    const call = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'search' } });
    assert.equal((await post(port, orchestrator, '/mcp', call)).status, 200);
    assert.equal(bodies.at(-1), call, 'the handler reads the body as sent');

    const refused = JSON.parse((await post(port, orchestrator, '/mcp', call.replace('search', 'delete_all'))).text);
    assert.equal(refused.error.code, -32003);
    assert.equal(bodies.length, 1);

    const list = JSON.parse((await post(port, orchestrator, '/mcp', JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }))).text);
    assert.deepEqual(list.result.tools, [{ name: 'search' }]);
    assert.equal((await post(port, orchestrator, '/admin', call)).status, 403);

    // The planner's rule does not narrow: anything goes, unfiltered.
    const planner = await as('planner');
    const open = JSON.parse((await post(port, planner, '/mcp', JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }))).text);
    assert.deepEqual(open.result.tools, [{ name: 'search' }, { name: 'delete_all' }]);
    assert.equal((await post(port, planner, '/admin', 'not json')).status, 200);

    assert.deepEqual(records.map((r) => [r.peer.split('/').at(-1), r.transport, r.path, r.decision, r.tool ?? r.rpcMethod ?? null, r.rule]), [
      ['orchestrator', 'mcp', '/mcp', 'allow', 'search', 0],
      ['orchestrator', 'mcp', '/mcp', 'deny', 'delete_all', null],
      ['orchestrator', 'mcp', '/mcp', 'allow', 'tools/list', 0],
      ['orchestrator', 'http', '/admin', 'deny', null, null],
      ['planner', 'http', '/mcp', 'allow', null, 1],
      ['planner', 'http', '/admin', 'allow', null, 1],
    ]);
  });

  it('an upgrade (WebSocket) from a narrowed peer is refused, even with an upgrade listener', async () => {
    const tools = await identityOf(issued.tools!, toolsPolicy());
    const server = createHttpsServer(tools, {}, (_req, res) => res.end('ok'));
    let upgraded = 0;
    server.on('upgrade', (_req, socket) => {
      upgraded++;
      socket.end('HTTP/1.1 101 Switching Protocols\r\n\r\n');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    closers.push(() => server.close());
    const orchestrator = await identityOf(issued.orchestrator!, policyFor(issued.orchestrator!));
    const answer = await new Promise<number>((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, path: '/mcp', agent: httpsAgent(orchestrator, { authorize: tools.spiffeID }), headers: { connection: 'upgrade', upgrade: 'websocket' } });
      req.on('response', (res) => resolve(res.statusCode!)).on('upgrade', () => resolve(101)).on('error', reject).end();
    });
    assert.equal(answer, 403);
    assert.equal(upgraded, 0);
  });
});

describe('createServer (raw TLS): sees no requests', () => {
  it('refuses a peer that only narrowing rules allow, and says why', async () => {
    const tools = await identityOf(issued.tools!, toolsPolicy());
    const server = createServer(tools, {}, (s) => s.end('hello\n'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    closers.push(() => server.close());
    const refused = once(server, 'refused');
    const orchestrator = await identityOf(issued.orchestrator!, policyFor(issued.orchestrator!));
    await connect(orchestrator, '127.0.0.1', (server.address() as AddressInfo).port, { authorize: tools.spiffeID }).then((s) => s.on('error', () => undefined).resume(), () => undefined);
    const [err] = await refused;
    assert.match((err as Error).message, /allow\[0\]: agent agents\/orchestrator narrows what it may call \(http, mcp or a2a\), and this server does not inspect requests/);
  });
});
