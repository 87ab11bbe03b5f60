// One authorization decision of the proxy or the SDK middleware, as the audit
// stream records it. Identifiers only: never a body, an argument or a header
// value, so an audit file can be shared with a security review as it is.

/** `tls`: a peer refused at its connection (handshake, deny list, a rule that stops at the connection), before any request. */
export type Transport = 'http' | 'mcp' | 'a2a' | 'tls';

export interface AuditRecord {
  /** RFC 3339 with milliseconds, UTC. */
  time: string;
  /** inbound: a peer called this agent; egress: this agent called a peer. */
  direction: 'inbound' | 'egress';
  /** This agent's SPIFFE ID. */
  local: string;
  /** The verified peer's SPIFFE ID (egress: the destination's); for a refused destination no identity claims, its host. */
  peer: string;
  transport: Transport;
  /** HTTP method and path of the request. */
  method: string;
  path: string;
  /** JSON-RPC method (`tools/call`, `message/send`…) for mcp and a2a. */
  rpcMethod?: string;
  /** The MCP tool, prompt or resource the call names, when it names one. */
  tool?: string;
  prompt?: string;
  resource?: string;
  decision: 'allow' | 'deny';
  /** Index of the allow rule that decided, or null when none matched. */
  rule: number | null;
  /** Why a call was denied, a stable token (for the denied metric's label). */
  reason?: string;
  /** Time spent deciding, in milliseconds (not the upstream's latency). */
  latencyMs: number;
}
