// Names the webhook owns: the opt-in label, its annotations and the injected
// volume. The objects it serves from and keeps current are named in
// api/names.ts, which the CLI and the flags' defaults read too.
import { GROUP } from '../api/group.ts';

export { LABEL_AGENT } from '../api/group.ts';
/** Optional: `a,b` — inject only into these containers (or initContainers) instead of all of them. */
export const ANNOTATION_INJECT_CONTAINERS = `${GROUP}/inject-containers`;
/** Written by the webhook: what it injected, as small JSON (see InjectionSummary). */
export const ANNOTATION_INJECTED = `${GROUP}/injected`;

/** The one projected volume the webhook adds; the name is reserved for it. */
export const IDENTITY_VOLUME = 'agent-identity';

export { policyConfigMapName } from '../api/defaults.ts';

export { WEBHOOK_CA_SECRET, WEBHOOK_CONFIGURATION_NAME, WEBHOOK_SERVICE_NAME, WEBHOOK_TLS_SECRET } from '../api/names.ts';
