// The official MCP TypeScript SDK's Client over Streamable HTTP, as an agent
// uses it: straight to the server, or through the identity proxy's outbound
// side, the HTTP forward proxy an injected agent finds in HTTP_PROXY. The
// SDK's transport takes a `fetch`; undici's, with a ProxyAgent, sends plain
// http:// calls in absolute form through the proxy (no CONNECT, which the
// identity proxy refuses). Also a raw JSON-RPC POST, for what the SDK will
// not send: batches, malformed bodies, a name given twice.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { fetch as undiciFetch, ProxyAgent, type RequestInit as UndiciRequestInit } from 'undici';

export interface McpSession {
  client: Client;
  /** The content type of every answer to a POST, in order: `application/json` or `text/event-stream`. */
  answers: string[];
  listTools(): Promise<string[]>;
  callTool(name: string, args?: Record<string, unknown>): Promise<CallToolResult>;
  close(): Promise<void>;
}

/** A fetch that goes through `proxy` (an http:// forward proxy) when one is given, and notes each answer's content type. */
function proxiedFetch(proxy: string | undefined, answers: string[]) {
  const dispatcher = proxy ? new ProxyAgent({ uri: proxy }) : undefined;
  const f = async (url: string | URL, init?: RequestInit): Promise<Response> => {
    const res = await undiciFetch(url, { ...(init as UndiciRequestInit), dispatcher });
    if (init?.method === 'POST') answers.push((res.headers.get('content-type') ?? '').split(';')[0]!);
    return res as unknown as Response;
  };
  return { fetch: f, close: () => dispatcher?.close() };
}

/** Connects (initialize, then notifications/initialized) as the SDK's Client does. */
export async function connectMcp(url: string, opts: { proxy?: string; name?: string } = {}): Promise<McpSession> {
  const answers: string[] = [];
  const via = proxiedFetch(opts.proxy, answers);
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
export async function postJsonRpc(url: string, body: string, opts: { proxy?: string } = {}): Promise<RawAnswer> {
  const via = proxiedFetch(opts.proxy, []);
  try {
    const res = await via.fetch(url, {
      method: 'POST', body,
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
