// When a Pod is created (or gains an ephemeral container) → refuse it if it
// would hold an identity that is not its own:
//   - it asks for an AgentIdentity (label) that does not exist in its namespace;
//   - it asks for one that belongs to another ServiceAccount;
//   - it names containers to inject into that it does not have, or mounts
//     something else where the identity goes;
//   - labelled or not, it reaches an identity's Secret (volume, projected
//     volume, env, envFrom) while running as another ServiceAccount.
//
// Pure: the pod and the AgentIdentities of its namespace in, a verdict out.
// Identity Secrets are known from the AgentIdentities (secretName → owner), so
// the webhook never reads a Secret. Rules are an ordered list of small checks,
// as in cert-manager: the first that fails is the answer.
import { secretNameOf } from '../api/defaults.ts';
import { DEFAULT_IDENTITY_DIR } from '../api/documents.ts';
import type { AgentIdentity } from '../api/types.ts';
import { foreignMountAt, requestedContainers, requestedIdentity } from './mutate.ts';
import { ANNOTATION_INJECT_CONTAINERS, IDENTITY_VOLUME, LABEL_AGENT } from './names.ts';
import { containersOf, describeContainer, describePod, type Pod, secretReferencesOf, serviceAccountOf } from './pod.ts';

export type DenyReason =
  | 'IdentityNotFound'
  | 'ServiceAccountMismatch'
  | 'InjectContainersUnknown'
  | 'IdentityDirectoryInUse'
  | 'IdentitySecretOfAnotherServiceAccount';

export interface Denial {
  reason: DenyReason;
  message: string;
}

export type Verdict = { allowed: true } | ({ allowed: false } & Denial);

export interface PodAdmission {
  pod: Pod;
  /** The request's namespace: a pod's own metadata.namespace may still be empty at admission. */
  namespace: string;
  /** Every AgentIdentity in that namespace. */
  identities: AgentIdentity[];
  mountPath?: string;
}

export interface Rule {
  name: string;
  check: (a: PodAdmission) => Denial | undefined;
}

/** Does the webhook need the namespace's AgentIdentities to judge this pod? Unrelated pods are allowed without an API call. */
export function needsIdentities(pod: Pod): boolean {
  return requestedIdentity(pod) !== undefined || secretReferencesOf(pod).length > 0;
}

const find = (a: PodAdmission, name: string) => a.identities.find((i) => i.metadata.name === name);

/** `"a", "b"`, or `"a", "b", … and 9998 more`: a message stays readable however long the list it is about. */
function quoteSome(names: string[], max = 10): string {
  const shown = names.slice(0, max).map((n) => `"${n}"`).join(', ');
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}

const identityExists: Rule = {
  name: 'identityExists',
  check(a) {
    const name = requestedIdentity(a.pod);
    if (name === undefined || find(a, name)) return undefined;
    if (name === '') {
      return { reason: 'IdentityNotFound', message: `${describePod(a.pod)} has the label ${LABEL_AGENT} with an empty value; set it to the name of an AgentIdentity in namespace "${a.namespace}"` };
    }
    return {
      reason: 'IdentityNotFound',
      message: `${describePod(a.pod)} asks for AgentIdentity "${name}" (label ${LABEL_AGENT}), but namespace "${a.namespace}" has no AgentIdentity "${name}"; create it, or correct the label`,
    };
  },
};

const serviceAccountMatches: Rule = {
  name: 'serviceAccountMatches',
  check(a) {
    const name = requestedIdentity(a.pod);
    const identity = name ? find(a, name) : undefined;
    if (!identity) return undefined;
    const runsAs = serviceAccountOf(a.pod);
    const owner = identity.spec.serviceAccountName;
    if (runsAs === owner) return undefined;
    return {
      reason: 'ServiceAccountMismatch',
      message: `${describePod(a.pod)} runs as ServiceAccount "${runsAs}", but AgentIdentity "${name}" belongs to ServiceAccount "${owner}"; set spec.serviceAccountName: ${owner} in the pod (or its workload's pod template)`,
    };
  },
};

const injectContainersExist: Rule = {
  name: 'injectContainersExist',
  check(a) {
    const named = requestedContainers(a.pod);
    if (requestedIdentity(a.pod) === undefined || named === undefined) return undefined;
    const have = containersOf(a.pod, ['containers', 'initContainers']).map((c) => c.container.name);
    const haveSet = new Set(have);
    const missing = [...named].filter((n) => !haveSet.has(n));
    if (named.size > 0 && missing.length === 0) return undefined;
    const what = named.size === 0 ? 'is empty' : `names ${quoteSome(missing)}, which ${missing.length === 1 ? 'is' : 'are'} not among them`;
    return {
      reason: 'InjectContainersUnknown',
      message: `${describePod(a.pod)} has containers ${quoteSome(have)}; the annotation ${ANNOTATION_INJECT_CONTAINERS} ${what}`,
    };
  },
};

const identityDirectoryFree: Rule = {
  name: 'identityDirectoryFree',
  check(a) {
    if (requestedIdentity(a.pod) === undefined) return undefined;
    const mountPath = a.mountPath ?? DEFAULT_IDENTITY_DIR;
    const named = requestedContainers(a.pod);
    for (const c of containersOf(a.pod, ['containers', 'initContainers'])) {
      if (named !== undefined && !named.has(c.container.name)) continue;
      const other = foreignMountAt(c.container, mountPath);
      if (other) {
        return {
          reason: 'IdentityDirectoryInUse',
          message: `${describeContainer(c)} of ${describePod(a.pod)} mounts volume "${other.name}" at ${mountPath}, where the identity volume "${IDENTITY_VOLUME}" goes; mount it elsewhere, or leave the container out with the annotation ${ANNOTATION_INJECT_CONTAINERS}`,
        };
      }
    }
    return undefined;
  },
};

const identitySecretsStayWithTheirServiceAccount: Rule = {
  name: 'identitySecretsStayWithTheirServiceAccount',
  check(a) {
    const runsAs = serviceAccountOf(a.pod);
    // status.secretName too: after a rename the old Secret may still exist for a moment.
    const owners = new Map<string, AgentIdentity>();
    for (const i of a.identities) {
      owners.set(secretNameOf(i), i);
      if (i.status?.secretName) owners.set(i.status.secretName, i);
    }
    for (const ref of secretReferencesOf(a.pod)) {
      const identity = owners.get(ref.secretName);
      if (!identity || identity.spec.serviceAccountName === runsAs) continue;
      return {
        reason: 'IdentitySecretOfAnotherServiceAccount',
        message: `${describePod(a.pod)} runs as ServiceAccount "${runsAs}" but uses Secret "${ref.secretName}" (${ref.where}); that Secret holds the private key of AgentIdentity "${identity.metadata.name}", which only pods running as ServiceAccount "${identity.spec.serviceAccountName}" may use`,
      };
    }
    return undefined;
  },
};

/** In order: the first rule that fails decides. */
export const RULES: readonly Rule[] = [
  identityExists,
  serviceAccountMatches,
  injectContainersExist,
  identityDirectoryFree,
  identitySecretsStayWithTheirServiceAccount,
];

export function validatePod(a: PodAdmission): Verdict {
  for (const rule of RULES) {
    const denial = rule.check(a);
    if (denial) return { allowed: false, ...denial };
  }
  return { allowed: true };
}
