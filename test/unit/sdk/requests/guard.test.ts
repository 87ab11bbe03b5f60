// guardRequest over real HTTP on 127.0.0.1: a plain node:http server whose
// handler runs the guard with a fixed peer (admission is the TLS layer's
// job, tested elsewhere), behind it an app that answers JSON-RPC itself.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Narrowing } from '../../../../src/api/documents.ts';
import type { AuditRecord } from '../../../../src/audit/record.ts';
import { guardRequest, type RequestPolicyOptions } from '../../../../src/sdk/requests/guard.ts';

const peer = 'spiffe://cluster.local/ns/agents/agent/orchestrator';
const rule: Narrowing = { index: 1, rule: 'allow[1]: agent agents/orchestrator', http: { paths: ['/mcp'] }, mcp: { tools: ['search'] } };
const records: AuditRecord[] = [];
const seen: { method?: string; body: string }[] = [];
const opts: RequestPolicyOptions = { maxBodyBytes: 64 * 1024, maxBatch: 10, onDecision: (r) => records.push(r) };

const toolList = (id: unknown) => ({ jsonrpc: '2.0', id, result: { tools: [{ name: 'search' }, { name: 'delete_all' }] } });

/** The app: echoes calls as results; answers tools/list as SSE when the client accepts only that. */
function app(req: http.IncomingMessage, res: http.ServerResponse): void {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (c: string) => (body += c)).on('end', () => {
    seen.push({ method: req.method, body });
    if (req.method === 'GET') {
      // A resumed stream replaying an earlier tools/list answer.
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`id: 5\ndata: ${JSON.stringify(toolList(99))}\n\n`);
      return;
    }
    const msg = body ? JSON.parse(body) : undefined;
    if (msg?.method === 'tools/list' && req.headers.accept === 'text/event-stream') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: message\ndata: ');
      setTimeout(() => res.end(`${JSON.stringify(toolList(msg.id))}\n\n`), 20);
      return;
    }
    const answer = Array.isArray(msg) ? msg.map((m) => (m.method === 'tools/list' ? toolList(m.id) : { jsonrpc: '2.0', id: m.id, result: {} })) : msg?.method === 'tools/list' ? toolList(msg.id) : { jsonrpc: '2.0', id: msg?.id ?? null, result: { echoed: msg?.method ?? null } };
    const text = JSON.stringify(answer);
    // The three-argument form with no status message, as a relay may call it; its Content-Length no longer fits a filtered answer.
    res.writeHead(200, undefined as unknown as string, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  });
}

let server: http.Server;
let port: number;

before(async () => {
  server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    guardRequest({ direction: 'inbound', local: 'spiffe://cluster.local/ns/agents/agent/tools', peer, grants: { unrestricted: false, narrowings: [rule] }, path }, req, res, opts, (allowed) => app(allowed, res));
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  port = (server.address() as AddressInfo).port;
});
after(() => server.close());

async function post(body: string, headers: Record<string, string> = {}, path = '/mcp') {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

const rpc = (id: number, method: string, params?: unknown) => ({ jsonrpc: '2.0', id, method, ...(params ? { params } : {}) });

describe('guardRequest', () => {
  it('an allowed tools/call reaches the app with its body intact; one record', async () => {
    records.length = 0;
    const body = JSON.stringify(rpc(1, 'tools/call', { name: 'search', arguments: { q: 'x'.repeat(2000) } }));
    const r = await post(body);
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.text), { jsonrpc: '2.0', id: 1, result: { echoed: 'tools/call' } });
    assert.equal(seen.at(-1)!.body, body);
    assert.equal(records.length, 1);
    assert.deepEqual({ ...records[0], time: undefined, latencyMs: undefined }, {
      time: undefined, latencyMs: undefined, direction: 'inbound', local: 'spiffe://cluster.local/ns/agents/agent/tools', peer, transport: 'mcp', method: 'POST', path: '/mcp', rpcMethod: 'tools/call', tool: 'search', decision: 'allow', rule: 1,
    });
    assert.ok(!JSON.stringify(records).includes('xxxx'), 'no arguments in the audit record');
  });

  it('a denied tools/call gets -32003 with its id, naming the rule and the tool; the app never sees it', async () => {
    records.length = 0;
    const before = seen.length;
    const r = await post(JSON.stringify(rpc(5, 'tools/call', { name: 'delete_all' })));
    assert.equal(r.status, 200);
    const answer = JSON.parse(r.text);
    assert.equal(answer.id, 5);
    assert.equal(answer.error.code, -32003);
    assert.match(answer.error.message, /tools\/call of tool "delete_all" refused for spiffe:\/\/cluster\.local\/ns\/agents\/agent\/orchestrator: allow\[1\]: agent agents\/orchestrator does not allow/);
    assert.equal(seen.length, before);
    assert.deepEqual(records.map((x) => [x.decision, x.tool, x.reason, x.rule]), [['deny', 'delete_all', 'ToolNotAllowed', null]]);
  });

  it('a params.name given twice is refused as a parse error, not read either way', async () => {
    const r = await post('{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"search","name":"delete_all"}}');
    assert.equal(r.status, 400);
    assert.equal(JSON.parse(r.text).error.code, -32700);
    assert.match(JSON.parse(r.text).error.message, /the key "name" appears twice/);
  });

  it('a batch mixing allowed and denied calls is refused whole, one error per call, one record per call', async () => {
    records.length = 0;
    const before = seen.length;
    const r = await post(JSON.stringify([rpc(1, 'tools/call', { name: 'search' }), rpc(2, 'tools/call', { name: 'delete_all' }), { jsonrpc: '2.0', method: 'notifications/initialized' }]));
    const answers = JSON.parse(r.text);
    assert.deepEqual(answers.map((a: { id: number; error: { code: number; data: { reason: string } } }) => [a.id, a.error.code, a.error.data.reason]), [[1, -32003, 'BatchRefused'], [2, -32003, 'ToolNotAllowed']]);
    assert.equal(seen.length, before);
    assert.deepEqual(records.map((x) => [x.rpcMethod, x.decision, x.reason]), [['tools/call', 'deny', 'BatchRefused'], ['tools/call', 'deny', 'ToolNotAllowed'], ['notifications/initialized', 'deny', 'BatchRefused']]);
  });

  it('an allowed batch passes, its tools/list answer filtered', async () => {
    const r = await post(JSON.stringify([rpc(1, 'tools/call', { name: 'search' }), rpc(2, 'tools/list')]));
    assert.deepEqual(JSON.parse(r.text), [{ jsonrpc: '2.0', id: 1, result: {} }, { jsonrpc: '2.0', id: 2, result: { tools: [{ name: 'search' }] } }]);
  });

  it('tools/list answered as JSON and as SSE is filtered', async () => {
    const json = await post(JSON.stringify(rpc(3, 'tools/list')));
    assert.deepEqual(JSON.parse(json.text).result.tools, [{ name: 'search' }]);
    const sse = await post(JSON.stringify(rpc(4, 'tools/list')), { accept: 'text/event-stream' });
    assert.equal(sse.type, 'text/event-stream');
    assert.equal(sse.text, `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: 4, result: { tools: [{ name: 'search' }] } })}\n\n`);
  });

  it('hostile and malformed bodies: refused with a JSON-RPC error, never a hang or a 500', async () => {
    const cases: [string, number, number, RegExp][] = [
      ['tools/call with no JSON', 400, -32700, /not valid JSON/],
      [JSON.stringify({ id: 1, method: 'tools/call' }), 400, -32600, /lacks "jsonrpc"/],
      ['['.repeat(60_000), 400, -32700, /nested deeper than 64/],
      [JSON.stringify(Array.from({ length: 11 }, (_, i) => rpc(i, 'ping'))), 400, -32600, /a batch of 11 calls \(at most 10\)/],
      [JSON.stringify(rpc(1, 'tools/call', { name: 'search', arguments: { q: 'x'.repeat(70 * 1024) } })), 413, -32600, /larger than 65536 bytes/],
    ];
    for (const [body, status, code, message] of cases) {
      const r = await post(body);
      assert.equal(r.status, status, body.slice(0, 40));
      assert.equal(JSON.parse(r.text).error.code, code);
      assert.match(JSON.parse(r.text).error.message, message);
    }
    const bytes = await fetch(`http://127.0.0.1:${port}/mcp`, { method: 'POST', body: Buffer.from([0x7b, 0xff, 0x7d]) });
    assert.equal(bytes.status, 400);
  });

  it('a GET stream on an MCP route (no body, so no calls) still has its list answers filtered', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/mcp`, { headers: { accept: 'text/event-stream', 'last-event-id': '4' } });
    assert.equal(await res.text(), `id: 5\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: 99, result: { tools: [{ name: 'search' }] } })}\n\n`);
  });

  it('another path: 403 naming the rule', async () => {
    const r = await post(JSON.stringify(rpc(1, 'ping')), {}, '/admin');
    assert.equal(r.status, 403);
    assert.match(r.text, /POST \/admin refused for .*: POST \/admin is not allowed by allow\[1\]: agent agents\/orchestrator \(paths \/mcp\)/);
  });

  it('a body that arrives in slow chunks is read whole and decided once', async () => {
    const body = JSON.stringify(rpc(9, 'tools/call', { name: 'search' }));
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    socket.setEncoding('utf8').on('data', (c: string) => (answer += c));
    socket.write(`POST /mcp HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n`);
    for (const piece of [body.slice(0, 10), body.slice(10, 31), body.slice(31)]) {
      await new Promise((r) => setTimeout(r, 50));
      socket.write(piece);
    }
    await new Promise((r) => socket.once('close', r));
    assert.match(answer, /^HTTP\/1\.1 200/);
    assert.ok(answer.includes('"echoed":"tools/call"'), answer);
    assert.equal(seen.at(-1)!.body, body);
  });

  it('a refusal sent before the body is read (over the cap, another path) lets the client finish sending: no reset, the answer arrives, the connection serves the next request', async () => {
    // 8 MiB, far more than the sockets buffer: closing the connection at once made the client's write fail
    // (EPIPE, ECONNRESET), and a proxy relaying it answered 502 instead of the refusal.
    const big = Buffer.alloc(8 * 1024 * 1024, 0x20);
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    let failure: Error | undefined;
    socket.setEncoding('utf8').on('data', (c: string) => (answer += c)).on('error', (e) => (failure = e));
    // A body does not end in a newline, so the next answer's status line may follow it on the same line.
    const statuses = () => [...answer.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]);
    const request = (path: string, body: Buffer | string) => `POST ${path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`;
    const answered = (n: number) => new Promise<void>((resolve, reject) => {
      const check = () => (statuses().length >= n ? resolve() : failure ? reject(failure) : socket.once('data', check).once('error', check).once('close', check));
      check();
    });
    for (const path of ['/mcp', '/admin']) {
      socket.write(request(path, big));
      await new Promise<void>((resolve, reject) => socket.write(big, (err) => (err ? reject(err) : resolve())));
    }
    const small = JSON.stringify(rpc(3, 'ping'));
    socket.write(request('/mcp', small) + small);
    await answered(3);
    socket.destroy();
    assert.equal(failure, undefined);
    assert.deepEqual(statuses(), ['413', '403', '200']);
  });

  it('a refused body that stops arriving does not hold the connection: it is cut after the linger', async () => {
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    socket.setEncoding('utf8').on('data', (c: string) => (answer += c)).on('error', () => undefined);
    const closed = new Promise((r) => socket.once('close', r));
    socket.write(`POST /mcp HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${1024 * 1024}\r\n\r\n{"jsonrpc":`);
    // The client stalls here; the server answers at once and closes once the linger (2 s) is over.
    await closed;
    assert.match(answer, /^HTTP\/1\.1 413 /);
  });

  it('a compressed body cannot be read, so it is refused', async () => {
    const r = await post('x', { 'content-encoding': 'gzip' });
    assert.equal(r.status, 415);
  });
});
