// The answers to tools/list, prompts/list and resources/list, cut down to
// what the caller may use, so a model never sees a tool it may not call.
// Answers come as one JSON body or as an SSE stream whose `data:` events
// each carry a message (or a batch); only the answers to list calls change,
// every other byte passes as it came.
import type { ListKind } from './decide.ts';
import { idKey, type RpcID } from './jsonrpc.ts';
import type { Matcher } from './pattern.ts';

/** The list calls of one request, by id; `any`: a stream not tied to calls (a resumed GET stream), filtered by shape. */
export type ListCalls = Map<string, { kind: ListKind; allowed: Matcher }> | { any: Record<ListKind, Matcher> };

const FIELD: Record<ListKind, 'name' | 'uri'> = { tools: 'name', prompts: 'name', resources: 'uri' };
const KINDS: ListKind[] = ['tools', 'prompts', 'resources'];

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function keep(entries: unknown[], kind: ListKind, allowed: Matcher): unknown[] {
  return entries.filter((e) => {
    const name = isObject(e) ? e[FIELD[kind]] : undefined;
    return typeof name === 'string' && name.normalize('NFC') === name && allowed(name);
  });
}

/** The message with its list cut down, or undefined when it answers no list call. */
function filterMessage(msg: unknown, calls: ListCalls): unknown {
  if (!isObject(msg) || !isObject(msg.result)) return undefined;
  const result = msg.result;
  if (calls instanceof Map) {
    const call = calls.get(idKey(msg.id as RpcID));
    if (!call || !Array.isArray(result[call.kind])) return undefined;
    return { ...msg, result: { ...result, [call.kind]: keep(result[call.kind] as unknown[], call.kind, call.allowed) } };
  }
  const kind = KINDS.find((k) => Array.isArray(result[k]));
  return kind ? { ...msg, result: { ...result, [kind]: keep(result[kind] as unknown[], kind, calls.any[kind]) } } : undefined;
}

/** A message or a batch with every list answer cut down; undefined when nothing changed. */
function filterValue(value: unknown, calls: ListCalls): unknown {
  if (!Array.isArray(value)) return filterMessage(value, calls);
  let changed = false;
  const out = value.map((m) => {
    const f = filterMessage(m, calls);
    if (f === undefined) return m;
    changed = true;
    return f;
  });
  return changed ? out : undefined;
}

/**
 * A JSON answer body, filtered. A body that is not JSON answers no list
 * call the policy can read: it is replaced by `unreadable` rather than passed on unfiltered.
 */
export function filterJsonAnswer(text: string, calls: ListCalls, unreadable: () => string): string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return unreadable();
  }
  const filtered = filterValue(value, calls);
  return filtered === undefined ? text : JSON.stringify(filtered);
}

const LINE_END = /\r\n|\r|\n/;

/** An event longer than this cannot be a list answer the policy will hold back whole. */
export const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

/**
 * An SSE stream, filtered as it arrives: text is held back only until its
 * event ends (a blank line), then passed on as it came, or, for an event
 * whose data answers a list call, as that data filtered (one data line;
 * the event's other fields kept).
 */
export class SseListFilter {
  #pending = '';
  readonly #calls: ListCalls;

  constructor(calls: ListCalls) {
    this.#calls = calls;
  }

  /** Text of the stream in, the text to send out now. */
  push(text: string): string {
    // The search for the blank line resumes where the last one stopped (less the two characters a line end may span).
    let from = Math.max(0, this.#pending.length - 2);
    this.#pending += text;
    if (this.#pending.length > MAX_ANSWER_BYTES) throw new Error(`an SSE event longer than ${MAX_ANSWER_BYTES} characters`);
    let out = '';
    for (;;) {
      const end = eventEnd(this.#pending, from);
      if (end < 0) return out;
      out += this.#event(this.#pending.slice(0, end));
      this.#pending = this.#pending.slice(end);
      from = 0;
    }
  }

  /** The rest of the stream: an unfinished last event is dispatched by no client, so it passes as it is. */
  end(): string {
    const rest = this.#pending;
    this.#pending = '';
    return rest;
  }

  /** One whole event, blank line included. */
  #event(raw: string): string {
    const lines = raw.split(LINE_END);
    const data = lines.filter((l) => l === 'data' || l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, ''));
    if (data.length === 0) return raw;
    let value: unknown;
    try {
      value = JSON.parse(data.join('\n'));
    } catch {
      return raw;
    }
    const filtered = filterValue(value, this.#calls);
    if (filtered === undefined) return raw;
    const others = lines.filter((l) => l !== '' && l !== 'data' && !l.startsWith('data:'));
    return `${[...others, `data: ${JSON.stringify(filtered)}`].join('\n')}\n\n`;
  }
}

// A line end (CRLF, or a lone CR or LF) twice: the blank line that ends an event. A CR is
// never split from the LF after it, and one at the very end may be half a CRLF: wait for more.
const BLANK_LINE = /(?:\r\n|\r(?!\n|$)|\n)(?:\r\n|\r(?!\n|$)|\n)/g;

/** Where the first event in `text` ends (after its blank line, searched from `from`), or -1. */
function eventEnd(text: string, from: number): number {
  BLANK_LINE.lastIndex = from;
  const m = BLANK_LINE.exec(text);
  return m ? m.index + m[0].length : -1;
}
