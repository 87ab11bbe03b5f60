// Authorizers decide whether a peer whose chain already verified may talk to
// us, by its SPIFFE ID (go-spiffe's tlsconfig.Authorize* family). Each
// answer carries the rule that allowed or the reason that refused.
import type { PolicyDocument } from '../api/documents.ts';
import { SpiffeID, type X509Certificate } from '../pki/index.ts';

export type Authorization = { allowed: true; rule: string } | { allowed: false; reason: string };

/** Synchronous, so it also fits node's checkServerIdentity hook. */
export type Authorizer = (peer: SpiffeID, chain: readonly X509Certificate[]) => Authorization;

const allow = (rule: string): Authorization => ({ allowed: true, rule });
const deny = (reason: string): Authorization => ({ allowed: false, reason });
const parse = (id: SpiffeID | string) => (typeof id === 'string' ? SpiffeID.parse(id) : id);

// Refusal messages list the rules; past this many, a count stands for the rest.
const LISTED_RULES = 5;

export function authorizeAny(): Authorizer {
  return () => allow('any SPIFFE ID');
}

export function authorizeID(expected: SpiffeID | string): Authorizer {
  const id = parse(expected);
  return (peer) => (peer.equals(id) ? allow(`id ${id}`) : deny(`peer ${peer} is not allowed: expected ${id}`));
}

export function authorizeOneOf(...expected: (SpiffeID | string)[]): Authorizer {
  const ids = new Set(expected.map((e) => parse(e).toString()));
  const list = [...ids].join(', ');
  return (peer) => (ids.has(peer.toString()) ? allow(`one of ${list}`) : deny(`peer ${peer} is not allowed: expected one of ${list || '(none)'}`));
}

export function authorizeMemberOf(trustDomain: string): Authorizer {
  // Validates the name the same way an ID's trust domain is validated.
  const td = SpiffeID.fromParts(trustDomain, '').trustDomain;
  return (peer) => (peer.memberOf(td) ? allow(`member of trust domain ${td}`) : deny(`peer ${peer} is not allowed: expected a member of trust domain ${td}`));
}

function allowListSummary(doc: PolicyDocument): string {
  const rules = [...new Set(doc.allow.map((p) => p.rule))];
  if (rules.length === 0) return 'allow list is empty';
  const more = rules.length > LISTED_RULES ? `; and ${rules.length - LISTED_RULES} more` : '';
  return `allow list: ${rules.slice(0, LISTED_RULES).join('; ')}${more}`;
}

/**
 * The policy.json rules: AllowList admits exactly the listed peers;
 * TrustDomain admits any member of the document's trust domain.
 */
export function authorizePolicy(doc: PolicyDocument): Authorizer {
  const refusal = (peer: SpiffeID, why: string) => deny(`peer ${peer} is not allowed by the policy of ${doc.spiffeID} (${why})`);
  if (doc.mode === 'TrustDomain') {
    return (peer) => (peer.memberOf(doc.trustDomain) ? allow(`member of trust domain ${doc.trustDomain} (no allow list)`) : refusal(peer, `no allow list: only members of trust domain ${doc.trustDomain}`));
  }
  const rules = new Map(doc.allow.map((p) => [p.spiffeID, p.rule]));
  const summary = allowListSummary(doc);
  return (peer) => {
    const rule = rules.get(peer.toString());
    return rule === undefined ? refusal(peer, summary) : allow(rule);
  };
}
