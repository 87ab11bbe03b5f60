// A strict JSON reader for request bodies the policy inspects. JSON.parse
// alone keeps the last of two equal keys, so `{"name":"search","name":"delete_all"}`
// would let the policy see one tool and the app another; and a body of
// nested brackets costs memory and, in recursive readers downstream, the
// stack. One pass over the text refuses both before JSON.parse builds a value.

export type JsonProblem = 'NotJson' | 'DuplicateKey' | 'TooDeep';

export class JsonError extends Error {
  readonly reason: JsonProblem;
  constructor(reason: JsonProblem, message: string) {
    super(message);
    this.name = 'JsonError';
    this.reason = reason;
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

const notJson = (at: number) => new JsonError('NotJson', `not valid JSON (at character ${at})`);

/** The end of the string starting at `start` (a quote): the index after its closing quote. */
function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === BACKSLASH) i++;
    else if (c === QUOTE) return i + 1;
  }
  throw notJson(start);
}

function keyOf(text: string, start: number, end: number): string {
  const raw = text.slice(start + 1, end - 1);
  if (!raw.includes('\\')) return raw;
  try {
    return JSON.parse(text.slice(start, end)) as string;
  } catch {
    throw notJson(start);
  }
}

// Characters of numbers and of true, false and null.
const isLiteral = (c: number) => (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x2d || c === 0x2b || c === 0x2e;
const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/**
 * Checks the shape of `text` (brackets balanced and at most `maxDepth` deep,
 * keys unique in each object: compared after unescaping, exactly as code
 * points), then parses it. Throws JsonError.
 */
export function parseStrictJson(text: string, maxDepth: number): unknown {
  // One entry per open container: the keys seen so far for an object, null for an array.
  const open: (Set<string> | null)[] = [];
  let i = 0;
  let expectKey = false;
  const skip = () => {
    while (i < text.length && isSpace(text.charCodeAt(i))) i++;
  };
  for (;;) {
    skip();
    if (i >= text.length) throw notJson(i);
    let c = text.charCodeAt(i);
    if (expectKey) {
      if (c !== QUOTE) throw notJson(i);
      const end = stringEnd(text, i);
      const key = keyOf(text, i, end);
      const keys = open[open.length - 1]!;
      if (keys.has(key)) throw new JsonError('DuplicateKey', `the key ${JSON.stringify(key)} appears twice in one object`);
      keys.add(key);
      i = end;
      skip();
      if (text.charCodeAt(i) !== 0x3a) throw notJson(i);
      i++;
      expectKey = false;
      continue;
    }
    // A value.
    if (c === 0x7b || c === 0x5b) {
      if (open.length >= maxDepth) throw new JsonError('TooDeep', `nested deeper than ${maxDepth} levels`);
      const isObject = c === 0x7b;
      open.push(isObject ? new Set() : null);
      i++;
      skip();
      if (text.charCodeAt(i) === (isObject ? 0x7d : 0x5d)) {
        open.pop();
        i++;
      } else {
        expectKey = isObject;
        continue;
      }
    } else if (c === QUOTE) {
      i = stringEnd(text, i);
    } else {
      // A number or a literal: JSON.parse judges its spelling below.
      const start = i;
      while (i < text.length && isLiteral(text.charCodeAt(i))) i++;
      if (i === start) throw notJson(i);
    }
    // After a value: the end, or a separator, or a close.
    for (;;) {
      skip();
      if (open.length === 0) {
        if (i !== text.length) throw notJson(i);
        try {
          return JSON.parse(text);
        } catch {
          throw notJson(0);
        }
      }
      c = text.charCodeAt(i);
      const inObject = open[open.length - 1] !== null;
      if (c === 0x2c) {
        i++;
        expectKey = inObject;
        break;
      }
      if (c !== (inObject ? 0x7d : 0x5d)) throw notJson(i);
      open.pop();
      i++;
    }
  }
}
