// Who may hold identities of a TrustDomain: the namespaces its
// spec.namespaceSelector picks, carrying only the DNS names its
// spec.dnsNames allows. Pure, so the admission webhook (which refuses the
// AgentIdentity) and the identity reconciler (which refuses to issue, where
// no webhook runs) answer the same question the same way.
import { firstViolation, type Check, type Violation } from '../controller/checks.ts';
import type { AgentIdentity, TrustDomain } from '../api/types.ts';
import { describeSelector, isEmptySelector, matchesSelector, selectorProblem } from './selector.ts';

export type TenancyReason = 'NamespaceNotAllowed' | 'DNSNameNotAllowed';

export type TenancyViolation = Violation<TenancyReason>;

export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';
/** A Service's names in the identity's own namespace: `<service>.<namespace>.svc[.<cluster domain>]`. */
export const DEFAULT_ALLOWED_DNS_NAMES: readonly string[] = ['*.{namespace}.svc', '*.{namespace}.svc.{clusterDomain}'];

/** spec.dnsNames.allowed for one namespace, placeholders filled in. */
export function allowedDNSNames(td: TrustDomain, namespace: string): string[] {
  const clusterDomain = td.spec.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN;
  return (td.spec.dnsNames?.allowed ?? DEFAULT_ALLOWED_DNS_NAMES)
    .map((p) => p.replaceAll('{namespace}', namespace).replaceAll('{clusterDomain}', clusterDomain));
}

/**
 * Label by label; a `*` in the pattern stands for any one label. A wildcard
 * name's own `*` is matched only by a pattern's `*`, so a wildcard passes only
 * when every name it covers would.
 */
export function dnsNameMatches(name: string, pattern: string): boolean {
  const n = name.split('.');
  const p = pattern.split('.');
  return n.length === p.length && p.every((label, i) => label === '*' || label === n[i]);
}

const quote = (names: readonly string[]) => names.map((n) => `"${n}"`).join(', ');

interface TenancyInput {
  td: TrustDomain;
  identity: AgentIdentity;
  namespaceLabels: Record<string, string>;
}

const namespaceAllowed: Check<TenancyInput, TenancyReason> = ({ td, identity, namespaceLabels }) => {
  const selector = td.spec.namespaceSelector;
  if (!selector || matchesSelector(selector, namespaceLabels)) return undefined;
  const problem = selectorProblem(selector);
  return {
    reason: 'NamespaceNotAllowed',
    message: problem
      ? `TrustDomain "${td.metadata.name}" has an invalid spec.namespaceSelector (${problem}), so it issues identities in no namespace; a cluster admin must fix it`
      : `TrustDomain "${td.metadata.name}" issues identities only in namespaces matching "${describeSelector(selector)}" (its spec.namespaceSelector), and namespace "${identity.metadata.namespace}" does not match; use another trust domain in spec.trustDomain, or ask a cluster admin to admit this namespace`,
  };
};

const dnsNamesAllowed: Check<TenancyInput, TenancyReason> = ({ td, identity }) => {
  const namespace = identity.metadata.namespace!;
  const tdName = td.metadata.name!;
  const allowed = allowedDNSNames(td, namespace);
  for (const name of identity.spec.dnsNames ?? []) {
    if (name.startsWith('*.') && td.spec.dnsNames?.allowWildcards !== true) {
      return {
        reason: 'DNSNameNotAllowed',
        message: `dnsNames entry "${name}" is a wildcard, and TrustDomain "${tdName}" does not allow wildcard DNS names (spec.dnsNames.allowWildcards); list each name instead`,
      };
    }
    if (allowed.some((p) => dnsNameMatches(name, p))) continue;
    return {
      reason: 'DNSNameNotAllowed',
      message: allowed.length === 0
        ? `dnsNames entry "${name}" is not allowed: TrustDomain "${tdName}" allows no DNS names (spec.dnsNames.allowed is empty)`
        : `dnsNames entry "${name}" is not allowed: in namespace "${namespace}", TrustDomain "${tdName}" allows only names matching ${quote(allowed)} (spec.dnsNames.allowed, where * is one label)`,
    };
  }
  return undefined;
};

const TENANCY_CHECKS = [namespaceAllowed, dnsNamesAllowed];

/** Why this identity may not be issued by this TrustDomain, or undefined when it may. */
export function tenancyViolation(td: TrustDomain, identity: AgentIdentity, namespaceLabels: Record<string, string>): TenancyViolation | undefined {
  return firstViolation(TENANCY_CHECKS, { td, identity, namespaceLabels });
}

/** True when the TrustDomain admits every namespace: the reconciler then needs no namespace labels. */
export function admitsEveryNamespace(td: TrustDomain): boolean {
  return !td.spec.namespaceSelector || isEmptySelector(td.spec.namespaceSelector);
}
