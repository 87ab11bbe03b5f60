// Names of the Kubernetes objects the operator itself owns, apart from those
// it derives per AgentIdentity or TrustDomain: the operator, the CLI and the
// chart's defaults all mean these.
import { AGENT_IDENTITY, CLUSTER_FEDERATED_TRUST_DOMAIN, GROUP, TRUST_DOMAIN } from './group.ts';

/** Where the chart installs the operator; its CA Secrets, Lease and webhook Secrets live here. */
export const DEFAULT_OPERATOR_NAMESPACE = 'agent-identity-system';

/** The Lease the operator's replicas campaign for with --leader-elect. */
export const OPERATOR_LEASE = 'agent-identity-operator';

export const CRD_NAMES = [`${AGENT_IDENTITY.plural}.${GROUP}`, `${TRUST_DOMAIN.plural}.${GROUP}`, `${CLUSTER_FEDERATED_TRUST_DOMAIN.plural}.${GROUP}`] as const;

export const WEBHOOK_CONFIGURATION_NAME = 'agent-identity-operator';
export const WEBHOOK_SERVICE_NAME = 'agent-identity-operator-webhook';
// Not "<x>-ca": that is the shape of TrustDomain CA Secret names, which must never collide with this one.
export const WEBHOOK_CA_SECRET = 'agent-identity-webhook-root';
export const WEBHOOK_TLS_SECRET = 'agent-identity-webhook-tls';

/** The identity proxy's container name, reserved in every pod whose identity has spec.proxy (the webhook adds it; the operator probes beside it; `agent-identity audit` reads its logs). */
export const PROXY_CONTAINER = 'agent-identity-proxy';

/**
 * In the ConfigMap federated-bundle-<ClusterFederatedTrustDomain> (operator namespace, written by
 * the federation fetcher): the Roots accepted, as PEM, and the foreign trust domain they belong to.
 * The trust reconciler reads both to deliver the Roots to agents (FederatedBundlesDocument).
 */
export const FEDERATED_ROOTS_KEY = 'ca.crt';
export const FEDERATED_TRUST_DOMAIN_KEY = 'trust-domain';
