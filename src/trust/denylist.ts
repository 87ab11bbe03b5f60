// The deny list: revoked certificates that still chain to the bundle. Pure
// operations over the document in src/api/documents.ts.
import type { DenyList, DenyListEntry } from '../api/documents.ts';

export function emptyDenyList(trustDomain: string): DenyList {
  return { version: 1, trustDomain, entries: [] };
}

export function parseDenyList(trustDomain: string, json: string | undefined): DenyList {
  if (!json) return emptyDenyList(trustDomain);
  try {
    const d = JSON.parse(json) as DenyList;
    return Array.isArray(d.entries) ? { version: 1, trustDomain, entries: d.entries } : emptyDenyList(trustDomain);
  } catch {
    return emptyDenyList(trustDomain);
  }
}

/** Adds entries not already listed (by serial); sorted so equal lists serialise identically. */
export function withEntries(list: DenyList, add: DenyListEntry[]): DenyList {
  const bySerial = new Map(list.entries.map((e) => [e.serialNumber, e]));
  for (const e of add) if (!bySerial.has(e.serialNumber)) bySerial.set(e.serialNumber, e);
  return { ...list, entries: [...bySerial.values()].sort((a, b) => a.serialNumber.localeCompare(b.serialNumber)) };
}

/** Drops entries whose certificate has expired: a peer refuses those anyway. */
export function pruned(list: DenyList, now: Date): DenyList {
  return { ...list, entries: list.entries.filter((e) => new Date(e.notAfter).getTime() > now.getTime()) };
}

export function serializeDenyList(list: DenyList): string {
  return JSON.stringify(list, null, 2) + '\n';
}

/** When the next entry expires, so the list is pruned on time. */
export function nextExpiry(list: DenyList): Date | undefined {
  const t = Math.min(...list.entries.map((e) => new Date(e.notAfter).getTime()));
  return Number.isFinite(t) ? new Date(t) : undefined;
}
