// Which identity a Secret name belongs to. Pure. Only the controller owner
// reference's UID proves a Secret is an identity's: revocation, status and
// every write act on nothing else. Before any Secret exists, the oldest
// identity naming it holds the claim, so a later one cannot take it first.
import { secretNameOf } from '../api/defaults.ts';
import { controllerOf, describeController } from '../api/owner.ts';
import type { AgentIdentity, Secret } from '../api/types.ts';

export const SECRET_OWNED_BY_ANOTHER = 'SecretOwnedByAnother';

/** Why `identity` may not use the Secret its spec names, or undefined when it may. */
/** `claimants`: the identities that may name the same Secret (any others are skipped); read only while no Secret exists. */
export function foreignClaim(identity: AgentIdentity, secret: Secret | undefined, claimants: readonly AgentIdentity[]): string | undefined {
  const where = `Secret ${identity.metadata.namespace}/${secretNameOf(identity)}`;
  if (secret) {
    const owner = controllerOf(secret);
    return owner && owner.uid !== identity.metadata.uid ? `${where} belongs to ${describeController(secret)}; choose another spec.secretName` : undefined;
  }
  const rival = claimants.find((o) => o.metadata.namespace === identity.metadata.namespace && o.metadata.uid !== identity.metadata.uid
    && !o.metadata.deletionTimestamp && secretNameOf(o) === secretNameOf(identity) && olderThan(o, identity));
  return rival ? `${where} is claimed by the older AgentIdentity ${rival.metadata.name}; choose another spec.secretName` : undefined;
}

/** Creation time (RFC 3339 at second precision sorts as text), then name: a total order. */
function olderThan(a: AgentIdentity, b: AgentIdentity): boolean {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  return ta !== tb ? ta < tb : a.metadata.name! < b.metadata.name!;
}
