// `agent-identity audit`'s views, pure: audit records folded into who called
// what (caller → agent → tool or method, with calls and denials), and that
// fold drawn as a table, a Graphviz DOT graph or a Mermaid flowchart. Names
// in the records are the peers' choice, so every renderer escapes them.
import type { AuditRecord } from '../audit/record.ts';
import { table } from './table.ts';

/** One caller → agent → target, as one side's proxy decided it. */
export interface Call {
  caller: string;
  agent: string;
  /** `tools/call search`, `message/send`, `GET /healthz`, or `(connection)` for a peer refused before any request. */
  target: string;
  /** Whose proxy decided: the agent's (inbound) or the caller's (egress). Both may log one call, so they are not summed. */
  decidedBy: 'inbound' | 'egress';
  calls: number;
  denied: number;
}

/** What a record is a call to: the JSON-RPC method and the name it carries, or the HTTP method and path. */
export function targetOf(r: AuditRecord): string {
  const name = r.tool ?? r.prompt ?? r.resource;
  if (r.rpcMethod) return name === undefined ? r.rpcMethod : `${r.rpcMethod} ${name}`;
  if (r.transport === 'tls') return '(connection)';
  return `${r.method} ${r.path}`;
}

/** Records folded into calls, sorted by caller, agent, target. An inbound record's peer is the caller; an egress record's peer is the agent called. */
export function foldCalls(records: Iterable<AuditRecord>): Call[] {
  const calls = new Map<string, Call>();
  for (const r of records) {
    const [caller, agent] = r.direction === 'inbound' ? [r.peer, r.local] : [r.local, r.peer];
    const c = { caller, agent, target: targetOf(r), decidedBy: r.direction };
    const key = JSON.stringify([c.caller, c.agent, c.target, c.decidedBy]);
    const have = calls.get(key) ?? calls.set(key, { ...c, calls: 0, denied: 0 }).get(key)!;
    have.calls++;
    if (r.decision === 'deny') have.denied++;
  }
  const order = (a: Call, b: Call) => a.caller.localeCompare(b.caller) || a.agent.localeCompare(b.agent) || a.target.localeCompare(b.target) || a.decidedBy.localeCompare(b.decidedBy);
  return [...calls.values()].sort(order);
}

const AGENT_ID = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/agent\/([^/]+)$/;

/**
 * How an identity is shown: `namespace/name` for the operator's SPIFFE IDs
 * when every ID shown is in one trust domain (the usual cluster), else the
 * full ID, so two trust domains never look alike.
 */
export function displayNames(calls: readonly Call[]): (id: string) => string {
  const ids = new Set(calls.flatMap((c) => [c.caller, c.agent]));
  const domains = new Set([...ids].map((id) => AGENT_ID.exec(id)?.[1] ?? id));
  if (domains.size !== 1) return (id) => id;
  return (id) => {
    const m = AGENT_ID.exec(id);
    return m ? `${m[2]}/${m[3]}` : id;
  };
}

export function callTable(calls: readonly Call[]): string {
  const name = displayNames(calls);
  const egress = calls.some((c) => c.decidedBy === 'egress');
  const rows = calls.map((c) => [name(c.caller), name(c.agent), c.target, ...(egress ? [c.decidedBy] : []), String(c.calls), String(c.denied)]);
  // DECIDED BY only when a caller's proxy decided too: then a call may be counted on both sides.
  return table(['PEER', 'AGENT', 'TOOL/METHOD', ...(egress ? ['DECIDED BY'] : []), 'CALLS', 'DENIED'], rows);
}

/** One line of a graph: allowed and denied calls of a Call are drawn apart, the denied ones marked. */
interface Edge { from: string; to: string; label: string; denied: boolean }

function edges(calls: readonly Call[]): { nodes: string[]; edges: Edge[] } {
  const name = displayNames(calls);
  const out: Edge[] = [];
  const side = (c: Call) => (c.decidedBy === 'egress' ? ', egress' : '');
  for (const c of calls) {
    const from = name(c.caller);
    const to = name(c.agent);
    if (c.calls > c.denied) out.push({ from, to, label: `${c.target} (${c.calls - c.denied}${side(c)})`, denied: false });
    if (c.denied) out.push({ from, to, label: `${c.target} (${c.denied} denied${side(c)})`, denied: true });
  }
  const nodes = [...new Set(out.flatMap((e) => [e.from, e.to]))];
  return { nodes, edges: out };
}

const dotString = (s: string) => `"${s.replace(/[\\"]/g, '\\$&').replace(/[\r\n]/g, ' ')}"`;

/** Graphviz: `dot -Tsvg`. Denied edges red and dashed. */
export function callGraphDot(calls: readonly Call[]): string {
  const g = edges(calls);
  const lines = ['digraph calls {', '  rankdir=LR;', '  node [shape=box, style=rounded];'];
  for (const n of g.nodes) lines.push(`  ${dotString(n)};`);
  for (const e of g.edges) {
    lines.push(`  ${dotString(e.from)} -> ${dotString(e.to)} [label=${dotString(e.label)}${e.denied ? ', color=red, fontcolor=red, style=dashed' : ''}];`);
  }
  return `${lines.join('\n')}\n}\n`;
}

// Mermaid has no string escapes: anything beyond plain characters is written as an entity code (#34;).
const mermaidText = (s: string) => s.replace(/[^\w ./:@*+=,()-]/gu, (ch) => `#${ch.codePointAt(0)};`);

/** Mermaid (GitHub renders it in Markdown): denied edges dashed, and red by linkStyle. */
export function callGraphMermaid(calls: readonly Call[]): string {
  const g = edges(calls);
  const id = new Map(g.nodes.map((n, i) => [n, `n${i}`]));
  const lines = ['flowchart LR'];
  for (const n of g.nodes) lines.push(`  ${id.get(n)}["${mermaidText(n)}"]`);
  const denied: number[] = [];
  g.edges.forEach((e, i) => {
    lines.push(`  ${id.get(e.from)} ${e.denied ? '-.->' : '-->'}|"${mermaidText(e.label)}"| ${id.get(e.to)}`);
    if (e.denied) denied.push(i);
  });
  if (denied.length) lines.push(`  linkStyle ${denied.join(',')} stroke:#d00,color:#d00`);
  return `${lines.join('\n')}\n`;
}
