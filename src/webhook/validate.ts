// When a Pod is created (or gains an ephemeral container) → refuse it if it
// would hold an identity that is not its own:
//   - it asks for an AgentIdentity (label) that does not exist in its namespace;
//   - it asks for one that belongs to another ServiceAccount;
//   - its identity's policy ConfigMap exists but is not the operator's (not
//     controlled by that AgentIdentity): the pod would read a tenant's policy;
//   - it names containers to inject into that it does not have, or mounts
//     something else where the identity goes;
//   - its identity has spec.proxy, and the pod shares what keeps the proxy
//     apart (the node's network or processes, one process namespace, a debug
//     container in the proxy's), or a container other than the proxy reaches
//     the identity (its volume, its Secret, a pod certificate of our signer):
//     the key is the proxy's alone;
//   - labelled or not, it reaches an identity's Secret (volume, projected
//     volume, env, envFrom) while running as another ServiceAccount.
//
// Whose Secret it is comes first from the Secret itself: its controller owner
// reference names the AgentIdentity (by UID) that really holds the key, and
// that owner wins over anything an AgentIdentity spec says. A Secret without
// such an owner (not issued yet, or unowned) is judged by claims: every
// AgentIdentity whose spec or status names it, and, while nobody does, the
// name pattern <name>-identity. Claims only ever refuse, never grant: a spec
// can name any Secret, so a claim must not hand one to its ServiceAccount.
//
// Pure: the pod, the AgentIdentities of its namespace and the metadata of the
// Secrets it references and of its policy ConfigMap in, a verdict out. Rules are an ordered list of small
// checks (controller/checks.ts), as in cert-manager: the first that fails is the answer.
import { firstViolation, type Check, type Violation } from '../controller/checks.ts';
import { DEFAULT_IDENTITY_DIR } from '../api/documents.ts';
import { deliveryOf } from '../api/defaults.ts';
import { AGENT_IDENTITY, GROUP, LABEL_MANAGED_BY, MANAGED_BY_VALUE, POD_CERTIFICATE_AGENT_ANNOTATION, SIGNER_NAME } from '../api/group.ts';
import { controllerOf, isControlledBy } from '../api/owner.ts';
import type { AgentIdentity, ObjectMeta, OwnerReference } from '../api/types.ts';
import { identitySecretName } from './delivery.ts';
import { foreignMountAt, isObjectName, requestedContainers, requestedIdentity } from './mutate.ts';
import { ANNOTATION_INJECT_CONTAINERS, IDENTITY_VOLUME, LABEL_AGENT, policyConfigMapName } from './names.ts';
import { type ContainerAt, containersOf, describeContainer, describePod, type Pod, secretReferencesOf, serviceAccountOf, type Volume } from './pod.ts';
import { PROXY_CONTAINER } from './sidecar.ts';

export type DenyReason =
  | 'IdentityNotFound'
  | 'ServiceAccountMismatch'
  | 'PolicyConfigMapConflict'
  | 'BundleConfigMapConflict'
  | 'InjectContainersUnknown'
  | 'IdentityDirectoryInUse'
  | 'IdentityOutsideProxy'
  | 'ProxyNotIsolated'
  | 'IdentitySecretOfAnotherServiceAccount'
  | 'IdentitySecretReserved'
  | 'TooManySecrets';

export type Denial = Violation<DenyReason>;

export type Verdict = { allowed: true } | ({ allowed: false } & Denial);

export interface PodAdmission {
  pod: Pod;
  /** The request's namespace: a pod's own metadata.namespace may still be empty at admission. */
  namespace: string;
  /** Every AgentIdentity in that namespace. */
  identities: AgentIdentity[];
  /**
   * The metadata (never the data) of each Secret the pod references that
   * exists, by name; a referenced name missing here has no Secret (404).
   */
  secrets: ReadonlyMap<string, ObjectMeta>;
  /** The metadata of the requested identity's policy ConfigMap (see policyConfigMapToRead); absent when it does not exist. */
  policyConfigMap?: ObjectMeta;
  /**
   * For a pod-certificate identity, whose ca.crt comes from the trust bundle
   * ConfigMap in the pod's namespace: that ConfigMap's metadata (absent when it
   * does not exist) and the UID of the TrustDomain that must control it.
   */
  bundle?: { configMap?: ObjectMeta; trustDomainUID: string };
  mountPath?: string;
}

/** Does the webhook need the namespace's AgentIdentities to judge this pod? Unrelated pods are allowed without an API call. */
export function needsIdentities(pod: Pod): boolean {
  return requestedIdentity(pod) !== undefined || secretReferencesOf(pod).length > 0 || podCertificatesOf(pod).length > 0;
}

/** The podCertificate sources of our signer in the pod's own volumes, with the AgentIdentity each names (userAnnotations). */
export function podCertificatesOf(pod: Pod): Array<{ volume: string; agent: string | undefined }> {
  return (pod.spec.volumes ?? []).flatMap((v) => (v.projected?.sources ?? [])
    .map((s) => s.podCertificate as { signerName?: string; userAnnotations?: Record<string, string> } | undefined)
    .filter((p) => p?.signerName === SIGNER_NAME)
    .map((p) => ({ volume: v.name, agent: p!.userAnnotations?.[POD_CERTIFICATE_AGENT_ANNOTATION] })));
}

/** Each Secret is read once per review, so a pod naming thousands cannot turn one review into thousands of reads. */
export const MAX_REFERENCED_SECRETS = 100;

/**
 * The Secrets whose metadata the webhook reads for this pod: each name once,
 * only names a Secret can have (anything else has no Secret to read, and must
 * not reach a URL path). Refused past MAX_REFERENCED_SECRETS.
 */
export function secretsToRead(pod: Pod): { names: string[] } | Denial {
  const names = [...new Set(secretReferencesOf(pod).map((r) => r.secretName))].filter(isObjectName);
  if (names.length <= MAX_REFERENCED_SECRETS) return { names };
  return {
    reason: 'TooManySecrets',
    message: `${describePod(pod)} references ${names.length} different Secrets; the webhook checks at most ${MAX_REFERENCED_SECRETS} per pod, so split it into pods that each need fewer`,
  };
}

/** The policy ConfigMap the injected volume names, for a labelled pod; undefined for an unlabelled one or a label no object can have. */
export function policyConfigMapToRead(pod: Pod): string | undefined {
  const name = requestedIdentity(pod);
  const configMap = name && policyConfigMapName(name);
  return configMap && isObjectName(configMap) ? configMap : undefined;
}

const find = (a: PodAdmission, name: string) => a.identities.find((i) => i.metadata.name === name);

/** `"a", "b"`, or `"a", "b", … and 9998 more`: a message stays readable however long the list it is about. */
function quoteSome(names: string[], max = 10): string {
  const shown = names.slice(0, max).map((n) => `"${n}"`).join(', ');
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}

const identityExists: Check<PodAdmission, DenyReason> = (a) => {
  const name = requestedIdentity(a.pod);
  if (name === undefined || find(a, name)) return undefined;
  if (name === '') {
    return { reason: 'IdentityNotFound', message: `${describePod(a.pod)} has the label ${LABEL_AGENT} with an empty value; set it to the name of an AgentIdentity in namespace "${a.namespace}"` };
  }
  return {
    reason: 'IdentityNotFound',
    message: `${describePod(a.pod)} asks for AgentIdentity "${name}" (label ${LABEL_AGENT}), but namespace "${a.namespace}" has no AgentIdentity "${name}"; create it, or correct the label`,
  };
};

const serviceAccountMatches: Check<PodAdmission, DenyReason> = (a) => {
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
};

// Pod-certificate delivery: a tenant who may create ConfigMaps can create
// <name>-identity-policy before the operator does. The reconciler then refuses to adopt it (and reports
// PolicyConfigMapConflict on the identity), but the injected volume names it,
// so without this rule the pod would read the tenant's policy.json. Only the
// controller owner UID proves it is the operator's. A ConfigMap that does not
// exist yet is no refusal: the projection is not optional, so the kubelet
// waits for it; the residual race (a tenant creating it after admission,
// before the operator does) is in docs/webhook.md.
// Secret delivery mounts policy.json from the identity Secret, whose owner the
// Secret checks above decide: a ConfigMap of that name is nobody's policy there.
const policyIsTheOperators: Check<PodAdmission, DenyReason> = (a) => {
  const name = requestedIdentity(a.pod);
  const identity = name ? find(a, name) : undefined;
  if (!identity || deliveryOf(identity) === 'Secret' || !a.policyConfigMap || isControlledBy({ metadata: a.policyConfigMap }, identity.metadata.uid)) return undefined;
  return {
    reason: 'PolicyConfigMapConflict',
    message: `ConfigMap ${a.namespace}/${policyConfigMapName(name!)} is not the operator's policy for AgentIdentity ${name} (it is not controlled by it); delete it — the operator will write the real one`,
  };
};

/** The identity a labelled pod asks for, when it exists. */
export function requestedIdentityOf(pod: Pod, identities: AgentIdentity[]): AgentIdentity | undefined {
  const name = requestedIdentity(pod);
  return name ? identities.find((i) => i.metadata.name === name) : undefined;
}

// The same squatting as above, for the trust anchor itself: a pod-certificate
// identity's ca.crt is projected from trust-bundle-<TrustDomain> in the pod's
// namespace, so a tenant's ConfigMap of that name would decide which roots the
// agent trusts. The operator's copy is controlled by the TrustDomain's UID.
const bundleIsTheOperators: Check<PodAdmission, DenyReason> = (a) => {
  const configMap = a.bundle?.configMap;
  if (!configMap || isControlledBy({ metadata: configMap }, a.bundle!.trustDomainUID)) return undefined;
  return {
    reason: 'BundleConfigMapConflict',
    message: `ConfigMap ${a.namespace}/${configMap.name} is not the operator's trust bundle (it is not controlled by its TrustDomain), and the pod would trust the roots in it; delete it — the operator will publish the real one`,
  };
};

const injectContainersExist: Check<PodAdmission, DenyReason> = (a) => {
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
};

const identityDirectoryFree: Check<PodAdmission, DenyReason> = (a) => {
  const name = requestedIdentity(a.pod);
  // With spec.proxy nothing is mounted into the agent's containers, so nothing is in the way.
  if (name === undefined || find(a, name)?.spec.proxy) return undefined;
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
};

/** Why a volume holds `identity`'s credentials, or undefined when it does not. */
function holdsIdentity(v: Volume, identity: AgentIdentity): string | undefined {
  if (v.name === IDENTITY_VOLUME) return `the identity volume "${IDENTITY_VOLUME}"`;
  const secretName = identitySecretName(identity);
  if (secretName !== undefined && (v.secret?.secretName === secretName || v.projected?.sources?.some((s) => s.secret?.name === secretName))) {
    return `volume "${v.name}", which projects Secret "${secretName}" (the identity's key)`;
  }
  // A pod certificate of our signer is this pod's identity, whatever the rest of the projection says.
  if (v.projected?.sources?.some((s) => (s.podCertificate as { signerName?: string } | undefined)?.signerName === SIGNER_NAME)) {
    return `volume "${v.name}", which projects a pod certificate of signer ${SIGNER_NAME} (the identity's key)`;
  }
  return undefined;
}

/** The first way `c` reaches the identity: a mount of a volume holding it, or its Secret in env or envFrom. */
function reachesIdentity(c: ContainerAt, holding: ReadonlyMap<string, string>, identity: AgentIdentity): string | undefined {
  for (const m of c.container.volumeMounts ?? []) {
    const what = holding.get(m.name);
    if (what) return `mounts ${what}`;
  }
  const secretName = identitySecretName(identity);
  if (secretName === undefined) return undefined;
  const env = c.container.env?.find((e) => e.valueFrom?.secretKeyRef?.name === secretName);
  if (env) return `reads Secret "${secretName}" (the identity's key) into env ${env.name}`;
  if (c.container.envFrom?.some((e) => e.secretRef?.name === secretName)) return `reads Secret "${secretName}" (the identity's key) through envFrom`;
  return undefined;
}

// What keeps the agent from the proxy's key and ports besides mounts. In one
// process namespace (or the node's) a container running as the proxy's uid
// (65532 is also distroless's "nonroot") reads its files through
// /proc/<pid>/root; a debug container aimed at the proxy joins its namespace.
// On the node's network 127.0.0.1 is the node's: the agent's plaintext port
// and the proxy's outbound port are open to every host-network pod, and no
// NetworkPolicy applies.
const podIsolatesProxy: Check<PodAdmission, DenyReason> = (a) => {
  const name = requestedIdentity(a.pod);
  if (!name || !find(a, name)?.spec.proxy) return undefined;
  const why = `AgentIdentity "${name}" has spec.proxy, and its identity proxy (${PROXY_CONTAINER}) must hold the key alone`;
  const shared = (['hostNetwork', 'hostPID', 'shareProcessNamespace'] as const).find((f) => a.pod.spec[f] === true);
  if (shared) {
    const what = shared === 'hostNetwork' ? 'its 127.0.0.1 would be the node\'s, open to every host-network pod' : 'its other containers could read the proxy\'s key through /proc';
    return { reason: 'ProxyNotIsolated', message: `${describePod(a.pod)} sets ${shared}: true, so ${what}; ${why}: remove ${shared}` };
  }
  const debugger_ = containersOf(a.pod, ['ephemeralContainers']).find((c) => c.container.targetContainerName === PROXY_CONTAINER);
  if (debugger_) {
    return { reason: 'ProxyNotIsolated', message: `${describeContainer(debugger_)} of ${describePod(a.pod)} targets ${PROXY_CONTAINER}, whose key it could read through /proc; ${why}: target the agent's container instead` };
  }
  return undefined;
};

// spec.proxy promises that a prompt-injected agent cannot read the key: only
// the proxy sidecar may reach the identity. Any other container that does
// (a manifest copied from before the opt-in, a debug container) is refused.
const identityOnlyInProxy: Check<PodAdmission, DenyReason> = (a) => {
  const name = requestedIdentity(a.pod);
  const identity = name ? find(a, name) : undefined;
  if (!identity?.spec.proxy) return undefined;
  const holding = new Map<string, string>();
  for (const v of a.pod.spec.volumes ?? []) {
    const what = holdsIdentity(v, identity);
    if (what) holding.set(v.name, what);
  }
  for (const c of containersOf(a.pod)) {
    if (c.list === 'initContainers' && c.container.name === PROXY_CONTAINER) continue;
    const how = reachesIdentity(c, holding, identity);
    if (!how) continue;
    return {
      reason: 'IdentityOutsideProxy',
      message: `${describeContainer(c)} of ${describePod(a.pod)} ${how}; AgentIdentity "${name}" has spec.proxy, so only its identity proxy (${PROXY_CONTAINER}) may hold the key: remove that from ${describeContainer(c)}, and let it call other agents through HTTP_PROXY`,
    };
  }
  return undefined;
};

// The same promise for pods that are not the identity's (no label, or
// another identity's label) but run as its ServiceAccount, such as a pod an
// agent creates with its own token: they may not take a proxy identity's key
// at all, neither its Secret nor a pod certificate naming it.
const proxyKeysOnlyInProxies: Check<PodAdmission, DenyReason> = (a) => {
  const own = requestedIdentity(a.pod);
  const byUID = new Map(a.identities.map((i) => [i.metadata.uid, i]));
  const claims = claimsOf(a.identities);
  const refuse = (identity: AgentIdentity, what: string): Denial => ({
    reason: 'IdentityOutsideProxy',
    message: `${describePod(a.pod)} ${what}; AgentIdentity "${identity.metadata.name}" has spec.proxy, so only its identity proxy may hold its key: label the pod ${LABEL_AGENT}: ${identity.metadata.name} and let the webhook inject the proxy, or remove that`,
  });
  for (const ref of secretReferencesOf(a.pod)) {
    const owner = identityOwnerOf(a.secrets.get(ref.secretName));
    const holders = owner ? [byUID.get(owner.uid)] : claims.get(ref.secretName) ?? [];
    const proxied = holders.find((i) => i?.spec.proxy && i.metadata.name !== own);
    if (proxied) return refuse(proxied, `uses Secret "${ref.secretName}" (${ref.where})`);
  }
  for (const pc of podCertificatesOf(a.pod)) {
    const identity = pc.agent === undefined ? undefined : find(a, pc.agent);
    if (identity?.spec.proxy && identity.metadata.name !== own) return refuse(identity, `asks for a pod certificate of AgentIdentity "${identity.metadata.name}" (volume "${pc.volume}")`);
  }
  return undefined;
};

/** The AgentIdentity a Secret's controller owner reference points at, if its controller is one. */
export function identityOwnerOf(meta: ObjectMeta | undefined): OwnerReference | undefined {
  const owner = meta && controllerOf({ metadata: meta });
  return owner?.kind === AGENT_IDENTITY.kind && owner.apiVersion.startsWith(`${GROUP}/`) ? owner : undefined;
}

/** `beta-identity` → `beta`: the Secret an AgentIdentity "beta" gets unless its spec names another. */
export function defaultSecretOwnerName(secretName: string): string | undefined {
  const name = secretName.endsWith('-identity') ? secretName.slice(0, -'-identity'.length) : '';
  return isObjectName(name) ? name : undefined;
}

/**
 * Every AgentIdentity that names a Secret in its spec or (after a rename, for
 * a moment) its status. A pod-certificate identity has no Secret to claim.
 */
function claimsOf(identities: AgentIdentity[]): Map<string, AgentIdentity[]> {
  const claims = new Map<string, AgentIdentity[]>();
  for (const i of identities) {
    const names = new Set([identitySecretName(i), i.status?.secretName].filter((n) => n !== undefined));
    for (const name of names) {
      const claimants = claims.get(name);
      if (claimants) claimants.push(i);
      else claims.set(name, [i]);
    }
  }
  return claims;
}

const identitySecretsStayWithTheirServiceAccount: Check<PodAdmission, DenyReason> = (a) => {
  const runsAs = serviceAccountOf(a.pod);
  const byUID = new Map(a.identities.map((i) => [i.metadata.uid, i]));
  const claims = claimsOf(a.identities);
  const seen = new Set<string>();
  for (const ref of secretReferencesOf(a.pod)) {
    if (seen.has(ref.secretName)) continue;
    seen.add(ref.secretName);
    const uses = `${describePod(a.pod)} runs as ServiceAccount "${runsAs}" but uses Secret "${ref.secretName}" (${ref.where})`;
    const holdsKeyOf = (i: AgentIdentity): Denial => ({
      reason: 'IdentitySecretOfAnotherServiceAccount',
      message: `${uses}; that Secret holds the private key of AgentIdentity "${i.metadata.name}", which only pods running as ServiceAccount "${i.spec.serviceAccountName}" may use`,
    });
    const meta = a.secrets.get(ref.secretName);
    const owner = identityOwnerOf(meta);
    if (owner) {
      // The owner wins: what specs claim does not matter once the Secret says whose it is.
      const identity = byUID.get(owner.uid);
      if (!identity) {
        return { reason: 'IdentitySecretReserved', message: `${uses}; that Secret holds the private key of AgentIdentity "${owner.name}", which no longer exists, so no pod may use it` };
      }
      if (identity.spec.serviceAccountName === runsAs) continue;
      return holdsKeyOf(identity);
    }
    const claimants = claims.get(ref.secretName);
    const other = claimants?.find((i) => i.spec.serviceAccountName !== runsAs);
    // Absent: what is created under this name will hold that identity's key.
    if (other && !meta) return holdsKeyOf(other);
    if (other) {
      return {
        reason: 'IdentitySecretOfAnotherServiceAccount',
        message: `${uses}; AgentIdentity "${other.metadata.name}" names that Secret as its identity Secret, so only pods running as ServiceAccount "${other.spec.serviceAccountName}" may use it`,
      };
    }
    if (claimants) continue;
    // Nobody claims it. Named like an identity Secret, and either absent or
    // labelled as the operator's (which it would adopt): it may be issued
    // to AgentIdentity "<name>" later, and a running pod keeps its reference.
    // An existing Secret of someone else's is never written by the operator.
    const future = defaultSecretOwnerName(ref.secretName);
    if (future && (!meta || meta.labels?.[LABEL_MANAGED_BY] === MANAGED_BY_VALUE)) {
      // It exists, so it has pod-certificate delivery (nothing else claims no Secret); re-created with Secret delivery it would get this one.
      if (find(a, future)) {
        return {
          reason: 'IdentitySecretReserved',
          message: `${uses}; that name is reserved for the identity Secret of AgentIdentity "${future}" (the default spec.secretName), which gets pod certificates and has no Secret now, but would keep its key there if re-created with Secret delivery; give the Secret another name`,
        };
      }
      return {
        reason: 'IdentitySecretReserved',
        message: `${uses}; that name is reserved for the identity Secret of AgentIdentity "${future}" (the default spec.secretName), which no AgentIdentity in namespace "${a.namespace}" holds yet, and only pods running as the ServiceAccount of the identity that gets it may use it; create AgentIdentity "${future}" first, or give the Secret another name`,
      };
    }
  }
  return undefined;
};

/** In order: the first rule that fails decides. */
export const RULES: readonly Check<PodAdmission, DenyReason>[] = [
  identityExists,
  serviceAccountMatches,
  policyIsTheOperators,
  bundleIsTheOperators,
  injectContainersExist,
  identityDirectoryFree,
  podIsolatesProxy,
  identityOnlyInProxy,
  proxyKeysOnlyInProxies,
  identitySecretsStayWithTheirServiceAccount,
];

export function validatePod(a: PodAdmission): Verdict {
  const denial = firstViolation(RULES, a);
  return denial ? { allowed: false, ...denial } : { allowed: true };
}
