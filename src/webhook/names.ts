// Names the webhook owns: the opt-in label, its annotations, the injected
// volume, and the Kubernetes objects it serves from and keeps current.
import { GROUP } from '../api/group.ts';

/** A pod opts in with `agentidentity.dev/agent: <AgentIdentity name>`. */
export const LABEL_AGENT = `${GROUP}/agent`;
/** Optional: `a,b` — inject only into these containers (or initContainers) instead of all of them. */
export const ANNOTATION_INJECT_CONTAINERS = `${GROUP}/inject-containers`;
/** Written by the webhook: what it injected, as small JSON (see InjectionSummary). */
export const ANNOTATION_INJECTED = `${GROUP}/injected`;

/** The one projected volume the webhook adds; the name is reserved for it. */
export const IDENTITY_VOLUME = 'agent-identity';

export { policyConfigMapName } from '../api/defaults.ts';

export const WEBHOOK_CONFIGURATION_NAME = 'agent-identity-operator';
export const WEBHOOK_SERVICE_NAME = 'agent-identity-operator-webhook';
// Not "<x>-ca": that is the shape of TrustDomain CA Secret names, which must never collide with this one.
export const WEBHOOK_CA_SECRET = 'agent-identity-webhook-root';
export const WEBHOOK_TLS_SECRET = 'agent-identity-webhook-tls';
