// Tool-level policy end to end with the official MCP SDK on both sides, on
// what the operator really writes: AgentIdentities whose rules narrow to MCP
// tools and A2A methods, created in a real API server, their policy.json
// projected as the kubelet does. Two paths:
//   - through the identity proxies (processes): the SDK's Client → the
//     orchestrator's outbound proxy (HTTP_PROXY) → mTLS → the tools server's
//     inbound proxy → examples/mcp/tools-server.ts (the SDK's McpServer),
//     answering JSON and SSE; A2A to examples/mcp/a2a-server.ts the same way;
//     raw JSON-RPC for what the SDK will not send (batches, malformed and
//     hostile bodies);
//   - through the SDK's createHttpsServer in front of the same MCP handler,
//     called over mTLS by the SDK's Client with the orchestrator's identity.
// Then the audit lines both wrote, and `agent-identity audit` reading them.
// (The parser's edge cases are unit tests; here: the documented answer comes
// back through the whole chain, and nothing hangs or answers 500.)
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { Agent } from 'undici';
import { startA2AServer, type A2AServer } from '../../examples/mcp/a2a-server.ts';
import { MCP_PATH, startToolsServer, toolsHandler, type ToolsServer } from '../../examples/mcp/tools-server.ts';
import type { PolicyDocument } from '../../src/api/documents.ts';
import { parseAuditLine } from '../../src/audit/line.ts';
import type { AuditRecord } from '../../src/audit/record.ts';
import type { Operator } from '../../src/operator.ts';
import { createHttpsServer, loadIdentity, openAuditLog, tlsConnectOptions, type Identity } from '../../src/sdk/index.ts';
import { runCli } from '../support/cli.ts';
import type { TestEnv } from '../support/env.ts';
import { mountIdentity, type Mount } from '../support/kubelet.ts';
import { connectMcp, jsonRpcMessages, postJsonRpc, type McpSession, type RawAnswer, type Via } from '../support/mcp.ts';
import { api, isReady } from '../support/objects.ts';
import { eventually } from '../support/operator.ts';
import { startProxyProcess, type ProxyProcess } from '../support/proxy.ts';
import { setUp, tearDown } from '../support/suite.ts';

let env: TestEnv;
let op: Operator;
let a: ReturnType<typeof api>;
let ns: string;
let base: string;
const mounts: Mount[] = [];
const proxies: Record<string, ProxyProcess> = {};
let servers: { json: ToolsServer; sse: ToolsServer; a2a: A2AServer };
const closers: Array<() => unknown> = [];

/** A search argument: it must reach the tools server and never an audit line. */
const NEEDLE = 'needle-arg-7f3a9c';
/** Below the default 4 MiB, so the over-cap case is cheap to send. */
const RPC_CAP = 256 * 1024;
const agentID = (name: string) => `spiffe://cluster.local/ns/${ns}/agent/${name}`;
const auditFile = (name: string) => join(base, `${name}.audit`);
const host = (name: string) => `${name}.${ns}.svc`;

before(async () => {
  ({ env, op, a } = await setUp({}));
  base = await mkdtemp(join(tmpdir(), 'mcp-policy-'));
  ns = await env.namespace('mcp-policy');
  const mcpRule = { agent: { name: 'orchestrator' }, http: { paths: [MCP_PATH] }, mcp: { tools: ['search'] } };
  // tools sits behind the proxies; librarian serves the same MCP handler with the SDK's createHttpsServer.
  await a.createIdentity(ns, 'tools', { policy: { allow: [mcpRule] } });
  await a.createIdentity(ns, 'librarian', { policy: { allow: [mcpRule] } });
  await a.createIdentity(ns, 'planner', { policy: { allow: [
    { agent: { name: 'orchestrator' }, http: { methods: ['POST'], paths: ['/'] }, a2a: { methods: ['message/send', 'tasks/get'] } },
  ] } });
  await a.createIdentity(ns, 'orchestrator', { policy: { allow: [], egress: { allow: [{ agent: { name: 'tools' } }, { agent: { name: 'planner' } }] } } });
  const names = ['tools', 'librarian', 'planner', 'orchestrator'];
  for (const name of names) await eventually(async () => isReady(await a.getIdentity(ns, name)), { what: `${name} Ready` });
  // The policy.json each proxy reads, as the kubelet projected it (wherever the operator publishes it).
  const mounted: Record<string, Mount> = {};
  for (const name of names) mounts.push((mounted[name] = await mountIdentity(env.kc, ns, name, join(base, name), 200)));
  const policy = async (name: string) => {
    await mounted[name]!.synced();
    return JSON.parse(await readFile(join(base, name, 'policy.json'), 'utf8')) as PolicyDocument;
  };
  for (const name of ['tools', 'librarian', 'planner']) {
    await eventually(async () => (await policy(name)).allow.some((p) => p.spiffeID === agentID('orchestrator') && p.rules !== undefined), { what: `${name} policy.json narrows the orchestrator` });
  }
  await eventually(async () => {
    const hosts = (await policy('orchestrator')).egress?.destinations.map((d) => d.host) ?? [];
    return hosts.includes(host('tools')) && hosts.includes(host('planner'));
  }, { what: 'orchestrator policy.json maps tools and planner' });

  servers = { json: await startToolsServer({ json: true }), sse: await startToolsServer({ json: false }), a2a: await startA2AServer() };
  const inbound = async (name: string, identity: string, appPort: number) => {
    proxies[name] = await startProxyProcess(['--identity-dir', join(base, identity), '--inbound-port', '0', '--inbound-address', '127.0.0.1',
      '--app-port', String(appPort), '--audit-log', auditFile(name), '--max-rpc-body-bytes', String(RPC_CAP)]);
  };
  await inbound('tools-json', 'tools', servers.json.port);
  await inbound('tools-sse', 'tools', servers.sse.port);
  await inbound('planner', 'planner', servers.a2a.port);
  proxies.orchestrator = await startProxyProcess(['--identity-dir', join(base, 'orchestrator'), '--outbound-port', '0', '--audit-log', auditFile('orchestrator'),
    '--resolve', `${host('tools')}=127.0.0.1`, '--resolve', `${host('planner')}=127.0.0.1`]);
});

after(async () => {
  for (const m of mounts) m.stop();
  await Promise.all(Object.values(proxies).map((p) => p.process.stop()));
  for (const c of closers) await c();
  await Promise.all(Object.values(servers ?? {}).map((s) => s.close()));
  await tearDown({ env, op });
  await rm(base, { recursive: true, force: true });
});

const viaProxy = (): Via => ({ proxy: `http://127.0.0.1:${proxies.orchestrator!.outboundPort}` });
const toolsURL = (shape: 'json' | 'sse') => `http://${host('tools')}:${proxies[`tools-${shape}`]!.inboundPort}${MCP_PATH}`;
const text = (r: { content: unknown }) => (r.content as { text: string }[]).map((c) => c.text).join('\n');
const call = (id: number, name: string, args: Record<string, unknown> = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
type RpcAnswer = { id: number | null; result?: { content?: { text: string }[]; tools?: { name: string }[] }; error?: { code: number; message: string; data?: { reason: string } } };
const messages = (r: RawAnswer) => (jsonRpcMessages(r) as RpcAnswer[]).sort((x, y) => Number(x.id) - Number(y.id));

/** The refusal the SDK's Client surfaces: an McpError with -32003 naming the call, the caller and the rule. */
async function assertRefused(attempt: Promise<unknown>, tool: string, caller = agentID('orchestrator')) {
  const err = await attempt.then(() => assert.fail(`tools/call ${tool} was answered`), (e: unknown) => e);
  assert.ok(err instanceof McpError, `an McpError, got ${String(err)}`);
  assert.equal(err.code, -32003);
  const quoted = JSON.stringify(tool).replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
  assert.match(err.message, new RegExp(`tools/call of tool ${quoted} refused for ${caller}: allow\\[0\\]: agent ${ns}/orchestrator does not allow`));
}

/** What a caller held to `mcp: { tools: [search] }` sees, whichever enforcement point stands in front of the server. */
async function assertSearchOnly(mcp: McpSession, documents: () => number, shape: 'json' | 'sse') {
  assert.deepEqual(await mcp.listTools(), ['search'], 'tools/list shows only the allowed tool');
  assert.equal(text(await mcp.callTool('search', { query: 'workloads' })), 'SPIFFE IDs name workloads');
  assert.match(text(await mcp.callTool('search', { query: NEEDLE })), new RegExp(NEEDLE));
  await assertRefused(mcp.callTool('delete_all'), 'delete_all');
  // A Cyrillic ѕ: the look-alike of search is another name, refused.
  await assertRefused(mcp.callTool('\u0455earch', { query: 'x' }), '\u0455earch');
  assert.equal(documents(), 3, 'delete_all never reached the server');
  // The server's answers come in the chosen shape; the two refusals are the enforcement point's own JSON, which
  // Streamable HTTP allows whatever the client accepts. (notifications/initialized: 202, no body.)
  const answered = mcp.answers.filter(Boolean);
  assert.deepEqual(answered.slice(-2), ['application/json', 'application/json']);
  assert.deepEqual(new Set(answered.slice(0, -2)), new Set([shape === 'json' ? 'application/json' : 'text/event-stream']));
}

/** Raw batches: two allowed calls pass; one refused call refuses the whole batch; a list in a batch is filtered. */
async function assertBatches(url: string, via: Via, documents: () => number) {
  const both = await postJsonRpc(url, JSON.stringify([call(1, 'search', { query: 'tools/call' }), call(2, 'search', { query: 'agent card' })]), via);
  assert.equal(both.status, 200, both.text);
  assert.deepEqual(messages(both).map((m) => m.result?.content?.[0]?.text), ['MCP tools are called with tools/call', 'A2A agents publish an agent card']);
  const mixed = await postJsonRpc(url, JSON.stringify([call(3, 'search', { query: 'x' }), call(4, 'delete_all')]), via);
  assert.equal(mixed.status, 200);
  assert.equal(mixed.contentType, 'application/json', 'the refusal comes from the enforcement point, not the server');
  assert.deepEqual(messages(mixed).map((m) => [m.id, m.error?.code, m.error?.data?.reason]), [[3, -32003, 'BatchRefused'], [4, -32003, 'ToolNotAllowed']]);
  const listed = await postJsonRpc(url, JSON.stringify([{ jsonrpc: '2.0', id: 5, method: 'tools/list' }, call(6, 'search', { query: 'spiffe' })]), via);
  assert.equal(listed.status, 200, listed.text);
  const [list, search] = messages(listed);
  assert.deepEqual(list!.result!.tools!.map((t) => t.name), ['search']);
  assert.equal(search!.result!.content![0]!.text, 'SPIFFE IDs name workloads');
  assert.equal(documents(), 3);
}

for (const shape of ['json', 'sse'] as const) {
  describe(`through the identity proxies, the tools server answering ${shape.toUpperCase()}`, () => {
    it('the SDK\'s Client: tools/list shows only search, search is answered, delete_all and a look-alike get McpError -32003 naming the rule', async () => {
      const mcp = await connectMcp(toolsURL(shape), viaProxy());
      try {
        await assertSearchOnly(mcp, servers[shape].documents, shape);
      } finally {
        await mcp.close();
      }
    });

    it('raw batches: allowed calls pass together, a batch with delete_all is refused whole, a tools/list in a batch is filtered', async () => {
      await assertBatches(toolsURL(shape), viaProxy(), servers[shape].documents);
    });
  });
}

describe('A2A through the identity proxies', () => {
  const a2a = (id: number, method: string, params: unknown) => postJsonRpc(`http://${host('planner')}:${proxies.planner!.inboundPort}/`, JSON.stringify({ jsonrpc: '2.0', id, method, params }), viaProxy());
  const message = (text: string) => ({ message: { kind: 'message', role: 'user', messageId: 'm1', parts: [{ kind: 'text', text }] } });

  it('message/send and tasks/get are answered; tasks/cancel gets -32003 naming the rule and never reaches the agent', async () => {
    const sent = JSON.parse((await a2a(1, 'message/send', { ...message('ship it'), configuration: { blocking: false } })).text) as { result: { id: string; status: { state: string } } };
    assert.equal(sent.result.status.state, 'working');
    const cancel = await a2a(2, 'tasks/cancel', { id: sent.result.id });
    assert.equal(cancel.status, 200);
    const { error } = JSON.parse(cancel.text) as RpcAnswer;
    assert.equal(error?.code, -32003);
    assert.equal(error?.data?.reason, 'MethodNotAllowed');
    assert.match(error!.message, new RegExp(`allow\\[0\\]: agent ${ns}/orchestrator does not allow the A2A method "tasks/cancel"`));
    const got = JSON.parse((await a2a(3, 'tasks/get', { id: sent.result.id })).text) as { result: { status: { state: string } } };
    assert.equal(got.result.status.state, 'working', 'the task was not canceled');
    assert.deepEqual(servers.a2a.received, ['message/send', 'tasks/get']);
  });
});

/** A POST through the outbound proxy whose body is written in `pieces`, each after the last was flushed and a pause; answers or fails, never waits forever. */
function slowPost(url: string, pieces: Buffer[], pauseMs: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxies.orchestrator!.outboundPort, method: 'POST', path: url, timeout: 20_000,
      headers: { host: new URL(url).host, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'transfer-encoding': 'chunked' } }, (res) => {
      let out = '';
      res.setEncoding('utf8').on('data', (c: string) => (out += c)).on('end', () => resolve({ status: res.statusCode!, text: out }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer in 20 s'))).on('error', reject);
    const next = (i: number) => {
      if (i === pieces.length) return void req.end();
      req.write(pieces[i], () => setTimeout(() => next(i + 1), pauseMs));
    };
    next(0);
  });
}

describe('malformed and hostile bodies, end to end through both proxies', () => {
  const url = () => toolsURL('json');
  /** Every hostile answer: the documented status and JSON-RPC error, never a 500 and never a hang (postJsonRpc gives up after 20 s). */
  const refused = async (body: string, status: number, code: number, reason: string) => {
    const r = await postJsonRpc(url(), body, viaProxy());
    assert.equal(r.status, status, r.text.slice(0, 300));
    const e = JSON.parse(r.text) as RpcAnswer;
    assert.deepEqual([e.error?.code, e.error?.data?.reason], [code, reason], r.text.slice(0, 300));
  };

  it('not JSON, and JSON that is not JSON-RPC: 400 with -32700 and -32600', async () => {
    await refused('{"jsonrpc":"2.0",', 400, -32700, 'NotJson');
    await refused('tools/call delete_all', 400, -32700, 'NotJson');
    await refused('{"id":1,"method":"tools/call","params":{"name":"search"}}', 400, -32600, 'NotJsonRpc');
    await refused('[]', 400, -32600, 'NotJsonRpc');
  });

  it('params.name given twice: refused (400, -32700 DuplicateKey), so the server never sees a name the policy did not', async () => {
    await refused('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","name":"delete_all"}}', 400, -32700, 'DuplicateKey');
    assert.equal(servers.json.documents(), 3);
  });

  it('a batch of 101 calls, and a body over --max-rpc-body-bytes: -32600 (400 and 413), before the server sees any', async () => {
    await refused(JSON.stringify(Array.from({ length: 101 }, (_, i) => call(i, 'search', { query: 'x' }))), 400, -32600, 'BatchTooLarge');
    const big = JSON.stringify(call(1, 'search', { query: 'x'.repeat(RPC_CAP) }));
    await refused(big, 413, -32600, 'BodyTooLarge');
    // The proxies are still there for the next caller.
    const mcp = await connectMcp(url(), viaProxy());
    try {
      assert.deepEqual(await mcp.listTools(), ['search']);
    } finally {
      await mcp.close();
    }
  });

  it('a nesting bomb (100,000 brackets in the arguments): 400, -32700 TooDeep', async () => {
    const bomb = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{"query":${'['.repeat(100_000)}${']'.repeat(100_000)}}}}`;
    await refused(bomb, 400, -32700, 'TooDeep');
  });

  it('a body split across slow chunks (inside the tool name, inside a UTF-8 character) is read whole and decided as one', async () => {
    const split = (s: string, ...at: number[]) => {
      const b = Buffer.from(s);
      return [0, ...at].map((start, i) => b.subarray(start, at[i] ?? b.length));
    };
    const deny = JSON.stringify(call(41, 'delete_all'));
    const denied = await slowPost(url(), split(deny, deny.indexOf('delete') + 3, deny.indexOf('delete') + 7, deny.length - 2), 150);
    assert.equal(denied.status, 200, denied.text);
    assert.deepEqual([JSON.parse(denied.text).id, JSON.parse(denied.text).error.code], [41, -32003]);
    // "é" is two bytes in UTF-8: the cut between them must not be read as two broken characters.
    const allow = JSON.stringify(call(42, 'search', { query: 'caf\u00e9' }));
    const cut = Buffer.from(allow).indexOf(Buffer.from('\u00e9')) + 1;
    const allowed = await slowPost(url(), split(allow, 10, cut, cut + 4), 150);
    assert.equal(allowed.status, 200, allowed.text);
    assert.equal(JSON.parse(allowed.text).result.content[0].text, 'no document contains "caf\u00e9"');
    assert.equal(servers.json.documents(), 3);
  });
});

describe('the SDK\'s createHttpsServer in front of the MCP handler (no proxy), its decisions in the audit file', () => {
  let orchestrator: Identity;
  let librarian: Identity;
  const sdkAudit = () => auditFile('sdk');
  const log = () => openAuditLog(sdkAudit());
  let audit: ReturnType<typeof log>;

  before(async () => {
    orchestrator = await loadIdentity({ dir: join(base, 'orchestrator'), pollIntervalMs: 200 });
    librarian = await loadIdentity({ dir: join(base, 'librarian'), pollIntervalMs: 200 });
    closers.push(() => orchestrator.close(), () => librarian.close());
    audit = log();
  });

  for (const shape of ['json', 'sse'] as const) {
    it(`answering ${shape.toUpperCase()}: the same filtered list, allowed search, refused delete_all and batches, over mTLS`, async () => {
      const tools = toolsHandler({ json: shape === 'json' });
      const server = createHttpsServer(librarian, { requests: { onDecision: audit.record } }, tools.handle);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      // The orchestrator's client requires the server to be librarian, whatever the address.
      const dispatcher = new Agent({ connect: tlsConnectOptions(orchestrator, { authorize: agentID('librarian') }) });
      try {
        const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}${MCP_PATH}`;
        const mcp = await connectMcp(url, { dispatcher });
        try {
          await assertSearchOnly(mcp, tools.documents, shape);
        } finally {
          await mcp.close();
        }
        await assertBatches(url, { dispatcher }, tools.documents);
      } finally {
        await dispatcher.close();
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      }
    });
  }

  after(async () => { await audit.close(); });
});

describe('the audit trail', () => {
  const read = async (name: string) => {
    const lines = (await readFile(auditFile(name), 'utf8')).split('\n').filter(Boolean);
    const records = lines.map((l) => parseAuditLine(l));
    assert.ok(records.every((r) => r !== undefined), `every line of ${name}.audit is an audit line`);
    return records as AuditRecord[];
  };
  const count = (records: AuditRecord[], want: Partial<AuditRecord>) => records.filter((r) => Object.entries(want).every(([k, v]) => r[k as keyof AuditRecord] === v)).length;

  before(async () => {
    // A refusal before any request policy: librarian is not in the orchestrator's egress.allow.
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: proxies.orchestrator!.outboundPort, method: 'POST', path: `http://${host('librarian')}:8443${MCP_PATH}` }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.end('{}');
    });
    assert.equal(status, 403);
    // SIGTERM writes what the proxies' audit queues hold.
    await Promise.all(Object.values(proxies).map((p) => p.process.stop()));
  });

  it('one line per decision, with caller, tool, decision and rule; never an argument', async () => {
    const orchestrator = agentID('orchestrator');
    for (const name of ['tools-sse', 'sdk']) {
      const records = await read(name);
      // tools-sse saw the Client's and the batch test's calls; sdk the same twice (JSON, SSE).
      const times = name === 'sdk' ? 2 : 1;
      assert.equal(count(records, { rpcMethod: 'tools/call', tool: 'delete_all', decision: 'deny', reason: 'ToolNotAllowed', rule: null }), 2 * times, name);
      assert.equal(count(records, { rpcMethod: 'tools/call', tool: '\u0455earch', decision: 'deny', reason: 'ToolNotAllowed' }), times, name);
      assert.equal(count(records, { rpcMethod: 'tools/call', tool: 'search', decision: 'deny', reason: 'BatchRefused' }), times, name);
      // Client: workloads, NEEDLE; batches: two, then one beside tools/list.
      assert.equal(count(records, { rpcMethod: 'tools/call', tool: 'search', decision: 'allow', rule: 0 }), 5 * times, name);
      assert.equal(count(records, { rpcMethod: 'tools/list', decision: 'allow' }), 2 * times, name);
      assert.ok(records.every((r) => r.peer === orchestrator && r.direction === 'inbound' && r.latencyMs >= 0), name);
    }
    const planner = await read('planner');
    assert.equal(count(planner, { transport: 'a2a', rpcMethod: 'tasks/cancel', decision: 'deny', reason: 'MethodNotAllowed' }), 1);
    assert.equal(count(planner, { transport: 'a2a', rpcMethod: 'message/send', decision: 'allow', rule: 0 }), 1);
    const hostile = await read('tools-json');
    for (const reason of ['DuplicateKey', 'BatchTooLarge', 'BodyTooLarge', 'TooDeep']) assert.equal(count(hostile, { decision: 'deny', reason }), 1, reason);
    // The orchestrator's own proxy decided each call out (egress), by path: it never read the bodies.
    const egress = await read('orchestrator');
    assert.ok(count(egress, { direction: 'egress', transport: 'http', decision: 'allow', peer: agentID('tools') }) > 0);
    // And the call its egress policy refused before any request policy ran, named by the identity that claims the host.
    assert.equal(count(egress, { direction: 'egress', decision: 'deny', reason: 'EgressDenied', peer: agentID('librarian'), method: 'POST', path: MCP_PATH }), 1);
    for (const name of ['tools-json', 'tools-sse', 'planner', 'orchestrator', 'sdk']) {
      const raw = await readFile(auditFile(name), 'utf8');
      assert.ok(!raw.includes(NEEDLE) && !raw.includes('workloads') && !raw.includes('ship it'), `${name}.audit holds no argument`);
    }
  });

  it('agent-identity audit -f prints who called what from the proxies\' and the SDK\'s files, and a graph with the denied edges marked', async () => {
    const all = join(base, 'all.audit');
    await writeFile(all, (await Promise.all(['tools-sse', 'tools-json', 'planner', 'orchestrator', 'sdk'].map((n) => readFile(auditFile(n), 'utf8')))).join(''));
    const table = await runCli(env.kubeconfigPath, 'audit', '-f', all);
    assert.equal(table.code, 0, table.stderr);
    const row = (agent: string, target: string, calls: number, denied: number) =>
      new RegExp(`^${ns}/orchestrator +${ns}/${agent} +${target.replace(/[/]/g, '\\/')} +inbound +${calls} +${denied} *$`, 'm');
    // delete_all: tools-sse 2 (Client, batch), tools-json 3 (Client, batch, slow chunks); librarian 2 per shape.
    assert.match(table.stdout, row('tools', 'tools/call delete_all', 5, 5));
    assert.match(table.stdout, row('librarian', 'tools/call delete_all', 4, 4));
    assert.match(table.stdout, row('planner', 'tasks/cancel', 1, 1));
    assert.match(table.stdout, row('planner', 'message/send', 1, 0));
    assert.match(table.stdout, new RegExp(`^${ns}/orchestrator +${ns}/tools +POST /mcp +egress +\\d+ +0 *$`, 'm'));
    const dot = await runCli(env.kubeconfigPath, 'audit', '-f', all, '-o', 'dot');
    assert.equal(dot.code, 0, dot.stderr);
    assert.ok(dot.stdout.includes(`"${ns}/orchestrator" -> "${ns}/tools" [label="tools/call delete_all (5 denied)", color=red, fontcolor=red, style=dashed];`), dot.stdout);
    assert.ok(dot.stdout.includes(`"${ns}/orchestrator" -> "${ns}/planner" [label="tasks/cancel (1 denied)", color=red, fontcolor=red, style=dashed];`), dot.stdout);
    assert.match(dot.stdout, new RegExp(`"${ns}/orchestrator" -> "${ns}/tools" \\[label="tools/call search \\(\\d+\\)"\\];`));
  });
});
