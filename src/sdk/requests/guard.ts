// Request-level policy at the edge: reads what decide.ts needs from an
// HTTP request (method, path, and on MCP and A2A routes the body, capped
// and parsed strictly), answers refusals, hands allowed requests on with
// their body replayed, and filters list answers on the way back. One
// AuditRecord per decision (per call in a batch) goes to the caller's sink.
import { IncomingMessage, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { AuditRecord } from '../../audit/record.ts';
import { type CallVerdict, decideCall, decideRoute, type Grants, listMatcher } from './decide.ts';
import { answerFilter } from './answer.ts';
import { JsonError, parseStrictJson } from './json.ts';
import { idKey, RPC_ERROR, rpcBody, type RpcID, type RpcMessages } from './jsonrpc.ts';
import type { ListCalls } from './filter.ts';

export interface RequestPolicyOptions {
  /** A body on an MCP or A2A route past this many bytes is refused (413) before it is parsed. Default 4 MiB. */
  maxBodyBytes?: number;
  /** Calls in one JSON-RPC batch at most. Default 100. */
  maxBatch?: number;
  /** Nesting of arrays and objects in a body at most. Default 64. */
  maxDepth?: number;
  /** Every decision, one record each (each call of a batch its own); never bodies or arguments. */
  onDecision?: (record: AuditRecord) => void;
}

export const REQUEST_POLICY_DEFAULTS = { maxBodyBytes: 4 * 1024 * 1024, maxBatch: 100, maxDepth: 64 } as const;

/** Who is calling whom, and what the caller may do. */
export interface RequestContext {
  direction: 'inbound' | 'egress';
  local: string;
  peer: string;
  grants: Grants;
  /** The request's path without the query string. */
  path: string;
}

const PREFIX = 'agent-identity policy';
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

type Decision = Pick<AuditRecord, 'transport' | 'decision' | 'rule' | 'reason' | 'rpcMethod' | 'tool' | 'prompt' | 'resource'>;

function audit(ctx: RequestContext, req: IncomingMessage, opts: RequestPolicyOptions, started: number, decisions: Decision[]): void {
  const sink = opts.onDecision;
  if (!sink) return;
  const time = new Date().toISOString();
  const latencyMs = performance.now() - started;
  for (const d of decisions) {
    const record: AuditRecord = { time, direction: ctx.direction, local: ctx.local, peer: ctx.peer, transport: d.transport, method: req.method ?? '', path: ctx.path, decision: d.decision, rule: d.rule, latencyMs };
    for (const k of ['rpcMethod', 'tool', 'prompt', 'resource', 'reason'] as const) if (d[k] !== undefined) record[k] = d[k];
    sink(record);
  }
}

function sendText(res: ServerResponse, status: number, message: string): void {
  const body = `${PREFIX}: ${message}\n`;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

type RpcError = { id: RpcID; code: number; message: string; reason?: string };

/** JSON-RPC errors as one object or a batch. */
function sendRpc(res: ServerResponse, status: number, errors: RpcError[], batch: boolean): void {
  const messages = errors.map((e) => ({ jsonrpc: '2.0', id: e.id, error: { code: e.code, message: `${PREFIX}: ${e.message}`, ...(e.reason ? { data: { reason: e.reason } } : {}) } }));
  const body = JSON.stringify(batch ? messages : messages[0]);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** How long the rest of a refused body is read and thrown away before the connection is cut. */
const LINGER_MS = 2_000;

/**
 * A refusal sent before the body was read (too large, compressed): the
 * client is still sending it. Closing at once would make the kernel answer
 * the unread bytes with a reset, and a client (or the caller's outbound
 * proxy) still writing sees EPIPE and may lose the answer with it: through
 * two proxies the 413 became a 502. So the rest is read and discarded (the
 * stream keeps flowing to no listener, as nginx's lingering close does), and
 * the connection stays usable once it ends; a body still arriving after
 * LINGER_MS has its connection cut.
 */
function linger(req: IncomingMessage): void {
  if (req.complete) return;
  const timer = setTimeout(() => req.socket.destroy(), LINGER_MS);
  timer.unref();
  const done = () => clearTimeout(timer);
  req.once('end', done).once('close', done);
  req.resume();
}

/** The request again, its body replayed from memory, for handlers that read it as a stream. */
function replay(req: IncomingMessage, body: Buffer): IncomingMessage {
  const copy = new IncomingMessage(req.socket);
  Object.assign(copy, {
    method: req.method, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders, trailers: {}, rawTrailers: [],
    httpVersion: req.httpVersion, httpVersionMajor: req.httpVersionMajor, httpVersionMinor: req.httpVersionMinor, complete: true,
  });
  copy._read = () => undefined;
  copy.push(body);
  copy.push(null);
  return copy;
}

const hasBody = (req: IncomingMessage) => (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') || req.headers['transfer-encoding'] !== undefined;

/** The body, or undefined once the cap is passed (the caller answers) or the client went away. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | 'TooLarge' | undefined> {
  return new Promise((resolve) => {
    const declared = Number(req.headers['content-length']);
    if (declared > limit) return resolve('TooLarge');
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (v: Buffer | 'TooLarge' | undefined) => {
      req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      resolve(v);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) done('TooLarge');
      else chunks.push(chunk);
    };
    const onEnd = () => done(Buffer.concat(chunks, size));
    const onError = () => done(undefined);
    const onClose = () => done(req.complete ? Buffer.concat(chunks, size) : undefined);
    req.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}

type Parsed = { ok: true; body: RpcMessages } | { ok: false; status: number; code: number; reason: string; message: string };

type Limits = Required<Omit<RequestPolicyOptions, 'onDecision'>>;

function parseBody(bytes: Buffer, opts: Limits): Parsed {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    return { ok: false, status: 400, code: RPC_ERROR.parse, reason: 'NotJson', message: 'the body is not UTF-8 text' };
  }
  let value: unknown;
  try {
    value = parseStrictJson(text, opts.maxDepth);
  } catch (err) {
    const e = err as JsonError;
    return { ok: false, status: 400, code: RPC_ERROR.parse, reason: e.reason ?? 'NotJson', message: `the body is refused: ${e.message}` };
  }
  const body = rpcBody(value, opts.maxBatch);
  if ('invalid' in body) return { ok: false, status: 400, code: RPC_ERROR.invalidRequest, reason: body.reason, message: `the body is not a JSON-RPC 2.0 request: ${body.invalid}` };
  return { ok: true, body };
}

const subjectText = (v: CallVerdict) => (v.tool !== undefined ? ` of tool ${JSON.stringify(v.tool)}` : v.prompt !== undefined ? ` of prompt ${JSON.stringify(v.prompt)}` : v.resource !== undefined ? ` of resource ${JSON.stringify(v.resource)}` : '');

const decisionOf = (v: CallVerdict, decision: 'allow' | 'deny', reason?: string): Decision => ({
  transport: v.transport, decision, rule: decision === 'allow' ? v.rule : null, rpcMethod: v.rpcMethod, tool: v.tool, prompt: v.prompt, resource: v.resource, reason,
});

/** Accept-Encoding dropped, so the answer comes back in a form the filter can read. */
function askForPlainAnswer(req: IncomingMessage): void {
  delete req.headers['accept-encoding'];
  for (let i = req.rawHeaders.length - 2; i >= 0; i -= 2) if (req.rawHeaders[i]!.toLowerCase() === 'accept-encoding') req.rawHeaders.splice(i, 2);
}

/**
 * Decides `req` for the peer in `ctx`; refusals are answered here, an
 * allowed request goes to `next` (with its body replayed, and the list
 * answers filtered, when the body was inspected).
 */
export function guardRequest(ctx: RequestContext, req: IncomingMessage, res: ServerResponse, opts: RequestPolicyOptions, next: (req: IncomingMessage) => void): void {
  const started = performance.now();
  const route = decideRoute(ctx.grants, req.method ?? '', ctx.path, hasBody(req));
  if (route.verdict === 'allow') {
    audit(ctx, req, opts, started, [{ transport: route.transport, decision: 'allow', rule: route.rule }]);
    // A stream that answers no call of this request (a GET, resumed with Last-Event-ID) may still replay list answers.
    if (route.streams) {
      const streams = route.streams;
      answerFilter(res, { any: { tools: listMatcher(streams, 'tools'), prompts: listMatcher(streams, 'prompts'), resources: listMatcher(streams, 'resources') } });
    }
    next(req);
    return;
  }
  if (route.verdict === 'deny') {
    audit(ctx, req, opts, started, [{ transport: 'http', decision: 'deny', rule: null, reason: route.reason }]);
    sendText(res, 403, `${req.method} ${ctx.path} refused for ${ctx.peer}: ${route.message}`);
    linger(req);
    return;
  }
  const limits: Limits = {
    maxBodyBytes: opts.maxBodyBytes ?? REQUEST_POLICY_DEFAULTS.maxBodyBytes,
    maxBatch: opts.maxBatch ?? REQUEST_POLICY_DEFAULTS.maxBatch,
    maxDepth: opts.maxDepth ?? REQUEST_POLICY_DEFAULTS.maxDepth,
  };
  const refuse = (status: number, code: number, reason: string, message: string, unread = false) => {
    audit(ctx, req, opts, started, [{ transport: route.transport, decision: 'deny', rule: null, reason }]);
    sendRpc(res, status, [{ id: null, code, message, reason }], false);
    if (unread) linger(req);
  };
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding !== 'identity') {
    refuse(415, RPC_ERROR.invalidRequest, 'EncodedBody', `a ${route.transport} body with content-encoding ${encoding} cannot be inspected; send it uncompressed`, true);
    return;
  }
  void readBody(req, limits.maxBodyBytes).then((bytes) => {
    if (bytes === undefined) return;
    if (bytes === 'TooLarge') {
      refuse(413, RPC_ERROR.invalidRequest, 'BodyTooLarge', `the body is larger than ${limits.maxBodyBytes} bytes`, true);
      return;
    }
    const decideStart = performance.now();
    const parsed = parseBody(bytes, limits);
    if (!parsed.ok) {
      refuse(parsed.status, parsed.code, parsed.reason, parsed.message);
      return;
    }
    const { messages, batch } = parsed.body;
    const verdicts = messages.map((m) => decideCall(route.candidates, m));
    const denied = verdicts.find((v) => !v.allowed);
    if (denied) {
      const decisions = verdicts.map((v) => (v.allowed ? decisionOf(v, 'deny', 'BatchRefused') : decisionOf(v, 'deny', v.reason)));
      audit(ctx, req, opts, decideStart, decisions);
      const errors: RpcError[] = [];
      messages.forEach((m, i) => {
        const v = verdicts[i]!;
        if (m.kind !== 'call' || m.id === undefined) return;
        errors.push(v.allowed
          ? { id: m.id, code: RPC_ERROR.refused, reason: 'BatchRefused', message: `not sent: another call in this batch was refused (${denied.rpcMethod}${subjectText(denied)})` }
          : { id: m.id, code: RPC_ERROR.refused, reason: v.reason, message: `${v.rpcMethod}${subjectText(v)} refused for ${ctx.peer}: ${v.message}` });
      });
      // Calls without an id (notifications) get no answer in JSON-RPC; when nothing else would, the refusal still needs one, with a 403.
      const unanswerable = errors.length === 0;
      if (unanswerable) errors.push({ id: null, code: RPC_ERROR.refused, reason: denied.reason, message: `${denied.rpcMethod}${subjectText(denied)} refused for ${ctx.peer}: ${denied.message}` });
      sendRpc(res, unanswerable ? 403 : 200, errors, batch && !unanswerable);
      return;
    }
    audit(ctx, req, opts, decideStart, verdicts.map((v) => decisionOf(v, 'allow')));
    const lists: ListCalls = new Map();
    messages.forEach((m, i) => {
      const list = verdicts[i]!.list;
      if (list && m.kind === 'call' && m.id !== undefined) lists.set(idKey(m.id), list);
    });
    if (lists.size > 0) {
      askForPlainAnswer(req);
      answerFilter(res, lists);
    }
    next(replay(req, bytes));
  });
}
