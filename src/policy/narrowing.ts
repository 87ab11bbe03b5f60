// What an allow rule lets its peer do once connected (issue 19): the
// `http`, `mcp` and `a2a` fields of a rule, checked and compiled into the
// document's `narrowings`. The CRD's CEL rules refuse the same mistakes at
// admission; these checks cover objects that predate them.
import type { Narrowing } from '../api/documents.ts';
import type { PolicyRule } from './types.ts';

const METHOD = /^[A-Z]+$/;
// Control characters would never match a real name and only hide what a rule says.
const CONTROL = /\p{Cc}/u;

function listProblem(field: string, v: unknown, item: (s: string) => string | undefined): string | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) return `${field} must be a list`;
  for (const [i, s] of v.entries()) {
    if (typeof s !== 'string' || s === '') return `${field}[${i}] must be a non-empty string`;
    const why = item(s);
    if (why) return `${field}[${i}] ${JSON.stringify(s)}: ${why}`;
  }
  return undefined;
}

/** A name pattern: NFC (the enforcement refuses names that are not, so a rule that is not could never match) and no control characters. */
const namePattern = (s: string) => (CONTROL.test(s) ? 'contains a control character' : s.normalize('NFC') !== s ? 'is not in Unicode NFC form' : undefined);
const pathPattern = (s: string) => (!s.startsWith('/') && s !== '*' ? 'a path must start with /' : s.includes('?') ? 'a path matches without the query string; remove ?…' : namePattern(s));
const methodName = (s: string) => (METHOD.test(s) ? undefined : 'an HTTP method is uppercase letters, e.g. GET');

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Why the rule's narrowing is unusable, or undefined (also when it has none). */
export function narrowingProblem(rule: PolicyRule): string | undefined {
  const { http, mcp, a2a } = rule;
  if (mcp !== undefined && a2a !== undefined) return 'a rule may narrow mcp or a2a, not both: a route speaks one protocol (write two rules with http.paths)';
  if (http !== undefined) {
    if (!isObject(http) || (http.methods === undefined && http.paths === undefined)) return 'http must set methods, paths or both';
    const why = listProblem('http.methods', http.methods, methodName) ?? listProblem('http.paths', http.paths, pathPattern);
    if (why) return why;
  }
  if (mcp !== undefined) {
    if (!isObject(mcp) || (mcp.tools === undefined && mcp.prompts === undefined && mcp.resources === undefined)) return 'mcp must set tools, prompts or resources (["*"] for all)';
    const why = listProblem('mcp.tools', mcp.tools, namePattern) ?? listProblem('mcp.prompts', mcp.prompts, namePattern) ?? listProblem('mcp.resources', mcp.resources, namePattern);
    if (why) return why;
  }
  if (a2a !== undefined) {
    if (!isObject(a2a) || !Array.isArray(a2a.methods)) return 'a2a must set methods (["*"] for all)';
    return listProblem('a2a.methods', a2a.methods, namePattern);
  }
  return undefined;
}

/** The rule's narrowing for the document, in a fixed key order (documents compare as bytes); undefined for a rule that allows everything. */
export function compileNarrowing(rule: PolicyRule, index: number, text: string): Narrowing | undefined {
  const { http, mcp, a2a } = rule;
  if (http === undefined && mcp === undefined && a2a === undefined) return undefined;
  const pick = <K extends string>(o: Partial<Record<K, string[]>>, keys: readonly K[]) => Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, [...o[k]!]]));
  return {
    index,
    rule: text,
    ...(http ? { http: pick(http, ['methods', 'paths'] as const) } : {}),
    ...(mcp ? { mcp: pick(mcp, ['tools', 'prompts', 'resources'] as const) } : {}),
    ...(a2a ? { a2a: { methods: [...a2a.methods] } } : {}),
  };
}
