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

type Rules = Pick<PolicyDocument, 'mode' | 'allow' | 'allowTrustDomains' | 'trustDomain'>;

function allowListSummary(rules: Rules, field: string): string {
  const names = [...new Set([...rules.allow, ...(rules.allowTrustDomains ?? [])].map((p) => p.rule))];
  if (names.length === 0) return `${field} list is empty`;
  const more = names.length > LISTED_RULES ? `; and ${names.length - LISTED_RULES} more` : '';
  return `${field} list: ${names.slice(0, LISTED_RULES).join('; ')}${more}`;
}

export interface PolicyAuthorizerOptions {
  /**
   * The server enforces rules that narrow what a peer may do (http, mcp, a2a)
   * on every request, as the SDK's HTTPS server and the HTTP-mode proxy do.
   * Default false: a peer that only narrowing rules allow is refused at
   * connection, because a server that sees no requests cannot keep it to them.
   */
  inspectsRequests?: boolean;
}

/**
 * One engine for both directions: AllowList admits exactly the listed peers and the members of the listed
 * trust domains (trustDomain rules); TrustDomain any member of the agent's own trust domain, never a
 * federated one's: a partner is admitted only by a rule that names it.
 */
function authorizeRules(rules: Rules, field: string, inspects: boolean, refusal: (peer: SpiffeID, why: string) => Authorization): Authorizer {
  if (rules.mode === 'TrustDomain') {
    return (peer) => (peer.memberOf(rules.trustDomain) ? allow(`member of trust domain ${rules.trustDomain} (no ${field} list)`) : refusal(peer, `no ${field} list: only members of trust domain ${rules.trustDomain}`));
  }
  const byID = new Map(rules.allow.map((p) => [p.spiffeID, p]));
  const byTrustDomain = new Map((rules.allowTrustDomains ?? []).map((t) => [t.trustDomain, t.rule]));
  const summary = allowListSummary(rules, field);
  return (peer) => {
    const found = byID.get(peer.toString());
    if (found === undefined) {
      // A trustDomain rule never narrows (the CRD refuses it), so its members may do anything.
      const rule = byTrustDomain.get(peer.trustDomain);
      return rule === undefined ? refusal(peer, summary) : allow(rule);
    }
    if (found.rules && !inspects) return refusal(peer, `${found.rule} narrows what it may call (http, mcp or a2a), and this server does not inspect requests: serve HTTP (the SDK's HTTPS server, or the proxy in http mode)`);
    return allow(found.rule);
  };
}

/**
 * The policy.json rules: AllowList admits exactly the listed peers;
 * TrustDomain admits any member of the document's trust domain.
 */
export function authorizePolicy(doc: PolicyDocument, opts: PolicyAuthorizerOptions = {}): Authorizer {
  return authorizeRules(doc, 'allow', opts.inspectsRequests === true, (peer, why) => deny(`peer ${peer} is not allowed by the policy of ${doc.spiffeID} (${why})`));
}

/**
 * The egress rules of policy.json: which peers this agent may call (its
 * identity proxy asks before connecting). A document without `egress`
 * allows no one: nothing says whom.
 */
export function authorizeEgress(doc: PolicyDocument): Authorizer {
  const egress = doc.egress;
  if (!egress) return (peer) => deny(`calls to ${peer} are not allowed: the policy of ${doc.spiffeID} has no egress section (the operator writes one for identities with spec.policy)`);
  // Only the outbound proxy calls through egress rules, and it inspects every request.
  return authorizeRules({ ...egress, trustDomain: doc.trustDomain }, 'egress.allow', true, (peer, why) => deny(`calls to ${peer} are not allowed by the egress policy of ${doc.spiffeID} (${why})`));
}
