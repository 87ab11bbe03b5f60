// SPIFFE IDs per the SPIFFE-ID specification
// (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md), with
// go-spiffe's error wording so messages read the same across the ecosystem.
import { PkiError } from './errors.ts';

const SCHEME = 'spiffe://';
const MAX_ID_LENGTH = 2048;
const MAX_TRUST_DOMAIN_LENGTH = 255;
const TRUST_DOMAIN_CHARS = /^[a-z0-9._-]+$/;
const SEGMENT_CHARS = /^[a-zA-Z0-9._-]+$/;

export function isValidTrustDomainName(s: string): boolean {
  return typeof s === 'string' && s.length <= MAX_TRUST_DOMAIN_LENGTH && TRUST_DOMAIN_CHARS.test(s);
}

/** Why a trust domain name is invalid, or undefined when it is valid. */
function trustDomainProblem(td: string): string | undefined {
  if (td === '') return 'trust domain is missing';
  if (td.length > MAX_TRUST_DOMAIN_LENGTH) return `trust domain is longer than ${MAX_TRUST_DOMAIN_LENGTH} characters`;
  if (/[@]/.test(td)) return 'trust domain cannot contain userinfo';
  if (/:/.test(td)) return 'trust domain cannot contain a port';
  if (!TRUST_DOMAIN_CHARS.test(td)) {
    return 'trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores';
  }
  return undefined;
}

/** Why a path is invalid, or undefined when it is valid. '' (the trust domain's own ID) is valid. */
function pathProblem(path: string): string | undefined {
  if (path === '') return undefined;
  if (path.includes('?')) return 'path cannot contain a query';
  if (path.includes('#')) return 'path cannot contain a fragment';
  if (!path.startsWith('/')) return 'path must have a leading slash';
  if (path.endsWith('/')) return 'path cannot have a trailing slash';
  for (const segment of path.slice(1).split('/')) {
    if (segment === '') return 'path cannot contain empty segments';
    if (segment === '.' || segment === '..') return 'path cannot contain dot segments';
    if (!SEGMENT_CHARS.test(segment)) {
      return 'path segment characters are limited to letters, numbers, dots, dashes, and underscores';
    }
  }
  return undefined;
}

// IDs are not secret, but input may be anything; quote it and keep it short.
function quote(s: string): string {
  return JSON.stringify(s.length > 100 ? `${s.slice(0, 100)}…` : s);
}

export class SpiffeID {
  readonly trustDomain: string;
  /** '' or '/'-separated segments with a leading slash, e.g. '/ns/agents/agent/planner'. */
  readonly path: string;

  private constructor(trustDomain: string, path: string) {
    this.trustDomain = trustDomain;
    this.path = path;
  }

  static parse(s: string): SpiffeID {
    if (typeof s !== 'string' || s === '') throw new PkiError('InvalidSpiffeID', 'SPIFFE ID cannot be empty');
    const problem = (why: string) => new PkiError('InvalidSpiffeID', `invalid SPIFFE ID ${quote(s)}: ${why}`);
    if (s.length > MAX_ID_LENGTH) throw problem(`longer than ${MAX_ID_LENGTH} bytes`);
    if (!s.startsWith(SCHEME)) throw problem('scheme is missing or invalid');
    const rest = s.slice(SCHEME.length);
    const slash = rest.indexOf('/');
    const td = slash === -1 ? rest : rest.slice(0, slash);
    const path = slash === -1 ? '' : rest.slice(slash);
    const why = trustDomainProblem(td) ?? pathProblem(path);
    if (why) throw problem(why);
    return new SpiffeID(td, path);
  }

  static fromParts(trustDomain: string, path: string): SpiffeID {
    const why = trustDomainProblem(trustDomain) ?? pathProblem(path);
    if (why) throw new PkiError('InvalidSpiffeID', `invalid SPIFFE ID parts ${quote(trustDomain)}, ${quote(path)}: ${why}`);
    const id = new SpiffeID(trustDomain, path);
    if (id.toString().length > MAX_ID_LENGTH) {
      throw new PkiError('InvalidSpiffeID', `SPIFFE ID is longer than ${MAX_ID_LENGTH} bytes`);
    }
    return id;
  }

  toString(): string {
    return `${SCHEME}${this.trustDomain}${this.path}`;
  }

  equals(other: SpiffeID): boolean {
    return this.trustDomain === other.trustDomain && this.path === other.path;
  }

  memberOf(trustDomain: string): boolean {
    return this.trustDomain === trustDomain;
  }
}

export interface TemplateVars {
  namespace: string;
  name: string;
  serviceAccount: string;
}

/**
 * Renders a TrustDomain's spiffeIDTemplate, e.g. "ns/{namespace}/agent/{name}"
 * (a leading slash is optional). Each variable must fill whole characters of a
 * segment: a value can never add segments.
 */
export function renderSpiffeID(trustDomain: string, template: string, vars: TemplateVars): SpiffeID {
  const path = template.replace(/\{([^{}]*)\}/g, (_, name: string) => {
    if (!Object.hasOwn(vars, name)) {
      throw new PkiError('InvalidTemplate', `SPIFFE ID template ${quote(template)} has unknown placeholder {${name}}; use {namespace}, {name} or {serviceAccount}`);
    }
    const value = vars[name as keyof TemplateVars];
    if (!SEGMENT_CHARS.test(value)) {
      throw new PkiError('InvalidSpiffeID', `{${name}} value ${quote(value)} is not usable in a SPIFFE ID path segment`);
    }
    return value;
  });
  if (/[{}]/.test(path)) throw new PkiError('InvalidTemplate', `SPIFFE ID template ${quote(template)} has an unbalanced brace`);
  return SpiffeID.fromParts(trustDomain, path.startsWith('/') ? path : `/${path}`);
}
