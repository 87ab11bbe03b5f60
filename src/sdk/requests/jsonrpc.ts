// JSON-RPC 2.0 messages as the policy sees them: a body is one message or
// a batch (an array); each is a call (a request with an id, or a
// notification without one) or a response the client sends back (to a
// server's request, e.g. MCP sampling).

export type RpcID = string | number | null;

export type RpcMessage =
  | { kind: 'call'; method: string; id?: RpcID; params: unknown }
  | { kind: 'response'; id: RpcID };

export interface RpcMessages {
  batch: boolean;
  messages: RpcMessage[];
}

export type RpcBody = RpcMessages | { invalid: string; reason: 'NotJsonRpc' | 'BatchTooLarge' };

/** The JSON-RPC error codes the policy answers with. -32003: the policy refused the call (a server-defined code, as MCP gateways use). */
export const RPC_ERROR = { parse: -32700, invalidRequest: -32600, internal: -32603, refused: -32003 } as const;

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isID = (v: unknown): v is RpcID => typeof v === 'string' || typeof v === 'number' || v === null;

function message(v: unknown, where: string): RpcMessage | string {
  if (!isObject(v)) return `${where} is not a JSON-RPC object`;
  if (v.jsonrpc !== '2.0') return `${where} lacks "jsonrpc": "2.0"`;
  if (Object.hasOwn(v, 'id') && !isID(v.id)) return `${where} has an id that is not a string, a number or null`;
  if (typeof v.method === 'string') {
    if (v.params !== undefined && typeof v.params !== 'object') return `${where} has params that are neither an object nor an array`;
    return { kind: 'call', method: v.method, ...(Object.hasOwn(v, 'id') ? { id: v.id as RpcID } : {}), params: v.params };
  }
  if (v.method !== undefined) return `${where} has a method that is not a string`;
  if (Object.hasOwn(v, 'id') && (Object.hasOwn(v, 'result') || Object.hasOwn(v, 'error'))) return { kind: 'response', id: v.id as RpcID };
  return `${where} is neither a request nor a response`;
}

/** The messages of a parsed body, or why it is not JSON-RPC 2.0; a batch of more than `maxBatch` is refused whole. */
export function rpcBody(value: unknown, maxBatch: number): RpcBody {
  const batch = Array.isArray(value);
  const items = batch ? (value as unknown[]) : [value];
  if (batch && items.length === 0) return { invalid: 'an empty batch', reason: 'NotJsonRpc' };
  if (items.length > maxBatch) return { invalid: `a batch of ${items.length} calls (at most ${maxBatch})`, reason: 'BatchTooLarge' };
  const messages: RpcMessage[] = [];
  for (const [i, item] of items.entries()) {
    const m = message(item, batch ? `batch item ${i}` : 'the body');
    if (typeof m === 'string') return { invalid: m, reason: 'NotJsonRpc' };
    messages.push(m);
  }
  return { batch, messages };
}

/**
 * A key for matching an answer to its call. 1 and "1" share one: some clients
 * (the MCP TypeScript SDK among them) match answers by Number(id), so an answer
 * with "7" to a call 7 is filtered as that call's answer, never let through.
 */
export const idKey = (id: RpcID | undefined) => String(id);
