// A minimal A2A agent (JSON-RPC 2.0 over HTTP, the protocol's JSONRPC
// transport), for the demo and the tests of method-level policy: the agent
// card at /.well-known/agent-card.json, and message/send, message/stream
// (SSE), tasks/get and tasks/cancel on POST /. No SDK: the surface a proxy
// has to judge is the JSON-RPC method, and this is all of it.
//
// message/send answers a completed Task; with configuration.blocking false the
// Task stays "working" until tasks/cancel, so a cancel can be allowed or
// denied with something to cancel.
//
//   node examples/mcp/a2a-server.ts              PORT (default 8080), HOST (127.0.0.1), A2A_URL (the card's url)
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const AGENT_CARD_PATH = '/.well-known/agent-card.json';

type TaskState = 'working' | 'completed' | 'canceled';
interface Part { kind: 'text'; text: string }
interface Message { kind: 'message'; role: 'user' | 'agent'; messageId: string; parts: Part[]; taskId?: string; contextId?: string }
interface Task { kind: 'task'; id: string; contextId: string; status: { state: TaskState; timestamp: string }; history: Message[]; artifacts: { artifactId: string; parts: Part[] }[] }

// The A2A protocol's error codes (JSON-RPC's own, and -32001/-32002 for tasks).
const PARSE_ERROR = -32700;
const INVALID_REQUEST = -32600;
const METHOD_NOT_FOUND = -32601;
const INVALID_PARAMS = -32602;
const TASK_NOT_FOUND = -32001;
const TASK_NOT_CANCELABLE = -32002;
/** A2A's own and JSON-RPC's limit on what this example reads. */
const MAX_BODY_BYTES = 1 << 20;

class RpcError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

function agentCard(url: string) {
  return {
    protocolVersion: '0.3.0', name: 'planner', description: 'Plans the steps of a task (agent-identity-operator example).',
    url, preferredTransport: 'JSONRPC', version: '1.0.0',
    capabilities: { streaming: true }, defaultInputModes: ['text/plain'], defaultOutputModes: ['text/plain'],
    skills: [{ id: 'plan', name: 'Plan', description: 'Splits a request into steps.', tags: ['planning'] }],
  };
}

const textOf = (m: Message) => m.parts.filter((p) => p.kind === 'text').map((p) => p.text).join(' ');

function userMessage(params: unknown): Message {
  const m = (params as { message?: Message } | undefined)?.message;
  if (!m || m.kind !== 'message' || m.role !== 'user' || typeof m.messageId !== 'string' || !Array.isArray(m.parts)) {
    throw new RpcError(INVALID_PARAMS, 'params.message must be a user Message with a messageId and parts');
  }
  return m;
}

const now = () => new Date().toISOString();

export interface A2AServer {
  server: Server;
  port: number;
  url: string;
  /** Method names that reached the agent, in order: a test proves a denied call never arrived. */
  received: string[];
  close(): Promise<void>;
}

/** `publicUrl`: what the agent card names as the agent's URL (its Service), when not where it listens. */
export async function startA2AServer(opts: { port?: number; host?: string; publicUrl?: string } = {}): Promise<A2AServer> {
  const tasks = new Map<string, Task>();
  const received: string[] = [];

  const plan = (m: Message, blocking: boolean): Task => {
    const id = randomUUID();
    const task: Task = {
      kind: 'task', id, contextId: m.contextId ?? randomUUID(), status: { state: blocking ? 'completed' : 'working', timestamp: now() },
      history: [m], artifacts: blocking ? [{ artifactId: randomUUID(), parts: [{ kind: 'text', text: `plan for "${textOf(m)}": 1. look 2. think 3. act` }] }] : [],
    };
    tasks.set(id, task);
    return task;
  };
  const task = (params: unknown): Task => {
    const id = (params as { id?: unknown } | undefined)?.id;
    if (typeof id !== 'string') throw new RpcError(INVALID_PARAMS, 'params.id must be a task id');
    const t = tasks.get(id);
    if (!t) throw new RpcError(TASK_NOT_FOUND, `task ${id} not found`);
    return t;
  };
  const methods: Record<string, (params: unknown) => unknown> = {
    'message/send': (p) => plan(userMessage(p), (p as { configuration?: { blocking?: boolean } }).configuration?.blocking !== false),
    'tasks/get': (p) => task(p),
    'tasks/cancel': (p) => {
      const t = task(p);
      if (t.status.state !== 'working') throw new RpcError(TASK_NOT_CANCELABLE, `task ${t.id} is ${t.status.state}`);
      t.status = { state: 'canceled', timestamp: now() };
      return t;
    },
  };

  const answer = (res: ServerResponse, body: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  const error = (id: unknown, code: number, message: string) => ({ jsonrpc: '2.0', id: id ?? null, error: { code, message } });

  /** message/stream: the task as it starts, its artifact, and the final status, as SSE events. */
  const stream = (res: ServerResponse, id: unknown, params: unknown) => {
    const t = plan(userMessage(params), true);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const event = (result: unknown) => res.write(`data: ${JSON.stringify({ jsonrpc: '2.0', id, result })}\n\n`);
    event({ ...t, status: { state: 'working', timestamp: t.status.timestamp }, artifacts: [] });
    event({ kind: 'artifact-update', taskId: t.id, contextId: t.contextId, artifact: t.artifacts[0], lastChunk: true });
    event({ kind: 'status-update', taskId: t.id, contextId: t.contextId, status: t.status, final: true });
    res.end();
  };

  const rpc = (res: ServerResponse, text: string) => {
    let msg: { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: unknown };
    try {
      msg = JSON.parse(text);
    } catch {
      return answer(res, error(null, PARSE_ERROR, 'the body is not JSON'));
    }
    if (!msg || typeof msg !== 'object' || Array.isArray(msg) || msg.jsonrpc !== '2.0' || typeof msg.method !== 'string') {
      return answer(res, error(null, INVALID_REQUEST, 'not a JSON-RPC 2.0 request'));
    }
    received.push(msg.method);
    try {
      if (msg.method === 'message/stream') return stream(res, msg.id, msg.params);
      const fn = Object.hasOwn(methods, msg.method) ? methods[msg.method] : undefined;
      if (!fn) return answer(res, error(msg.id, METHOD_NOT_FOUND, `method ${msg.method} not found`));
      return answer(res, { jsonrpc: '2.0', id: msg.id, result: fn(msg.params) });
    } catch (err) {
      if (!(err instanceof RpcError)) throw err;
      return answer(res, error(msg.id, err.code, err.message));
    }
  };

  const host = opts.host ?? '127.0.0.1';
  let url = '';
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method === 'GET' && path === AGENT_CARD_PATH) return answer(res, agentCard(url));
    if (req.method !== 'POST' || path !== '/') return void res.writeHead(404).end();
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY_BYTES) return void chunks.push(c);
      if (!res.headersSent) res.writeHead(413, { connection: 'close' }).end();
      req.destroy();
    });
    req.on('end', () => { if (!res.headersSent) rpc(res, Buffer.concat(chunks).toString('utf8')); });
  });
  await new Promise<void>((r) => server.listen(opts.port ?? 0, host, r));
  const port = (server.address() as AddressInfo).port;
  url = opts.publicUrl ?? `http://${host}:${port}/`;
  return { server, port, url, received, close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

if (import.meta.main) {
  const s = await startA2AServer({ port: Number(process.env.PORT ?? 8080), host: process.env.HOST ?? '127.0.0.1', publicUrl: process.env.A2A_URL });
  console.log(JSON.stringify({ event: 'listening', port: s.port, url: s.url }));
}
