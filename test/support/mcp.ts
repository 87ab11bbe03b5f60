// The official MCP TypeScript SDK's Client over Streamable HTTP, as an agent
// uses it: straight to the server, or through the identity proxy's outbound
// side, the HTTP forward proxy an injected agent finds in HTTP_PROXY. The
// SDK's transport takes a `fetch`; undici's, with a ProxyAgent, sends plain
// http:// calls in absolute form through the proxy (no CONNECT, which the
// identity proxy refuses). Also a raw JSON-RPC POST, for what the SDK will
// not send: batches, malformed bodies, a name given twice. Or over mTLS with
// the agent's own identity (`dispatcher`: an undici Agent whose connect
// options are the SDK's tlsConnectOptions), as a Node agent calls another.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { type Dispatcher, fetch as undiciFetch, ProxyAgent, type RequestInit as UndiciRequestInit } from 'undici';

/** How calls leave: through `proxy` (an http:// forward proxy), or on `dispatcher` (mTLS); else straight. */
export interface Via {
  proxy?: string;
  dispatcher?: Dispatcher;
}

export interface McpSession {
  client: Client;
  /** The content type of every answer to a POST, in order: `application/json` or `text/event-stream`. */
  answers: string[];
  listTools(): Promise<string[]>;
  callTool(name: string, args?: Record<string, unknown>): Promise<CallToolResult>;
  close(): Promise<void>;
}

/** A fetch that goes as `via` says, and notes each answer's content type. */
function proxiedFetch(via: Via, answers: string[]) {
  const owned = via.proxy ? new ProxyAgent({ uri: via.proxy }) : undefined;
  const dispatcher = owned ?? via.dispatcher;
  const f = async (url: string | URL, init?: RequestInit): Promise<Response> => {
    const res = await undiciFetch(url, { ...(init as UndiciRequestInit), dispatcher });
    if (init?.method === 'POST') answers.push((res.headers.get('content-type') ?? '').split(';')[0]!);
    return res as unknown as Response;
  };
  return { fetch: f, close: () => owned?.close() };
}

/** Connects (initialize, then notifications/initialized) as the SDK's Client does. */
export async function connectMcp(url: string, opts: Via & { name?: string } = {}): Promise<McpSession> {
  const answers: string[] = [];
  const via = proxiedFetch(opts, answers);
  const client = new Client({ name: opts.name ?? 'agent-identity-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), { fetch: via.fetch });
  await client.connect(transport);
  return {
    client, answers,
    listTools: async () => (await client.listTools()).tools.map((t) => t.name),
    callTool: async (name, args = {}) => (await client.callTool({ name, arguments: args })) as CallToolResult,
    close: async () => {
      await client.close();
      await via.close();
    },
  };
}

export interface RawAnswer {
  status: number;
  contentType: string;
  text: string;
}

/** One POST of `body` as is (a batch, a malformed message), with the headers Streamable HTTP requires. */
export async function postJsonRpc(url: string, body: string, opts: Via = {}): Promise<RawAnswer> {
  const via = proxiedFetch(opts, []);
  try {
    const res = await via.fetch(url, {
      // A hung answer fails the test, instead of holding it until the runner's timeout.
      method: 'POST', body, signal: AbortSignal.timeout(20_000),
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' },
    });
    return { status: res.status, contentType: (res.headers.get('content-type') ?? '').split(';')[0]!, text: await res.text() };
  } finally {
    await via.close();
  }
}

/** The JSON-RPC messages in an answer, whether JSON or an SSE stream of `data:` events. */
export function jsonRpcMessages(a: RawAnswer): unknown[] {
  if (a.contentType === 'text/event-stream') {
    return a.text.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => JSON.parse(l.slice(5)));
  }
  const parsed: unknown = JSON.parse(a.text);
  return Array.isArray(parsed) ? parsed : [parsed];
}
