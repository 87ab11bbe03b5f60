// Tool-level policy through the identity proxy on what the operator really
// writes: AgentIdentities with rules that narrow to MCP tools, A2A methods
// and HTTP paths, created in a real API server; their policy.json projected
// as the kubelet does; `agent-identity proxy` processes on both sides; a
// hand-written JSON-RPC app behind the inbound proxy that records every
// call it receives (the official MCP SDK end to end lives in its own test).
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { PolicyDocument } from '../../src/api/documents.ts';
import type { Operator } from '../../src/operator.ts';
import type { TestEnv } from '../support/env.ts';
import { mountIdentity, type Mount } from '../support/kubelet.ts';
import { api, isReady } from '../support/objects.ts';
import { eventually } from '../support/operator.ts';
import { startProxyProcess } from '../support/proxy.ts';
import type { PeerProcess } from '../support/sdk-process.ts';
import { setUp, tearDown } from '../support/suite.ts';

let env: TestEnv;
let op: Operator;
let a: ReturnType<typeof api>;
let base: string;
let app: http.Server;
const mounts: Mount[] = [];
const children: PeerProcess[] = [];
/** Every JSON-RPC body the app received, by path. */
const received: { path: string; body: string }[] = [];

const TOOLS = ['search', 'delete_all', '\u0455earch'];

/** The tools server's app: answers MCP on /mcp and A2A on /a2a, as any JSON-RPC server would. */
function startApp(): Promise<number> {
  app = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c)).on('end', () => {
      received.push({ path: req.url ?? '', body });
      const msg = JSON.parse(body || 'null') as { id?: unknown; method?: string } | null;
      const result = msg?.method === 'tools/list' ? { tools: TOOLS.map((name) => ({ name, inputSchema: { type: 'object' } })) } : { handled: msg?.method ?? null };
      const text = JSON.stringify({ jsonrpc: '2.0', id: msg?.id ?? null, result });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
    });
  });
  app.listen(0, '127.0.0.1');
  return new Promise((r) => app.once('listening', () => r((app.address() as AddressInfo).port)));
}

before(async () => {
  ({ env, op, a } = await setUp({}));
  base = await mkdtemp(join(tmpdir(), 'proxy-rpc-'));
});
after(async () => {
  for (const m of mounts) m.stop();
  await Promise.all(children.map((c) => c.stop()));
  app?.close();
  await tearDown({ env, op });
  await rm(base, { recursive: true, force: true });
});

/** A POST through the orchestrator's outbound proxy, as an agent with HTTP_PROXY sends it. */
function call(outboundPort: number, url: string, body: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    const req = http.request({ host: '127.0.0.1', port: outboundPort, method: 'POST', path: url, headers: { host: new URL(url).host, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } }, (res) => {
      let out = '';
      res.setEncoding('utf8').on('data', (c: string) => (out += c)).on('end', () => resolve({ status: res.statusCode!, text: out }));
    });
    req.on('error', reject).end(text);
  });
}

const rpc = (id: number, method: string, params?: unknown) => ({ jsonrpc: '2.0', id, method, ...(params ? { params } : {}) });

test('tools, A2A methods and paths per caller: allowed calls pass, refused ones get -32003 naming the rule, tools/list is filtered, other paths get 403', async () => {
  const ns = await env.namespace('rpc-policy');
  await a.createIdentity(ns, 'tools', { policy: { allow: [
    { agent: { name: 'orchestrator' }, http: { paths: ['/mcp'] }, mcp: { tools: ['search'] } },
    { agent: { name: 'orchestrator' }, http: { methods: ['POST'], paths: ['/a2a'] }, a2a: { methods: ['message/send', 'tasks/get'] } },
  ] } });
  // The orchestrator's own egress rule narrows too: to the paths of the two protocols (a glob, so /mcpx passes here and is refused by tools).
  await a.createIdentity(ns, 'orchestrator', { policy: { egress: { allow: [{ agent: { name: 'tools' }, http: { paths: ['/mcp*', '/a2a'] } }] } } });
  for (const name of ['tools', 'orchestrator']) await eventually(async () => isReady(await a.getIdentity(ns, name)), { what: `${name} Ready` });
  // The policy.json each proxy reads, as the kubelet projected it (wherever the operator publishes it).
  const dir = (name: string) => join(base, name);
  const mounted: Record<string, Mount> = {};
  for (const name of ['tools', 'orchestrator']) mounts.push((mounted[name] = await mountIdentity(env.kc, ns, name, dir(name), 200)));
  const policy = async (name: string) => {
    await mounted[name]!.synced();
    return JSON.parse(await readFile(join(dir(name), 'policy.json'), 'utf8')) as PolicyDocument;
  };
  const orchestratorID = `spiffe://cluster.local/ns/${ns}/agent/orchestrator`;
  await eventually(async () => (await policy('tools')).allow.some((p) => p.spiffeID === orchestratorID), { what: 'tools policy.json allows the orchestrator' });
  await eventually(async () => (await policy('orchestrator')).egress?.allow.some((p) => p.rules !== undefined), { what: 'orchestrator policy.json narrows its egress' });
  const toolsDoc = await policy('tools');
  assert.equal(toolsDoc.version, 2, 'narrowing rules make a version 2 document, which older proxies refuse');
  assert.deepEqual(toolsDoc.allow.find((p) => p.spiffeID === orchestratorID)?.rules, [0, 1]);

  const appPort = await startApp();
  const tools = await startProxyProcess(['--identity-dir', dir('tools'), '--inbound-port', '0', '--inbound-address', '127.0.0.1', '--app-port', String(appPort)]);
  const orchestrator = await startProxyProcess(['--identity-dir', dir('orchestrator'), '--outbound-port', '0', '--resolve', `tools.${ns}.svc=127.0.0.1`]);
  children.push(tools.process, orchestrator.process);
  const url = (path: string) => `http://tools.${ns}.svc:${tools.inboundPort}${path}`;
  const out = orchestrator.outboundPort!;

  // MCP: search passes to the app.
  const search = await call(out, url('/mcp'), rpc(1, 'tools/call', { name: 'search', arguments: { q: 'x' } }));
  assert.equal(search.status, 200, search.text);
  assert.deepEqual(JSON.parse(search.text), { jsonrpc: '2.0', id: 1, result: { handled: 'tools/call' } });

  // delete_all, and a Cyrillic look-alike of search, are refused by the tools proxy; the app never sees them.
  for (const [id, name] of [[2, 'delete_all'], [3, '\u0455earch']] as const) {
    const refused = await call(out, url('/mcp'), rpc(id, 'tools/call', { name }));
    assert.equal(refused.status, 200);
    const { error } = JSON.parse(refused.text);
    assert.equal(JSON.parse(refused.text).id, id);
    assert.equal(error.code, -32003);
    assert.match(error.message, new RegExp(`tools/call of tool ${JSON.stringify(JSON.stringify(name)).slice(1, -1)} refused for ${orchestratorID}: allow\\[0\\]: agent ${ns}/orchestrator does not allow`));
  }
  assert.ok(!received.some((r) => r.body.includes('delete_all') || r.body.includes('\u0455earch')), 'refused calls never reach the app');

  // A batch with one refused call is refused whole.
  const before = received.length;
  const batch = await call(out, url('/mcp'), [rpc(4, 'tools/call', { name: 'search' }), rpc(5, 'tools/call', { name: 'delete_all' })]);
  assert.deepEqual(JSON.parse(batch.text).map((e: { id: number; error: { code: number } }) => [e.id, e.error.code]), [[4, -32003], [5, -32003]]);
  assert.equal(received.length, before);

  // tools/list: the app lists three tools, the orchestrator sees one.
  const list = await call(out, url('/mcp'), rpc(6, 'tools/list'));
  assert.deepEqual(JSON.parse(list.text).result.tools.map((t: { name: string }) => t.name), ['search']);

  // A2A: message/send passes, tasks/cancel is refused.
  const send = await call(out, url('/a2a'), rpc(7, 'message/send', { message: { role: 'user', parts: [{ kind: 'text', text: 'plan' }] } }));
  assert.deepEqual(JSON.parse(send.text).result, { handled: 'message/send' });
  const cancel = JSON.parse((await call(out, url('/a2a'), rpc(8, 'tasks/cancel', { id: 't1' }))).text);
  assert.equal(cancel.error.code, -32003);
  assert.match(cancel.error.message, new RegExp(`allow\\[1\\]: agent ${ns}/orchestrator does not allow the A2A method "tasks/cancel"`));

  // Malformed JSON-RPC on an MCP route: refused, not passed on.
  const malformed = await call(out, url('/mcp'), 'tools/call search');
  assert.equal(malformed.status, 400);
  assert.equal(JSON.parse(malformed.text).error.code, -32700);

  // Paths: /mcpx passes the orchestrator's egress glob but no rule of tools covers it (403 from the tools proxy);
  // /admin is refused by the orchestrator's own proxy before any connection.
  const mcpx = await call(out, url('/mcpx'), rpc(9, 'ping'));
  assert.equal(mcpx.status, 403);
  assert.match(mcpx.text, new RegExp(`POST /mcpx is not allowed by allow\\[0\\]: agent ${ns}/orchestrator \\(paths /mcp\\); allow\\[1\\]: agent ${ns}/orchestrator \\(methods POST; paths /a2a\\)`));
  const admin = await call(out, url('/admin'), rpc(10, 'ping'));
  assert.equal(admin.status, 403);
  assert.match(admin.text, new RegExp(`POST /admin refused for spiffe://cluster.local/ns/${ns}/agent/tools: POST /admin is not allowed by egress\\.allow\\[0\\]: agent ${ns}/tools \\(paths /mcp\\*, /a2a\\)`));
  assert.ok(!received.some((r) => r.path === '/mcpx' || r.path === '/admin'));
});
