// Which AgentIdentities a review can be about, read by name and by Secret
// name instead of listing the namespace: one LIST per pod was 24 MiB and
// 1.2 s at 10,000 identities in a namespace (issue 20), past the webhook's
// 2 s lookup budget under any load. The checks (validate.ts, identity.ts)
// only ever ask for an identity by name, by the UID a Secret's owner reference
// names, or by the Secret it claims; every identity any of those can return is
// in what these functions read, so the checks decide exactly as over a LIST.
// One exception, stricter: an owner reference is read by its name, so one whose
// name and UID belong to different identities (only a forged one can) finds
// no owner, and the pod is refused where a LIST found the owner by UID.
import type { AgentIdentity, ObjectMeta } from '../api/types.ts';
import { isObjectName, requestedIdentity } from './mutate.ts';
import type { Pod } from './pod.ts';
import { defaultSecretOwnerName, identityOwnerOf, podCertificatesOf } from './validate.ts';

export interface IdentityLookup {
  /** Undefined only when the API server answered 404. */
  get(namespace: string, name: string): Promise<AgentIdentity | undefined>;
  /**
   * The identities whose spec.secretName or status.secretName is `secretName` (field selectors; the
   * default name `<identity>-identity` is found by get). Never a list of the whole namespace.
   */
  claimants(namespace: string, secretName: string): Promise<AgentIdentity[]>;
}

/** Every identity of the namespace whose Secret is `secretName` (spec, or its default name) or was (status, after a rename). */
export async function claimantsOf(lookup: IdentityLookup, namespace: string, secretName: string): Promise<AgentIdentity[]> {
  const byDefault = defaultSecretOwnerName(secretName);
  const [claiming, named] = await Promise.all([lookup.claimants(namespace, secretName), byDefault ? lookup.get(namespace, byDefault) : undefined]);
  return distinct([...claiming, ...(named ? [named] : [])]);
}

/**
 * What a pod's checks can be about: the identity its label names, those its
 * pod certificates name, the owners of the Secrets it uses, and whoever claims
 * a Secret it uses that no identity owns. `secrets`: the referenced Secrets'
 * metadata, by name (absent: the Secret does not exist).
 */
export async function identitiesForPod(lookup: IdentityLookup, namespace: string, pod: Pod, secretNames: readonly string[], secrets: ReadonlyMap<string, ObjectMeta>): Promise<AgentIdentity[]> {
  const names = new Set([requestedIdentity(pod), ...podCertificatesOf(pod).map((p) => p.agent)].filter((n): n is string => n !== undefined && isObjectName(n)));
  const unowned: string[] = [];
  for (const secretName of secretNames) {
    const owner = identityOwnerOf(secrets.get(secretName));
    // Whoever may write the Secret wrote its owner reference: a name no object can have is never read (nor can it be the owner).
    if (owner) {
      if (isObjectName(owner.name)) names.add(owner.name);
    } else {
      unowned.push(secretName);
    }
  }
  const [named, claimed] = await Promise.all([
    inChunks([...names], (n) => lookup.get(namespace, n)),
    inChunks(unowned, (s) => claimantsOf(lookup, namespace, s)),
  ]);
  return distinct([...named.filter((i) => i !== undefined), ...claimed.flat()]);
}

/** A pod may name up to 100 Secrets (validate.ts): a few reads in flight at a time, not hundreds at once. */
const READS_AT_ONCE = 8;

async function inChunks<T, R>(items: readonly T[], read: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += READS_AT_ONCE) out.push(...await Promise.all(items.slice(i, i + READS_AT_ONCE).map(read)));
  return out;
}

function distinct(identities: AgentIdentity[]): AgentIdentity[] {
  return [...new Map(identities.map((i) => [i.metadata.uid ?? `${i.metadata.name}`, i])).values()];
}
