// The decisions of request-level policy, pure: which rules a peer's request
// falls under (HTTP method and path), then whether each JSON-RPC call in
// its body is allowed (MCP tool, prompt or resource; A2A method). The
// proxy and the SDK's HTTPS server both decide here; guard.ts does the I/O.
import type { Narrowing, PolicyPeer } from '../../api/documents.ts';
import type { Transport } from '../../audit/record.ts';
import type { RpcMessage } from './jsonrpc.ts';
import { type Matcher, matcher } from './pattern.ts';

/** What a peer may do: anything (the rule that said so), or only what its narrowing rules allow. */
export type Grants =
  | { unrestricted: true; rule: number | null }
  | { unrestricted: false; narrowings: Narrowing[] };

/** The allow list of one direction of policy.json. */
export interface PolicySection {
  mode: 'AllowList' | 'TrustDomain';
  allow: PolicyPeer[];
  narrowings?: Narrowing[];
}

const RULE_INDEX = /^(?:egress\.)?allow\[(\d+)\]/;
const ruleIndex = (text: string) => {
  const m = RULE_INDEX.exec(text);
  return m ? Number(m[1]) : null;
};

const grantsCache = new WeakMap<PolicySection, Map<string, Grants>>();
const ANYTHING: Grants = { unrestricted: true, rule: null };

/**
 * The peer's grants under `section`. A peer the list does not name (trust
 * domain mode, or admitted by an authorizer of the app's own) is not narrowed:
 * admission already decided it may connect.
 */
export function grantsOf(section: PolicySection | undefined, peer: string): Grants {
  if (!section) return ANYTHING;
  let byPeer = grantsCache.get(section);
  if (!byPeer) {
    const narrowings = new Map((section.narrowings ?? []).map((n) => [n.index, n]));
    byPeer = new Map(section.allow.map((p) => [p.spiffeID, p.rules
      ? { unrestricted: false, narrowings: p.rules.map((i) => narrowings.get(i)!) }
      : { unrestricted: true, rule: ruleIndex(p.rule) }]));
    grantsCache.set(section, byPeer);
  }
  return byPeer.get(peer) ?? ANYTHING;
}

interface Compiled {
  methods?: Set<string>;
  paths?: Matcher;
  tools: Matcher;
  prompts: Matcher;
  resources: Matcher;
  a2a?: Matcher;
}

const NOTHING: Matcher = () => false;
const compiledCache = new WeakMap<Narrowing, Compiled>();

function compiled(n: Narrowing): Compiled {
  let c = compiledCache.get(n);
  if (!c) {
    const m = (p: string[] | undefined) => (p ? matcher(p) : NOTHING);
    c = {
      ...(n.http?.methods ? { methods: new Set(n.http.methods) } : {}),
      ...(n.http?.paths ? { paths: matcher(n.http.paths) } : {}),
      tools: m(n.mcp?.tools), prompts: m(n.mcp?.prompts), resources: m(n.mcp?.resources),
      ...(n.a2a ? { a2a: matcher(n.a2a.methods) } : {}),
    };
    compiledCache.set(n, c);
  }
  return c;
}

const transportOf = (n: Narrowing): Transport => (n.mcp ? 'mcp' : n.a2a ? 'a2a' : 'http');

export type RouteVerdict =
  /** `streams`: MCP rules of a request without a body (a GET that opens or resumes an SSE stream), whose list answers are filtered by shape. */
  | { verdict: 'allow'; rule: number | null; transport: Transport; streams?: Narrowing[] }
  | { verdict: 'deny'; reason: string; message: string }
  /** Decide per JSON-RPC call with decideCall: the body must be read and parsed. */
  | { verdict: 'inspect'; candidates: Narrowing[]; transport: Transport };

// Paths an app may resolve differently from how they read: dot segments, doubled or
// back slashes, and percent-encoded dots and slashes. Refused where a rule names paths.
const AMBIGUOUS_PATH = /(^|\/)\.\.?(\/|$)|\/\/|\\|%2e|%2f|%5c/i;

const LISTED = 5;
const listed = (items: readonly string[]) => (items.length > LISTED ? `${items.slice(0, LISTED).join(', ')} and ${items.length - LISTED} more` : items.join(', '));

function routeText(n: Narrowing): string {
  const parts = [n.http?.methods && `methods ${listed(n.http.methods)}`, n.http?.paths && `paths ${listed(n.http.paths)}`].filter(Boolean);
  return `${n.rule} (${parts.join('; ')})`;
}

/** Which of the peer's rules cover `method path`; `hasBody`: whether JSON-RPC calls may follow. `path` is without the query string. */
export function decideRoute(grants: Grants, method: string, path: string, hasBody: boolean): RouteVerdict {
  if (grants.unrestricted) return { verdict: 'allow', rule: grants.rule, transport: 'http' };
  if (grants.narrowings.some((n) => n.http?.paths) && AMBIGUOUS_PATH.test(path)) {
    return { verdict: 'deny', reason: 'AmbiguousPath', message: `the path ${JSON.stringify(path)} has dot segments, doubled slashes or encoded separators, which rules that name paths refuse` };
  }
  const candidates = grants.narrowings.filter((n) => {
    const c = compiled(n);
    return (!c.methods || c.methods.has(method)) && (!c.paths || c.paths(path));
  });
  if (candidates.length === 0) {
    return { verdict: 'deny', reason: 'RouteNotAllowed', message: `${method} ${path} is not allowed by ${grants.narrowings.map(routeText).join('; ')}` };
  }
  const open = candidates.find((n) => !n.mcp && !n.a2a);
  if (open) return { verdict: 'allow', rule: open.index, transport: 'http' };
  if (!hasBody) {
    const mcp = candidates.filter((n) => n.mcp);
    return { verdict: 'allow', rule: candidates[0]!.index, transport: transportOf(candidates[0]!), ...(mcp.length ? { streams: mcp } : {}) };
  }
  return { verdict: 'inspect', candidates, transport: transportOf(candidates[0]!) };
}

export type ListKind = 'tools' | 'prompts' | 'resources';

export interface CallVerdict {
  allowed: boolean;
  rule: number | null;
  transport: Transport;
  rpcMethod?: string;
  tool?: string;
  prompt?: string;
  resource?: string;
  reason?: string;
  message?: string;
  /** An allowed list call whose answer must be filtered: what the peer may see of that kind. */
  list?: { kind: ListKind; allowed: Matcher };
}

// MCP methods that name nothing the rules list: the handshake, liveness, notifications and the lists (whose answers are filtered).
const MCP_ALWAYS = new Set(['initialize', 'ping', 'logging/setLevel', 'tools/list', 'prompts/list', 'resources/list', 'resources/templates/list']);
const LIST_KIND: Record<string, ListKind> = { 'tools/list': 'tools', 'prompts/list': 'prompts', 'resources/list': 'resources' };

type Subject = { kind: ListKind; field: 'tool' | 'prompt' | 'resource'; name: unknown };

const param = (params: unknown, key: string): unknown => (params !== null && typeof params === 'object' && !Array.isArray(params) ? (params as Record<string, unknown>)[key] : undefined);

/** What an MCP call names: undefined for a method that names nothing; null for a method the policy does not know. */
function mcpSubject(method: string, params: unknown): Subject | undefined | null {
  if (MCP_ALWAYS.has(method) || method.startsWith('notifications/')) return undefined;
  switch (method) {
    case 'tools/call':
      return { kind: 'tools', field: 'tool', name: param(params, 'name') };
    case 'prompts/get':
      return { kind: 'prompts', field: 'prompt', name: param(params, 'name') };
    case 'resources/read': case 'resources/subscribe': case 'resources/unsubscribe':
      return { kind: 'resources', field: 'resource', name: param(params, 'uri') };
    case 'completion/complete': {
      // Completions reveal a prompt's or a resource template's arguments: allowed where the prompt or resource is.
      const ref = param(params, 'ref');
      const type = param(ref, 'type');
      if (type === 'ref/prompt') return { kind: 'prompts', field: 'prompt', name: param(ref, 'name') };
      if (type === 'ref/resource') return { kind: 'resources', field: 'resource', name: param(ref, 'uri') };
      return { kind: 'prompts', field: 'prompt', name: undefined };
    }
    default:
      return null;
  }
}

type Judgement = { allowed: true } | { allowed: false; reason: string; why: string };

const REASON: Record<ListKind, string> = { tools: 'ToolNotAllowed', prompts: 'PromptNotAllowed', resources: 'ResourceNotAllowed' };

function judgeMcp(n: Narrowing, method: string, subject: Subject | undefined | null): Judgement {
  if (subject === undefined) return { allowed: true };
  if (subject === null) return { allowed: false, reason: 'UnknownMethod', why: `does not allow the MCP method ${JSON.stringify(method)}, which names nothing its lists cover` };
  const name = subject.name as string;
  if (compiled(n)[subject.kind](name)) return { allowed: true };
  const list = n.mcp?.[subject.kind];
  return { allowed: false, reason: REASON[subject.kind], why: `does not allow ${method} of ${subject.field} ${JSON.stringify(name)} (${subject.kind}: ${list?.length ? listed(list) : 'none'})` };
}

function judgeA2A(n: Narrowing, method: string): Judgement {
  return compiled(n).a2a?.(method) ? { allowed: true } : { allowed: false, reason: 'MethodNotAllowed', why: `does not allow the A2A method ${JSON.stringify(method)} (methods: ${listed(n.a2a?.methods ?? [])})` };
}

/** Whether one call may pass: allowed when any candidate rule allows it. */
export function decideCall(candidates: readonly Narrowing[], msg: RpcMessage): CallVerdict {
  const first = candidates[0]!;
  if (msg.kind === 'response') return { allowed: true, rule: first.index, transport: transportOf(first) };
  const { method, params } = msg;
  const mcp = candidates.some((n) => n.mcp) ? mcpSubject(method, params) : undefined;
  const named = mcp ? { [mcp.field]: typeof mcp.name === 'string' ? mcp.name : undefined } : {};
  const base = { rpcMethod: method, ...named };
  if (mcp && typeof mcp.name !== 'string') {
    return { ...base, allowed: false, rule: null, transport: 'mcp', reason: 'MissingName', message: `${method} must name its ${mcp.field} with a string (params.${mcp.field === 'resource' ? 'uri' : 'name'})` };
  }
  if (mcp && (mcp.name as string).normalize('NFC') !== mcp.name) {
    return { ...base, allowed: false, rule: null, transport: 'mcp', reason: 'NonNFCName', message: `the ${mcp.field} name ${JSON.stringify(mcp.name)} is not in Unicode NFC form; names compare exactly, so the policy refuses names an app might normalize` };
  }
  const refusals: string[] = [];
  let reason = '';
  for (const n of candidates) {
    const j = n.mcp ? judgeMcp(n, method, mcp) : judgeA2A(n, method);
    if (j.allowed) {
      const kind = n.mcp ? LIST_KIND[method] : undefined;
      return { ...base, allowed: true, rule: n.index, transport: transportOf(n), ...(kind ? { list: { kind, allowed: listMatcher(candidates, kind) } } : {}) };
    }
    reason ||= j.reason;
    refusals.push(`${n.rule} ${j.why}`);
  }
  return { ...base, allowed: false, rule: null, transport: transportOf(first), reason, message: refusals.join('; ') };
}

/** What of `kind` the peer may see: whatever any of its MCP rules on this route allows. */
export function listMatcher(candidates: readonly Narrowing[], kind: ListKind): Matcher {
  const matchers = candidates.filter((n) => n.mcp).map((n) => compiled(n)[kind]);
  return matchers.length === 1 ? matchers[0]! : (v) => matchers.some((m) => m(v));
}
