// TypeScript shapes of the CRDs in crds/. The OpenAPI schema there is the
// source of truth for validation and defaults; these types mirror it.
export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export type KeyAlgorithm = 'ECDSA' | 'Ed25519' | 'RSA';
export type RotationPolicy = 'Always' | 'Never';

export interface PrivateKeySpec {
  algorithm?: KeyAlgorithm;
  /** ECDSA: 256 | 384; RSA: 2048 | 3072 | 4096; ignored for Ed25519. */
  size?: number;
  rotationPolicy?: RotationPolicy;
}

export interface AgentIdentitySpec {
  serviceAccountName: string;
  trustDomain?: string;
  dnsNames?: string[];
  /** Go duration string, e.g. "24h". */
  duration?: string;
  renewBefore?: string;
  renewBeforePercentage?: number;
  privateKey?: PrivateKeySpec;
  /** Revokes the identity while true: Secret deleted, serial deny-listed until expiry. */
  suspended?: boolean;
  /** Inbound policy: who may connect to this agent. Absent: any identity of the trust domain. */
  policy?: InboundPolicy;
  secretName?: string;
  secretTemplate?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  /**
   * How the key and certificate reach the agent's pods: `Secret` (default; the
   * operator makes the key and keeps it in a Secret) or `PodCertificate` (the
   * kubelet makes the key on the node and asks the operator's signer through a
   * PodCertificateRequest; no key is ever written to the API). Immutable.
   */
  delivery?: Delivery;
  /** Opt-in: the identity proxy as a sidecar that alone holds the key (see ProxySpec). */
  proxy?: ProxySpec;
}

export type Delivery = 'Secret' | 'PodCertificate';

/** How the proxy speaks to the agent: `http` adds the verified peer's headers, `tcp` forwards bytes. */
export type ProxyMode = 'http' | 'tcp';

/**
 * spec.proxy: the webhook injects the identity proxy beside the agent. Other
 * pods reach the agent through `port` (mTLS, terminated by the proxy); the
 * agent serves plaintext on 127.0.0.1:`appPort`.
 */
export interface ProxySpec {
  port: number;
  appPort: number;
  /** Default http. */
  mode?: ProxyMode;
}

export interface AgentIdentityStatus {
  conditions?: Condition[];
  spiffeID?: string;
  serialNumber?: string;
  notBefore?: string;
  notAfter?: string;
  renewalTime?: string;
  secretName?: string;
  caFingerprint?: string;
  observedGeneration?: number;
  /** Why the last certificate was issued: the reason of the check that triggered it. */
  lastIssuanceReason?: string;
  failedIssuanceAttempts?: number;
  lastFailureTime?: string;
  /** The renew-requested-at annotation value the current certificate answers. */
  lastRenewalRequest?: string;
  /** Peers the inbound policy currently resolves to (absent when there is no policy). */
  policyPeers?: number;
}

export interface AgentIdentity {
  apiVersion: string;
  kind: 'AgentIdentity';
  metadata: ObjectMeta;
  spec: AgentIdentitySpec;
  status?: AgentIdentityStatus;
}

export interface SecretRef {
  namespace: string;
  name: string;
}

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

/** spec.dnsNames of a TrustDomain: which DNS names its identities may carry. */
export interface DNSNamePolicy {
  /**
   * Patterns with the placeholders {namespace} (the identity's) and {clusterDomain};
   * a `*` label stands for any one label. Absent: `*.{namespace}.svc` and
   * `*.{namespace}.svc.{clusterDomain}`; `[]` allows no DNS names.
   */
  allowed?: string[];
  /** An identity's dnsNames may be wildcards (`*.x`) when every name they cover is allowed. Default false. */
  allowWildcards?: boolean;
}

export interface TrustDomainSpec {
  trustDomain: string;
  bundle?: { namespaceSelector?: LabelSelector };
  /** Namespaces that may have identities of this trust domain. Absent or `{}`: every namespace. */
  namespaceSelector?: LabelSelector;
  dnsNames?: DNSNamePolicy;
  /** Replaces {clusterDomain} in spec.dnsNames.allowed. Default cluster.local. */
  clusterDomain?: string;
  ca: {
    selfSigned?: { keyAlgorithm?: KeyAlgorithm };
    secretRef?: SecretRef;
  };
  spiffeIDTemplate?: string;
  /** Opt-in: serve this trust domain's bundle to partners (docs/federation.md). */
  federation?: TrustDomainFederation;
  /**
   * Foreign trust domain names (each a ClusterFederatedTrustDomain's
   * spec.trustDomain) whose Roots this trust domain's agents trust.
   */
  federatesWith?: string[];
}

/** How a bundle endpoint proves who it is (SPIFFE Trust Domain and Bundle, 5.2). */
export type BundleEndpointProfileType = 'https_spiffe' | 'https_web';

export interface TrustDomainFederation {
  bundleEndpoint?: BundleEndpointSpec;
}

/** spec.federation.bundleEndpoint: every replica serves the bundle at /bundles/<trustDomain>. */
export interface BundleEndpointSpec {
  profile: {
    type: BundleEndpointProfileType;
    /** https_web: a kubernetes.io/tls Secret in the operator's namespace that the admin keeps current. */
    secretName?: string;
  };
  /** DNS names the endpoint's certificate is chosen by (TLS SNI); https_spiffe puts them on its SVID. */
  dnsNames?: string[];
  /** spiffe_refresh_hint, a duration; default 5m. */
  refreshHint?: string;
}

export type RootState = 'Active' | 'Incoming' | 'Retiring';
export type RotationPhase = 'PublishingRoot' | 'ReissuingLeaves' | 'RetiringRoot';

export interface RootStatus {
  fingerprint: string;
  subject: string;
  notBefore: string;
  notAfter: string;
  state: RootState;
}

export interface RotationStatus {
  phase: RotationPhase;
  reason: string;
  startedAt: string;
  phaseStartedAt: string;
  bundleCopies: number;
  bundleCopiesUpdated: number;
  leaves: number;
  leavesRemaining: number;
}

export interface TrustDomainStatus {
  conditions?: Condition[];
  roots?: RootStatus[];
  intermediate?: { fingerprint: string; notAfter: string };
  rotation?: RotationStatus;
  lastRotationRequest?: string;
  bundleNamespaces?: number;
  denyListEntries?: number;
  observedGeneration?: number;
  caSecret?: SecretRef;
  caSubject?: string;
  caFingerprint?: string;
  caNotAfter?: string;
}

/** A ClusterFederatedTrustDomain: a partner's trust domain, and where its bundle is fetched. */
export interface ClusterFederatedTrustDomainSpec {
  /** The foreign SPIFFE trust domain name. */
  trustDomain: string;
  /** https:// URL of the partner's bundle endpoint. */
  bundleEndpointURL: string;
  bundleEndpointProfile: {
    type: BundleEndpointProfileType;
    /** https_spiffe: the SPIFFE ID the endpoint must present, in the foreign trust domain. */
    endpointSPIFFEID?: string;
  };
  /** The bundle that bootstraps trust (a SPIFFE bundle document or PEM Roots); used until one was fetched. */
  trustDomainBundle?: string;
}

export interface FederatedRootStatus {
  fingerprint: string;
  notAfter: string;
}

export interface ClusterFederatedTrustDomainStatus {
  conditions?: Condition[];
  /** When the last bundle was accepted from the endpoint. */
  lastRefresh?: string;
  /** When the endpoint was last asked, whatever it answered. */
  lastAttempt?: string;
  nextRefresh?: string;
  /** spiffe_sequence of the bundle held. */
  sequence?: number;
  roots?: FederatedRootStatus[];
  /** The ConfigMap in the operator's namespace that holds the accepted bundle. */
  bundleConfigMap?: string;
  observedGeneration?: number;
}

export interface ClusterFederatedTrustDomain {
  apiVersion: string;
  kind: 'ClusterFederatedTrustDomain';
  metadata: ObjectMeta;
  spec: ClusterFederatedTrustDomainSpec;
  status?: ClusterFederatedTrustDomainStatus;
}

export interface TrustDomain {
  apiVersion: string;
  kind: 'TrustDomain';
  metadata: ObjectMeta;
  spec: TrustDomainSpec;
  status?: TrustDomainStatus;
}

/** The subset of core/v1 Secret the operator reads and writes. */
export interface Secret {
  apiVersion?: 'v1';
  kind?: 'Secret';
  metadata: ObjectMeta;
  type?: string;
  data?: Record<string, string>;
}

/** The subset of core/v1 ConfigMap the operator reads and writes. */
export interface ConfigMap {
  apiVersion?: 'v1';
  kind?: 'ConfigMap';
  metadata: ObjectMeta;
  data?: Record<string, string>;
}

export interface Namespace {
  metadata: ObjectMeta;
}

/** The subset of networking.k8s.io/v1 NetworkPolicy the operator writes: ingress rules by port. */
export interface NetworkPolicy {
  apiVersion?: 'networking.k8s.io/v1';
  kind?: 'NetworkPolicy';
  metadata: ObjectMeta;
  spec: {
    podSelector: LabelSelector;
    policyTypes?: Array<'Ingress' | 'Egress'>;
    ingress?: Array<{ from?: unknown[]; ports?: Array<{ protocol?: string; port?: number | string; endPort?: number }> }>;
    egress?: unknown[];
  };
}

/** The subset of core/v1 Pod the operator reads: for the app-port check of pods with the identity proxy. */
export interface Pod {
  apiVersion?: 'v1';
  kind?: 'Pod';
  metadata: ObjectMeta;
  spec?: { serviceAccountName?: string; initContainers?: Array<{ name: string }>; containers?: Array<{ name: string }> };
  status?: {
    phase?: string;
    podIP?: string;
    initContainerStatuses?: PodContainerStatus[];
    containerStatuses?: PodContainerStatus[];
  };
}

export interface PodContainerStatus {
  name: string;
  started?: boolean;
  restartCount?: number;
}

/** core/v1 ServiceAccount: the operator only asks whether one exists. */
export interface ServiceAccount {
  metadata: ObjectMeta;
}

/** One AgentIdentity by name; namespace defaults to the protected identity's own. */
export interface AgentRule {
  agent: { name: string; namespace?: string };
}

/**
 * AgentIdentities whose labels match `selector`, in the namespaces matching
 * `namespaceSelector`: absent means the identity's own namespace, `{}` all namespaces.
 */
export interface SelectorRule {
  selector: LabelSelector;
  namespaceSelector?: LabelSelector;
}

/** Every AgentIdentity in the namespaces matching `namespaceSelector`. */
export interface NamespaceRule {
  namespaceSelector: LabelSelector;
}

/** Any SPIFFE ID, including ones from other trust domains. */
export interface SpiffeIDRule {
  spiffeID: string;
  /**
   * egress.allow only: host names that reach this identity (a federated partner's agent, which no
   * AgentIdentity here claims), so the proxy's outbound side knows whom to expect at them.
   */
  hosts?: string[];
}

/** Every identity of a trust domain, typically a federated partner's (docs/federation.md). Cannot narrow. */
export interface TrustDomainRule {
  trustDomain: string;
}

/**
 * What a rule lets the peer do once connected (issue 19). Each field narrows;
 * a rule with none of them allows every request, as before they existed.
 * Patterns everywhere: `*` stands for any run of characters (including `/`
 * and none); every other character compares exactly, code point by code point.
 */
export interface RuleNarrowing {
  http?: HttpNarrowing;
  mcp?: McpNarrowing;
  a2a?: A2ANarrowing;
}

/** Requests the rule covers: HTTP methods (uppercase; absent: any) and paths (patterns; absent: any). */
export interface HttpNarrowing {
  methods?: string[];
  paths?: string[];
}

/**
 * The request bodies the rule covers are MCP JSON-RPC: tools/call, prompts/get
 * and resources/read (and subscribe, completion) must name an entry of the
 * matching list (absent list: none). initialize, ping, notifications and the
 * list methods are always allowed; the list answers are filtered.
 */
export interface McpNarrowing {
  tools?: string[];
  prompts?: string[];
  /** Resource URIs. */
  resources?: string[];
}

/** The request bodies the rule covers are A2A JSON-RPC; `methods` lists the methods allowed (e.g. message/send). */
export interface A2ANarrowing {
  methods: string[];
}

export type PolicyRule = (AgentRule | SelectorRule | NamespaceRule | SpiffeIDRule | TrustDomainRule) & RuleNarrowing;

/**
 * spec.policy. `allow` (inbound): once present, every peer it does not allow
 * is denied; absent, any identity of the trust domain may connect.
 * `egress.allow`: which agents this agent may call through its proxy, same
 * rule shapes; absent, any identity of its trust domain.
 */
export interface InboundPolicy {
  allow?: PolicyRule[];
  egress?: EgressPolicy;
}

/** spec.policy.egress: who the agent may call through its identity proxy. */
export interface EgressPolicy {
  allow?: PolicyRule[];
}

/** certificates.k8s.io/v1 ClusterTrustBundle without a signer: a public bundle any pod can project. */
export interface ClusterTrustBundle {
  apiVersion: 'certificates.k8s.io/v1';
  kind: 'ClusterTrustBundle';
  metadata: ObjectMeta;
  spec: { trustBundle: string; signerName?: string };
}

// --- certificates.k8s.io/v1 PodCertificateRequest (Kubernetes 1.37, KEP-4317): the parts the signer reads and writes.

/** Key types a kubelet may generate for a podCertificate projection. */
export type PodCertificateKeyType = 'RSA3072' | 'RSA4096' | 'ECDSAP256' | 'ECDSAP384' | 'ECDSAP521' | 'ED25519';

export interface PodCertificateRequestSpec {
  signerName: string;
  podName: string;
  podUID: string;
  /** Verified by the API server (NodeRestriction) against the pod. */
  serviceAccountName: string;
  serviceAccountUID: string;
  nodeName: string;
  nodeUID: string;
  /** Defaulted to 86400 by the API server; at least 3600, at most 7862400. */
  maxExpirationSeconds?: number;
  /** Base64 of the DER PKCS#10 request the kubelet signed with the new key (subject empty). */
  stubPKCS10Request: string;
  unverifiedUserAnnotations?: Record<string, string>;
}

export interface PodCertificateRequestStatus {
  /** At most one of Issued, Denied, Failed, with status True; the whole status is immutable after it. */
  conditions?: Condition[];
  certificateChain?: string;
  notBefore?: string;
  beginRefreshAt?: string;
  notAfter?: string;
}

export interface PodCertificateRequest {
  apiVersion: 'certificates.k8s.io/v1';
  kind: 'PodCertificateRequest';
  metadata: ObjectMeta;
  spec: PodCertificateRequestSpec;
  status?: PodCertificateRequestStatus;
}
