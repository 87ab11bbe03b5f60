// The example MCP and A2A servers (examples/mcp/) and the MCP test harness
// (test/support/mcp.ts): the official SDK's Client against the official SDK's
// server, in JSON and in SSE answers; then the same Client through the
// identity proxies (outbound forward proxy → mTLS → inbound proxy → server),
// as an agent with HTTP_PROXY reaches a tools server. No Kubernetes.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AGENT_CARD_PATH, startA2AServer, type A2AServer } from '../../examples/mcp/a2a-server.ts';
import { MCP_PATH, startToolsServer, type ToolsServer } from '../../examples/mcp/tools-server.ts';
import { connectMcp, jsonRpcMessages, postJsonRpc } from '../support/mcp.ts';
import { startProxyProcess, type ProxyProcess } from '../support/proxy.ts';
import { fileSet, makeTrustDomain, policyFor, writeMountedDir } from '../support/sdk-pki.ts';

const text = (r: { content: unknown }) => (r.content as { type: string; text: string }[]).map((c) => c.text).join('\n');

for (const json of [true, false]) {
  describe(`MCP tools server answering ${json ? 'JSON' : 'SSE'}, the SDK's Client`, () => {
    let tools: ToolsServer;
    before(async () => { tools = await startToolsServer({ json }); });
    after(async () => { await tools.close(); });

    it('lists search and delete_all, calls search, and each answer came in the chosen shape', async () => {
      const mcp = await connectMcp(tools.url);
      try {
        assert.deepEqual(await mcp.listTools(), ['search', 'delete_all']);
        const r = await mcp.callTool('search', { query: 'spiffe' });
        assert.equal(r.isError, undefined);
        assert.equal(text(r), 'SPIFFE IDs name workloads');
        assert.ok(mcp.answers.length >= 3, `initialize, tools/list, tools/call: ${mcp.answers.join(', ')}`);
        // notifications/initialized is answered 202 with no body (no content type).
        assert.deepEqual(new Set(mcp.answers.filter(Boolean)), new Set([json ? 'application/json' : 'text/event-stream']));
      } finally {
        await mcp.close();
      }
    });

    it('a raw batch and a malformed body get JSON-RPC answers, read in either shape', async () => {
      const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
      const one = await postJsonRpc(tools.url, JSON.stringify(init));
      assert.equal(one.status, 200);
      assert.equal(one.contentType, json ? 'application/json' : 'text/event-stream');
      assert.equal((jsonRpcMessages(one)[0] as { id: number }).id, 1);
      const call = (id: number, query: string) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'search', arguments: { query } } });
      const batch = await postJsonRpc(tools.url, JSON.stringify([call(2, 'mcp'), call(3, 'a2a')]));
      assert.equal(batch.status, 200, batch.text);
      const answers = jsonRpcMessages(batch) as { id: number; result: { content: { text: string }[] } }[];
      assert.deepEqual(answers.map((a) => [a.id, a.result.content[0]!.text]).sort(), [[2, 'MCP tools are called with tools/call'], [3, 'A2A agents publish an agent card']]);
      const bad = await postJsonRpc(tools.url, '{"jsonrpc":"2.0",');
      assert.equal(bad.status, 400);
      assert.equal((JSON.parse(bad.text) as { error: { code: number } }).error.code, -32700);
    });

    // Last: it empties the documents the other tests search.
    it('delete_all does what it says (which is why a policy should keep it from most callers)', async () => {
      const mcp = await connectMcp(tools.url);
      try {
        assert.equal(text(await mcp.callTool('delete_all')), 'deleted 3 documents');
        assert.equal(tools.documents(), 0);
      } finally {
        await mcp.close();
      }
    });
  });
}

describe('A2A agent', () => {
  let a2a: A2AServer;
  before(async () => { a2a = await startA2AServer(); });
  after(async () => { await a2a.close(); });

  const call = async (method: string, params: unknown, id = 1) => {
    const res = await fetch(a2a.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id, method, params }) });
    return { contentType: res.headers.get('content-type'), body: await res.text() };
  };
  const message = (text: string) => ({ message: { kind: 'message', role: 'user', messageId: 'm1', parts: [{ kind: 'text', text }] } });

  it('publishes its agent card', async () => {
    const card = await (await fetch(new URL(AGENT_CARD_PATH, a2a.url))).json() as { name: string; url: string; preferredTransport: string; capabilities: { streaming: boolean } };
    assert.equal(card.name, 'planner');
    assert.equal(card.url, a2a.url);
    assert.equal(card.preferredTransport, 'JSONRPC');
    assert.equal(card.capabilities.streaming, true);
  });

  it('message/send completes a task; tasks/get finds it; a completed task cannot be canceled (-32002)', async () => {
    const task = JSON.parse((await call('message/send', message('ship it'))).body).result as { id: string; status: { state: string }; artifacts: { parts: { text: string }[] }[] };
    assert.equal(task.status.state, 'completed');
    assert.match(task.artifacts[0]!.parts[0]!.text, /plan for "ship it"/);
    assert.equal(JSON.parse((await call('tasks/get', { id: task.id })).body).result.id, task.id);
    assert.equal(JSON.parse((await call('tasks/cancel', { id: task.id })).body).error.code, -32002);
  });

  it('a non-blocking task is working until tasks/cancel cancels it', async () => {
    const task = JSON.parse((await call('message/send', { ...message('later'), configuration: { blocking: false } })).body).result as { id: string; status: { state: string } };
    assert.equal(task.status.state, 'working');
    assert.equal(JSON.parse((await call('tasks/cancel', { id: task.id })).body).result.status.state, 'canceled');
  });

  it('message/stream answers SSE events ending in a final status', async () => {
    const r = await call('message/stream', message('stream'), 7);
    assert.equal(r.contentType, 'text/event-stream');
    const events = jsonRpcMessages({ status: 200, contentType: 'text/event-stream', text: r.body }) as { id: number; result: { kind: string; final?: boolean } }[];
    assert.deepEqual(events.map((e) => [e.id, e.result.kind]), [[7, 'task'], [7, 'artifact-update'], [7, 'status-update']]);
    assert.equal(events[2]!.result.final, true);
  });

  it('JSON-RPC errors: unknown method, unknown task, bad params, not JSON', async () => {
    assert.equal(JSON.parse((await call('tasks/resubscribe', {})).body).error.code, -32601);
    assert.equal(JSON.parse((await call('tasks/get', { id: 'nope' })).body).error.code, -32001);
    assert.equal(JSON.parse((await call('message/send', {})).body).error.code, -32602);
    const res = await fetch(a2a.url, { method: 'POST', body: 'not json' });
    assert.equal((await res.json() as { error: { code: number } }).error.code, -32700);
  });
});

describe('the MCP harness through the identity proxies', () => {
  const HOST = 'tools.agents.svc';
  let base: string;
  let tools: ToolsServer;
  let inbound: ProxyProcess;
  let outbound: ProxyProcess;

  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'mcp-proxy-'));
    const td = await makeTrustDomain();
    const [orchestratorID, toolsID] = await Promise.all([td.issue('orchestrator'), td.issue('tools')]);
    await writeMountedDir(join(base, 'tools'), fileSet(toolsID, td.bundlePem, policyFor(toolsID)));
    await writeMountedDir(join(base, 'orchestrator'), fileSet(orchestratorID, td.bundlePem, {
      ...policyFor(orchestratorID), egress: { mode: 'TrustDomain', allow: [], destinations: [{ host: HOST, spiffeID: toolsID.spiffeID }] },
    }));
    tools = await startToolsServer({ json: false });
    inbound = await startProxyProcess(['--identity-dir', join(base, 'tools'), '--inbound-port', '0', '--inbound-address', '127.0.0.1', '--app-port', String(tools.port)]);
    outbound = await startProxyProcess(['--identity-dir', join(base, 'orchestrator'), '--outbound-port', '0', '--resolve', `${HOST}=127.0.0.1`]);
  });
  after(async () => {
    await outbound?.process.stop();
    await inbound?.process.stop();
    await tools?.close();
    await rm(base, { recursive: true, force: true });
  });

  it('the SDK\'s Client lists and calls tools over SSE through HTTP_PROXY, mTLS and the inbound proxy', async () => {
    const mcp = await connectMcp(`http://${HOST}:${inbound.inboundPort}${MCP_PATH}`, { proxy: `http://127.0.0.1:${outbound.outboundPort}` });
    try {
      assert.deepEqual(await mcp.listTools(), ['search', 'delete_all']);
      assert.equal(text(await mcp.callTool('search', { query: 'agent card' })), 'A2A agents publish an agent card');
      assert.ok(mcp.answers.includes('text/event-stream'));
    } finally {
      await mcp.close();
    }
  });

  it('without the proxy the name does not even resolve: the call really went through it', async () => {
    await assert.rejects(connectMcp(`http://${HOST}:${inbound.inboundPort}${MCP_PATH}`), /fetch failed|ENOTFOUND|EAI_AGAIN/);
  });
});
