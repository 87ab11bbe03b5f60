// One AuditRecord as one JSON line, and back. The line has the proxy's log
// shape (time, level, msg) so it sits in the same stream as its other lines;
// `msg: "audit"` is what a reader selects on. Pure.
import type { AuditRecord, Transport } from './record.ts';

export const AUDIT_MSG = 'audit';

/**
 * Names a peer chose (a tool, a path) are capped: a hostile 1 MB tool name
 * must not become a 1 MB audit line. The cut is marked so a reader sees it.
 */
export const MAX_FIELD_CHARS = 256;

const cap = (s: string) => (s.length <= MAX_FIELD_CHARS ? s : `${s.slice(0, MAX_FIELD_CHARS)}…(${s.length} chars)`);
const capped = (s: string | undefined) => (s === undefined ? undefined : cap(s));

/**
 * The line for a record (newline-terminated). The path loses its query: a
 * query string carries arguments (and sometimes tokens), which the audit
 * stream never holds.
 */
export function auditLine(r: AuditRecord): string {
  const q = r.path.indexOf('?');
  return `${JSON.stringify({
    time: r.time, level: 'info', msg: AUDIT_MSG,
    direction: r.direction, local: cap(r.local), peer: cap(r.peer), transport: r.transport,
    method: cap(r.method), path: cap(q < 0 ? r.path : r.path.slice(0, q)),
    rpcMethod: capped(r.rpcMethod), tool: capped(r.tool), prompt: capped(r.prompt), resource: capped(r.resource),
    decision: r.decision, rule: r.rule, reason: capped(r.reason), latencyMs: r.latencyMs,
  })}\n`;
}

const TRANSPORTS: ReadonlySet<string> = new Set<Transport>(['http', 'mcp', 'a2a', 'tls']);
const str = (v: unknown): v is string => typeof v === 'string';
const optStr = (v: unknown) => (str(v) ? v : undefined);

/**
 * The record on a line, or undefined for any other line (the proxy's own
 * logs, a kubectl prefix's noise, a truncated line). Accepts a prefix before
 * the JSON, as `kubectl logs --prefix` or a timestamp adds.
 */
export function parseAuditLine(line: string): AuditRecord | undefined {
  const start = line.indexOf('{');
  // A cheap test before parsing (most lines of a proxy's log are not audit lines); a log pipeline may
  // have re-serialized the line with spaces, so not the exact `"msg":"audit"`.
  if (start < 0 || !line.includes(AUDIT_MSG)) return undefined;
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line.slice(start)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (o === null || typeof o !== 'object' || o.msg !== AUDIT_MSG) return undefined;
  const { time, direction, local, peer, transport, method, path, decision, rule, latencyMs } = o;
  if (!str(time) || (direction !== 'inbound' && direction !== 'egress') || !str(local) || !str(peer) || !str(transport) || !TRANSPORTS.has(transport)
    || !str(method) || !str(path) || (decision !== 'allow' && decision !== 'deny') || !(rule === null || Number.isInteger(rule)) || typeof latencyMs !== 'number') return undefined;
  const r: AuditRecord = { time, direction, local, peer, transport: transport as Transport, method, path, decision, rule: rule as number | null, latencyMs };
  for (const k of ['rpcMethod', 'tool', 'prompt', 'resource', 'reason'] as const) {
    const v = optStr(o[k]);
    if (v !== undefined) r[k] = v;
  }
  return r;
}
