// Which identity a host names, and whether this agent may call it: the
// decision the outbound proxy makes before it opens any connection. Pure:
// the policy document in, a verdict with a status and a message out.
import type { PolicyDocument } from '../api/documents.ts';
import { SpiffeID } from '../pki/index.ts';
import { authorizeEgress } from '../sdk/index.ts';

export type EgressVerdict =
  | { allowed: true; spiffeID: string; rule: string }
  | { allowed: false; status: 403 | 502; message: string; /** The identity that claims the host, when one alone does. */ spiffeID?: string };

/** Lowercase, without a trailing dot: the form dnsNames and the document use. */
export function normalizeHost(host: string): string {
  return host.toLowerCase().replace(/\.$/, '');
}

/**
 * The SPIFFE IDs that claim `host`: an exact name first, else a `*.` name
 * that covers exactly its first label (as a dnsNames wildcard does).
 */
export function claimsOf(doc: PolicyDocument, host: string): string[] {
  const destinations = doc.egress?.destinations ?? [];
  const name = normalizeHost(host);
  const exact = destinations.filter((d) => d.host === name);
  const dot = name.indexOf('.');
  const found = exact.length ? exact : dot > 0 ? destinations.filter((d) => d.host === `*${name.slice(dot)}`) : [];
  return [...new Set(found.map((d) => d.spiffeID))];
}

/**
 * 403 for a host no identity claims (external: egress policy names agents,
 * not hosts) and for an identity the egress policy does not allow; 502 for
 * a host two identities claim (no way to know whom to expect).
 */
export function decideEgress(doc: PolicyDocument, host: string): EgressVerdict {
  const ids = claimsOf(doc, host);
  if (ids.length === 0) {
    const why = doc.egress
      ? 'no AgentIdentity claims it (spec.dnsNames, or <name>.<namespace>.svc), nor an egress.allow spiffeID rule\'s hosts (a federated partner\'s agent); egress to external hosts is not supported'
      : `the policy of ${doc.spiffeID} has no egress section, so no host names an identity (the operator writes one for identities with spec.proxy or spec.policy.egress)`;
    return { allowed: false, status: 403, message: `egress to ${normalizeHost(host)} refused: ${why}` };
  }
  if (ids.length > 1) {
    return { allowed: false, status: 502, message: `egress to ${normalizeHost(host)} refused: the host is claimed by more than one identity (${ids.join(', ')}); give each a distinct spec.dnsNames` };
  }
  const spiffeID = ids[0]!;
  const verdict = authorizeEgress(doc)(SpiffeID.parse(spiffeID), []);
  return verdict.allowed
    ? { allowed: true, spiffeID, rule: verdict.rule }
    : { allowed: false, status: 403, message: `egress to ${normalizeHost(host)} (${spiffeID}) refused: ${verdict.reason}`, spiffeID };
}
