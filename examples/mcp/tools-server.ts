// An MCP tools server built with the official TypeScript SDK
// (@modelcontextprotocol/sdk), for the demo and the tests of tool-level
// policy: `search` (harmless) and `delete_all` (the one a policy keeps from
// an orchestrator). Streamable HTTP on one POST endpoint, /mcp, stateless
// (no session id), so any replica and any proxy in between can answer.
// It answers in JSON (`json: true`, the SDK's enableJsonResponse) or as an
// SSE stream, the two shapes an enforcement point has to read and filter.
//
//   node examples/mcp/tools-server.ts            PORT (default 8080), HOST (127.0.0.1), MCP_RESPONSE=json|sse (sse)
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

export const MCP_PATH = '/mcp';

const DOCUMENTS = ['SPIFFE IDs name workloads', 'MCP tools are called with tools/call', 'A2A agents publish an agent card'];

/** One MCP server per request: the SDK's stateless pattern, nothing shared between callers but the documents. */
function toolsServer(store: { documents: string[] }): McpServer {
  const server = new McpServer({ name: 'agent-identity-example-tools', version: '1.0.0' });
  server.registerTool('search', {
    description: 'Find documents that contain the query (case-insensitive).',
    inputSchema: { query: z.string().max(200) },
  }, ({ query }) => {
    const hits = store.documents.filter((d) => d.toLowerCase().includes(query.toLowerCase()));
    return { content: [{ type: 'text', text: hits.length ? hits.join('\n') : `no document contains "${query}"` }] };
  });
  server.registerTool('delete_all', {
    description: 'Delete every document. Destructive: a policy should allow it to very few callers.',
    annotations: { destructiveHint: true },
  }, () => {
    const n = store.documents.length;
    store.documents = [];
    return { content: [{ type: 'text', text: `deleted ${n} documents` }] };
  });
  return server;
}

export interface ToolsHandler {
  /** A node:http (or node:https, or the SDK's createHttpsServer) request listener serving MCP on /mcp. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** How many documents `delete_all` has left: a test proves a denied call never arrived. */
  documents(): number;
}

/** The MCP endpoint as a request listener, for any server in front of it (the SDK's createHttpsServer in the tests). */
export function toolsHandler(opts: { json: boolean }): ToolsHandler {
  const store = { documents: [...DOCUMENTS] };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (new URL(req.url ?? '/', 'http://x').pathname !== MCP_PATH) return void res.writeHead(404).end();
    // Stateless servers answer POST only; GET (a standalone SSE stream) and DELETE (end a session) need a session.
    if (req.method !== 'POST') return void res.writeHead(405, { allow: 'POST' }).end();
    const server = toolsServer(store);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: opts.json });
    res.on('close', () => { void transport.close(); void server.close(); });
    await server.connect(transport);
    await transport.handleRequest(req, res);
  };
  return {
    documents: () => store.documents.length,
    handle: (req, res) => {
      handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: (err as Error).message }, id: null }));
      });
    },
  };
}

export interface ToolsServer extends Pick<ToolsHandler, 'documents'> {
  server: Server;
  port: number;
  url: string;
  close(): Promise<void>;
}

export async function startToolsServer(opts: { json: boolean; port?: number; host?: string }): Promise<ToolsServer> {
  const tools = toolsHandler(opts);
  const server = createServer(tools.handle);
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((r) => server.listen(opts.port ?? 0, host, r));
  const port = (server.address() as AddressInfo).port;
  return {
    server, port, url: `http://${host}:${port}${MCP_PATH}`,
    documents: tools.documents,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

if (import.meta.main) {
  const mode = process.env.MCP_RESPONSE ?? 'sse';
  if (mode !== 'json' && mode !== 'sse') throw new Error(`MCP_RESPONSE must be json or sse, got "${mode}"`);
  const s = await startToolsServer({ json: mode === 'json', port: Number(process.env.PORT ?? 8080), host: process.env.HOST ?? '127.0.0.1' });
  console.log(JSON.stringify({ event: 'listening', port: s.port, url: s.url, response: mode }));
}
