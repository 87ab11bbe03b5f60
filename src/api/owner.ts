// Whether the operator owns an object. Labels and names can be set by anyone
// who may write the namespace; the controller owner reference's UID names
// exactly one object, so it is the only proof (apimachinery's IsControlledBy).
import type { ObjectMeta, OwnerReference } from './types.ts';

export function controllerOf(o: { metadata: ObjectMeta }): OwnerReference | undefined {
  return o.metadata.ownerReferences?.find((r) => r.controller);
}

export function isControlledBy(o: { metadata: ObjectMeta }, ownerUID: string | undefined): boolean {
  return ownerUID !== undefined && controllerOf(o)?.uid === ownerUID;
}

/** "AgentIdentity beta", or "nobody" for an object without a controller. */
export function describeController(o: { metadata: ObjectMeta }): string {
  const r = controllerOf(o);
  return r ? `${r.kind} ${r.name}` : 'no controller';
}
