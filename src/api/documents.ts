// The documents the operator publishes for agents to read, next to their
// certificates. Versioned JSON; the SDK reads exactly these shapes.

/** A certificate peers must refuse although it chains to the bundle. */
export interface DenyListEntry {
  /** Lowercase hex, as in AgentIdentity status.serialNumber. */
  serialNumber: string;
  spiffeID: string;
  /** When the entry may be pruned: the certificate is useless after it anyway. */
  notAfter: string;
  /** Why it was revoked, e.g. Deleted or Suspended. */
  reason: string;
}

/** denylist.json in the trust bundle ConfigMap. */
export interface DenyList {
  version: 1;
  trustDomain: string;
  entries: DenyListEntry[];
}

/** One allowed peer, with the rule that allowed it so a refusal or acceptance can name it. */
export interface PolicyPeer {
  spiffeID: string;
  /** Human-readable origin, e.g. "allow[0]: agent ops/auditor". */
  rule: string;
  /**
   * Version 2: present when every rule naming the peer narrows what it may do;
   * the indices (into spec.policy's rules) of those rules, whose narrowings
   * are in the section's `narrowings`. Absent: the peer may do anything.
   */
  rules?: number[];
}

/** A trustDomain rule: any identity of that trust domain (verified against that trust domain's own Bundle). */
export interface TrustDomainPeer {
  trustDomain: string;
  /** e.g. "allow[2]: trustDomain partner.example". */
  rule: string;
}

/** One rule's narrowing as compiled: the spec.policy rule index, its text, and what it allows. */
export interface Narrowing {
  index: number;
  /** e.g. "allow[1]: agent agents/orchestrator". */
  rule: string;
  http?: { methods?: string[]; paths?: string[] };
  mcp?: { tools?: string[]; prompts?: string[]; resources?: string[] };
  a2a?: { methods: string[] };
}

/**
 * Version 1: no rule narrows. Version 2: `narrowings` (and PolicyPeer.rules)
 * may be present. The operator writes version 2 only when a rule narrows, so
 * an SDK or proxy that predates narrowings refuses such a document (it reads
 * only version 1) rather than admitting peers to everything.
 */
export type PolicyDocumentVersion = 1 | 2;

/** policy.json mounted next to an agent's certificate. */
export interface PolicyDocument {
  version: PolicyDocumentVersion;
  /** The SPIFFE ID this policy protects. */
  spiffeID: string;
  /**
   * AllowList: only `allow` peers may connect (the identity has a policy).
   * TrustDomain: any peer holding a valid identity of this trust domain (no policy set).
   */
  mode: 'AllowList' | 'TrustDomain';
  trustDomain: string;
  allow: PolicyPeer[];
  /** AllowList: trust domains whose every identity is allowed too (trustDomain rules); absent when there are none. */
  allowTrustDomains?: TrustDomainPeer[];
  /** Version 2: the narrowings the allow list's peers refer to, by index. */
  narrowings?: Narrowing[];
  /** Certificates to refuse even when they chain to the bundle. */
  denyList: DenyListEntry[];
  /**
   * What the identity proxy needs to call out: absent in documents written
   * before egress existed, and for identities that resolve no peers (see
   * compilePolicy); a proxy then treats every host as external.
   */
  egress?: EgressDocument;
}

/** A DNS name that names an identity: an AgentIdentity's spec.dnsNames, or its `<name>.<namespace>.svc[.<clusterDomain>]`. */
export interface Destination {
  /** Lowercase; may start with `*.` (one label), as a dnsNames wildcard does. */
  host: string;
  spiffeID: string;
}

/** policy.json's `egress`: spec.policy.egress compiled, and the hosts of the identities it may reach. */
export interface EgressDocument {
  /** As the inbound mode: AllowList when spec.policy.egress.allow is set, else TrustDomain. */
  mode: 'AllowList' | 'TrustDomain';
  allow: PolicyPeer[];
  /** As PolicyDocument.allowTrustDomains, for egress.allow. */
  allowTrustDomains?: TrustDomainPeer[];
  /** Version 2: as PolicyDocument.narrowings, for egress.allow's indices. */
  narrowings?: Narrowing[];
  /** Sorted by host then SPIFFE ID; a host listed with two IDs is ambiguous and refused. */
  destinations: Destination[];
}

/**
 * File names inside the mounted identity directory. Secret delivery writes
 * tls.crt and tls.key; pod-certificate delivery has the kubelet write the
 * credential bundle instead (a PKCS#8 PRIVATE KEY block, then the chain, Leaf
 * first: one file, so key and chain are always read from one generation).
 */
export const FILES = {
  certificate: 'tls.crt',
  privateKey: 'tls.key',
  credentialBundle: 'credential-bundle.pem',
  bundle: 'ca.crt',
  /** The Roots of each foreign trust domain the agent's TrustDomain federates with (FederatedBundlesDocument). */
  federatedBundles: 'federated-bundles.json',
  policy: 'policy.json',
} as const;

export const DEFAULT_IDENTITY_DIR = '/var/run/agentidentity';

/** Environment variables the webhook sets in agent containers. */
export const ENV = {
  dir: 'AGENT_IDENTITY_DIR',
  certificate: 'AGENT_IDENTITY_CERT_FILE',
  privateKey: 'AGENT_IDENTITY_KEY_FILE',
  credentialBundle: 'AGENT_IDENTITY_CREDENTIAL_BUNDLE_FILE',
  bundle: 'AGENT_IDENTITY_BUNDLE_FILE',
  federatedBundles: 'AGENT_IDENTITY_FEDERATED_BUNDLES_FILE',
  policy: 'AGENT_IDENTITY_POLICY_FILE',
  spiffeID: 'AGENT_IDENTITY_SPIFFE_ID',
} as const;

/**
 * federated-bundles.json, in the trust bundle ConfigMap beside ca.crt: the
 * Roots of every foreign trust domain in the TrustDomain's spec.federatesWith
 * whose bundle the operator holds, as PEM by trust domain name. ca.crt keeps
 * the local Roots alone, so an agent that does not federate reads nothing new.
 * PEM rather than SPIFFE JWKS: it is the form ca.crt has and every TLS stack
 * takes, and agents have no use for the sequence or refresh hint.
 */
export interface FederatedBundlesDocument {
  version: 1;
  /** Foreign trust domain name -> its Roots (PEM). Never the agent's own trust domain. */
  bundles: Record<string, string>;
}
