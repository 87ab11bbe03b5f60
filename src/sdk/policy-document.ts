// Reading policy.json: the shape is checked field by field, because a
// document the SDK misreads could only ever widen who gets in.
import type { DenyListEntry, Destination, EgressDocument, PolicyDocument, PolicyPeer } from '../api/documents.ts';
import { SpiffeID } from '../pki/index.ts';

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

const peer = (o: Fields, where: string): PolicyPeer => ({ spiffeID: spiffeID(o, 'spiffeID', where), rule: str(o, 'rule', where) });

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
function egress(raw: unknown): EgressDocument | undefined {
  if (raw === undefined) return undefined;
  if (!isObject(raw)) throw new Error('egress must be an object');
  return { mode: mode(raw, 'egress.'), allow: list(raw, 'allow', peer, 'egress.'), destinations: list(raw, 'destinations', destination, 'egress.') };
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
  if (raw.version !== 1) throw new Error(`unsupported version ${JSON.stringify(raw.version)}; this SDK reads version 1`);
  const inbound = mode(raw, '');
  const id = spiffeID(raw, 'spiffeID', 'policy');
  const trustDomain = str(raw, 'trustDomain', 'policy');
  if (SpiffeID.parse(id).trustDomain !== trustDomain) throw new Error(`trustDomain ${trustDomain} is not the trust domain of ${id}`);
  const egressDoc = egress(raw.egress);
  return {
    version: 1, spiffeID: id, mode: inbound, trustDomain, allow: list(raw, 'allow', peer), denyList: list(raw, 'denyList', denyEntry),
    ...(egressDoc ? { egress: egressDoc } : {}),
  };
}
