// Reading policy.json: the shape is checked field by field, because a
// document the SDK misreads could only ever widen who gets in.
import type { DenyListEntry, Destination, EgressDocument, Narrowing, PolicyDocument, PolicyPeer, TrustDomainPeer } from '../api/documents.ts';
import { isValidTrustDomainName, SpiffeID } from '../pki/index.ts';

type Fields = Record<string, unknown>;

const isObject = (v: unknown): v is Fields => v !== null && typeof v === 'object' && !Array.isArray(v);

function str(o: Fields, key: string, where: string): string {
  if (typeof o[key] !== 'string' || o[key] === '') throw new Error(`${where}.${key} must be a non-empty string`);
  return o[key];
}

function list<T>(o: Fields, key: string, item: (v: Fields, where: string) => T, prefix = ''): T[] {
  const v = o[key];
  if (!Array.isArray(v)) throw new Error(`${prefix}${key} must be an array`);
  return v.map((x, i) => {
    if (!isObject(x)) throw new Error(`${prefix}${key}[${i}] must be an object`);
    return item(x, `${prefix}${key}[${i}]`);
  });
}

function spiffeID(o: Fields, key: string, where: string): string {
  const value = str(o, key, where);
  try {
    return SpiffeID.parse(value).toString();
  } catch (err) {
    throw new Error(`${where}.${key}: ${(err as Error).message}`);
  }
}

/** Lowercase hex without leading zero bytes, the form pki's serialNumberOf gives. */
export function normalizeSerialNumber(hex: string): string {
  return hex.toLowerCase().replace(/^(00)+(?=.)/, '');
}

function indices(o: Fields, where: string): number[] | undefined {
  const v = o.rules;
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length === 0 || !v.every((i) => Number.isSafeInteger(i) && i >= 0)) throw new Error(`${where}.rules must be a non-empty list of rule indices`);
  return v as number[];
}

const peer = (o: Fields, where: string): PolicyPeer => {
  const rules = indices(o, where);
  return { spiffeID: spiffeID(o, 'spiffeID', where), rule: str(o, 'rule', where), ...(rules ? { rules } : {}) };
};

const trustDomainPeer = (o: Fields, where: string): TrustDomainPeer => {
  const trustDomain = str(o, 'trustDomain', where);
  if (!isValidTrustDomainName(trustDomain)) throw new Error(`${where}.trustDomain is not a trust domain name`);
  return { trustDomain, rule: str(o, 'rule', where) };
};

/** The optional `allowTrustDomains` of a section (trustDomain rules). */
function trustDomainPeers(o: Fields, prefix: string): { allowTrustDomains?: TrustDomainPeer[] } {
  return o.allowTrustDomains === undefined ? {} : { allowTrustDomains: list(o, 'allowTrustDomains', trustDomainPeer, prefix) };
}

/**
 * Exactly the keys this SDK enforces: a narrowing with a key it does not know
 * could only be narrower than what it would enforce, so the document is refused.
 */
function strings(o: Fields, keys: readonly string[], where: string, required: readonly string[] = []): Record<string, string[]> {
  const unknown = Object.keys(o).filter((k) => !keys.includes(k));
  if (unknown.length) throw new Error(`${where} has ${unknown.join(', ')}, which this SDK does not enforce; upgrade the SDK (or the proxy)`);
  const out: Record<string, string[]> = {};
  for (const k of keys) {
    const v = o[k];
    if (v === undefined && !required.includes(k)) continue;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && x !== '')) throw new Error(`${where}.${k} must be a list of non-empty strings`);
    out[k] = v as string[];
  }
  return out;
}

function section(o: Fields, key: string, where: string, keys: readonly string[], required: readonly string[] = []) {
  const v = o[key];
  if (v === undefined) return {};
  if (!isObject(v)) throw new Error(`${where}.${key} must be an object`);
  return { [key]: strings(v, keys, `${where}.${key}`, required) };
}

function narrowing(o: Fields, where: string): Narrowing {
  const unknown = Object.keys(o).filter((k) => !['index', 'rule', 'http', 'mcp', 'a2a'].includes(k));
  if (unknown.length) throw new Error(`${where} narrows by ${unknown.join(', ')}, which this SDK does not enforce; upgrade the SDK (or the proxy)`);
  if (!Number.isSafeInteger(o.index) || (o.index as number) < 0) throw new Error(`${where}.index must be a rule index`);
  return {
    index: o.index as number, rule: str(o, 'rule', where),
    ...section(o, 'http', where, ['methods', 'paths']), ...section(o, 'mcp', where, ['tools', 'prompts', 'resources']), ...section(o, 'a2a', where, ['methods'], ['methods']),
  } as Narrowing;
}

/** `narrowings` and the peers' `rules` (version 2 only), checked to refer to each other: a dangling index would allow nothing or, misread, everything. */
function narrowed(o: Fields, peers: PolicyPeer[], version: number, where: string): { narrowings?: Narrowing[] } {
  const referred = peers.some((p) => p.rules);
  if (version === 1) {
    if (o.narrowings !== undefined || referred) throw new Error(`${where}narrowings need document version 2`);
    return {};
  }
  if (o.narrowings === undefined) {
    if (referred) throw new Error(`${where}allow refers to rules but ${where}narrowings is missing`);
    return {};
  }
  const found = list(o, 'narrowings', narrowing, where);
  const byIndex = new Set(found.map((n) => n.index));
  for (const p of peers) {
    const missing = p.rules?.find((i) => !byIndex.has(i));
    if (missing !== undefined) throw new Error(`${where}allow: ${p.spiffeID} refers to rule ${missing}, which ${where}narrowings lacks`);
  }
  return { narrowings: found };
}

function denyEntry(o: Fields, where: string): DenyListEntry {
  const serialNumber = str(o, 'serialNumber', where);
  if (!/^[0-9a-fA-F]+$/.test(serialNumber)) throw new Error(`${where}.serialNumber must be hexadecimal`);
  return { serialNumber: normalizeSerialNumber(serialNumber), spiffeID: str(o, 'spiffeID', where), notAfter: str(o, 'notAfter', where), reason: str(o, 'reason', where) };
}

type Mode = PolicyDocument['mode'];

function mode(o: Fields, where: string): Mode {
  if (o.mode !== 'AllowList' && o.mode !== 'TrustDomain') throw new Error(`${where}mode must be AllowList or TrustDomain`);
  return o.mode;
}

// A DNS name as dnsNames holds it: lowercase labels, optionally a leading `*.`.
const HOST = /^(\*\.)?([a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function destination(o: Fields, where: string): Destination {
  const host = str(o, 'host', where);
  if (!HOST.test(host)) throw new Error(`${where}.host must be a lowercase DNS name, got ${JSON.stringify(host)}`);
  return { host, spiffeID: spiffeID(o, 'spiffeID', where) };
}

/** The optional `egress` section: absent in documents of operators before it existed. */
function egress(raw: unknown, version: number): EgressDocument | undefined {
  if (raw === undefined) return undefined;
  if (!isObject(raw)) throw new Error('egress must be an object');
  const allow = list(raw, 'allow', peer, 'egress.');
  return { mode: mode(raw, 'egress.'), allow, ...trustDomainPeers(raw, 'egress.'), ...narrowed(raw, allow, version, 'egress.'), destinations: list(raw, 'destinations', destination, 'egress.') };
}

/** Parses and checks policy.json; throws an Error naming the first bad field. */
export function parsePolicyDocument(text: string): PolicyDocument {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new Error('not valid JSON');
  }
  if (!isObject(raw)) throw new Error('must be a JSON object');
  const version = raw.version;
  if (version !== 1 && version !== 2) throw new Error(`unsupported version ${JSON.stringify(version)}; this SDK reads versions 1 and 2`);
  const inbound = mode(raw, '');
  const id = spiffeID(raw, 'spiffeID', 'policy');
  const trustDomain = str(raw, 'trustDomain', 'policy');
  if (SpiffeID.parse(id).trustDomain !== trustDomain) throw new Error(`trustDomain ${trustDomain} is not the trust domain of ${id}`);
  const egressDoc = egress(raw.egress, version);
  const allow = list(raw, 'allow', peer);
  return {
    version, spiffeID: id, mode: inbound, trustDomain, allow, ...trustDomainPeers(raw, ''), ...narrowed(raw, allow, version, ''), denyList: list(raw, 'denyList', denyEntry),
    ...(egressDoc ? { egress: egressDoc } : {}),
  };
}
