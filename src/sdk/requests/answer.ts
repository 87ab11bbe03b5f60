// The answer to a request whose list calls must be filtered, rewritten as
// it is written: ServerResponse's writeHead, write and end are wrapped (as
// compression middleware does), so the same code serves an app's own
// handler in the SDK and the proxy's relay of an upstream answer.
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import { filterJsonAnswer, type ListCalls, MAX_ANSWER_BYTES, SseListFilter } from './filter.ts';
import { RPC_ERROR } from './jsonrpc.ts';

type Mode = 'pass' | 'json' | 'sse';

const WITHHELD = JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: RPC_ERROR.internal, message: 'agent-identity policy: the answer to a list call could not be read to filter it, so it was withheld' } });

type Headers = OutgoingHttpHeaders | (string | string[])[] | undefined;

function headerOf(res: ServerResponse, headers: Headers, name: string): string {
  let v: unknown = res.getHeader(name);
  if (Array.isArray(headers)) {
    for (let i = 0; i < headers.length; i += 2) if (String(headers[i]).toLowerCase() === name) v = headers[i + 1];
  } else if (headers) {
    for (const [k, value] of Object.entries(headers)) if (k.toLowerCase() === name) v = value;
  }
  return v === undefined ? '' : String(v).toLowerCase();
}

/** The headers without `names` (the body changes length, or comes back decoded). */
function without(res: ServerResponse, headers: Headers, names: readonly string[]): Headers {
  for (const n of names) res.removeHeader(n);
  if (Array.isArray(headers)) return headers.filter((_, i, all) => !names.includes(String(all[i - (i % 2)]).toLowerCase()));
  return headers && Object.fromEntries(Object.entries(headers).filter(([k]) => !names.includes(k.toLowerCase())));
}

function modeOf(status: number, type: string): Mode {
  if (status < 200 || status >= 300) return 'pass';
  if (type.startsWith('text/event-stream')) return 'sse';
  // Anything else that succeeds is read as JSON: what cannot be read is withheld, never passed on unfiltered.
  return 'json';
}

type Callback = (err?: Error | null) => void;

/** What write() and end() were given, as bytes: a string in its encoding (default UTF-8), or a buffer. */
const bytes = (chunk: unknown, encoding: unknown): Buffer => (typeof chunk === 'string' ? Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8') : Buffer.from(chunk as Uint8Array));

/** Wraps `res` so the answers to `calls` reach the client filtered. */
export function answerFilter(res: ServerResponse, calls: ListCalls): void {
  const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
  const write = res.write.bind(res) as (chunk: unknown, cb?: Callback) => boolean;
  const end = res.end.bind(res) as (chunk?: unknown, cb?: () => void) => ServerResponse;
  let mode: Mode | undefined;
  const decoder = new StringDecoder('utf8');
  const sse = new SseListFilter(calls);
  let json = '';

  const start = () => {
    if (mode === undefined) res.writeHead(res.statusCode);
  };
  const text = (chunk: unknown, encoding: unknown) => decoder.write(bytes(chunk, encoding));
  const take = (chunk: unknown, encoding: unknown): string | undefined => {
    if (mode === 'json') {
      json += text(chunk, encoding);
      if (json.length > MAX_ANSWER_BYTES) throw new Error('a list answer too large to filter');
      return '';
    }
    return sse.push(text(chunk, encoding));
  };

  res.writeHead = ((status: number, ...rest: unknown[]) => {
    // writeHead(status, headers), writeHead(status, message) or writeHead(status, message, headers); the message may be undefined.
    const at = rest.length > 1 || typeof rest[0] === 'string' ? 1 : 0;
    const headers = rest[at] as Headers;
    mode = modeOf(status, headerOf(res, headers, 'content-type'));
    if (mode !== 'pass') {
      const encoded = !['', 'identity'].includes(headerOf(res, headers, 'content-encoding'));
      if (encoded) mode = 'json';
      rest[at] = without(res, headers, ['content-length', ...(encoded ? ['content-encoding'] : [])]);
    }
    return writeHead(status, ...rest);
  }) as ServerResponse['writeHead'];

  res.write = ((chunk: unknown, encoding?: unknown, cb?: Callback) => {
    start();
    const callback = typeof encoding === 'function' ? (encoding as Callback) : cb;
    if (mode === 'pass') return write(bytes(chunk, encoding), callback);
    let out: string | undefined;
    try {
      out = take(chunk, encoding);
    } catch (err) {
      res.destroy(err as Error);
      return false;
    }
    if (out) return write(out, callback);
    if (callback) process.nextTick(callback);
    return true;
  }) as ServerResponse['write'];

  res.end = ((chunk?: unknown, encoding?: unknown, cb?: () => void) => {
    const callback = typeof chunk === 'function' ? (chunk as () => void) : typeof encoding === 'function' ? (encoding as () => void) : cb;
    const data = typeof chunk === 'function' ? undefined : chunk;
    start();
    if (mode === 'pass') return data === undefined || data === null ? end(callback) : end(bytes(data, encoding), callback);
    let out: string;
    try {
      out = (data === undefined || data === null ? '' : take(data, encoding)!) + (mode === 'json' ? '' : sse.push(decoder.end()) + sse.end());
      if (mode === 'json') out = filterJsonAnswer(json + decoder.end(), calls, () => WITHHELD);
    } catch (err) {
      res.destroy(err as Error);
      return res;
    }
    return end(out, callback);
  }) as ServerResponse['end'];
}
