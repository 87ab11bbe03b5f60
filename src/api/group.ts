// API group, versions, names, and the label/annotation keys the operator owns.
export const GROUP = 'agentidentity.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

export const AGENT_IDENTITY = { kind: 'AgentIdentity', plural: 'agentidentities', listKind: 'AgentIdentityList' } as const;
export const TRUST_DOMAIN = { kind: 'TrustDomain', plural: 'trustdomains', listKind: 'TrustDomainList' } as const;
export const CLUSTER_FEDERATED_TRUST_DOMAIN = { kind: 'ClusterFederatedTrustDomain', plural: 'clusterfederatedtrustdomains', listKind: 'ClusterFederatedTrustDomainList' } as const;

/** Every Secret and ConfigMap the operator writes carries this label; the operator watches only those. */
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'agent-identity-operator';
export const MANAGED_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY_VALUE}`;

/** Which AgentIdentity (name) a leaf Secret belongs to. */
export const LABEL_IDENTITY = `${GROUP}/identity`;
/** A pod opts in with `agentidentity.dev/agent: <AgentIdentity name>`; the proxy's NetworkPolicy selects its pods by it. */
export const LABEL_AGENT = `${GROUP}/agent`;
/** Which ClusterFederatedTrustDomain (name) a fetched bundle ConfigMap belongs to. */
export const LABEL_FEDERATED_TRUST_DOMAIN = `${GROUP}/federated-trust-domain`;
/**
 * Set by the webhook on every pod it gives the identity proxy, to the
 * AgentIdentity's name: the operator watches only pods with this label (the
 * app-port check, identity/app-port.ts), and trusts it only as far as the
 * pod's immutable fields agree (its ServiceAccount, the proxy sidecar).
 */
export const LABEL_PROXY = `${GROUP}/proxy`;
/** Which TrustDomain a CA Secret belongs to. */
export const LABEL_TRUST_DOMAIN = `${GROUP}/trust-domain`;

export const ANNOTATION_SPIFFE_ID = `${GROUP}/spiffe-id`;
export const ANNOTATION_SERIAL = `${GROUP}/serial-number`;
export const ANNOTATION_NOT_AFTER = `${GROUP}/not-after`;
/** Why the certificate in the Secret was issued; status reports it from here so it travels with the certificate. */
export const ANNOTATION_ISSUANCE_REASON = `${GROUP}/issuance-reason`;

/** Keys in a leaf Secret (type kubernetes.io/tls). */
export const SECRET_CERT = 'tls.crt';
export const SECRET_KEY = 'tls.key';
export const SECRET_BUNDLE = 'ca.crt';

export const FIELD_MANAGER = 'agent-identity-operator';

/** Set on an AgentIdentity (any new value, e.g. a timestamp) to renew it now: `agent-identity renew` does this. */
export const ANNOTATION_RENEW_REQUESTED_AT = `${GROUP}/renew-requested-at`;
/** Set on a TrustDomain (any new value) to rotate its root now: `agent-identity ca rotate` does this. */
export const ANNOTATION_ROTATE_REQUESTED_AT = `${GROUP}/rotate-requested-at`;
/** On an identity Secret: the renew-requested-at value its certificate answers. */
export const ANNOTATION_RENEWAL_REQUEST = `${GROUP}/renewal-request`;
/** On an identity Secret: fingerprint of the root its leaf chains to, so rotation progress is a cache scan. */
export const ANNOTATION_ROOT_FINGERPRINT = `${GROUP}/root-fingerprint`;
/**
 * The signer name of the operator's PodCertificateRequest signer: one name for
 * every TrustDomain, since the AgentIdentity a pod asks for (below) names its
 * TrustDomain, and one name keeps the RBAC (`sign` on one signer) and the
 * pod's projection independent of which CA signs.
 */
export const SIGNER_NAME = `${GROUP}/svid`;
/** The one key a pod's podCertificate projection may pass in userAnnotations: the AgentIdentity (same namespace) it asks for. */
export const POD_CERTIFICATE_AGENT_ANNOTATION = `${GROUP}/agent`;
/**
 * On a PodCertificateRequest the signer issued: keeps the object (its chain,
 * notAfter, root and identity) until the certificate expires, so root
 * retirement and revocation know every pod certificate that may still be valid
 * even after the API's cleaner deleted the request.
 */
export const FINALIZER_POD_CERTIFICATE = `${GROUP}/pod-certificate`;
/** Finalizer that records a deleted identity's serial on the deny list before its Secret goes. */
export const FINALIZER_REVOKE = `${GROUP}/revoke`;
/** Bundle ConfigMaps are named trust-bundle-<TrustDomain>; like CA Secrets, they carry LABEL_TRUST_DOMAIN. */
export const BUNDLE_CONFIGMAP_PREFIX = 'trust-bundle-';
/** Key of the deny list in bundle ConfigMaps. */
export const BUNDLE_DENYLIST = 'denylist.json';
