// What an informer need not keep of the objects it caches. A ServiceAccount
// is only ever looked up to see that it exists; the rest of it (annotations
// such as a last-applied copy or a cloud role binding, secrets, pull secrets)
// would be held for every ServiceAccount in the cluster, not only agents'.
import type { ObjectMeta } from '../api/types.ts';

/** Keeps the name, namespace, uid and resourceVersion (and deletionTimestamp): enough to say it exists, and which version. */
export function existenceOnly<T extends { metadata: ObjectMeta }>(o: T): void {
  const { name, namespace, uid, resourceVersion, deletionTimestamp } = o.metadata;
  const fields = o as Record<string, unknown>;
  for (const key of Object.keys(fields)) if (key !== 'apiVersion' && key !== 'kind' && key !== 'metadata') delete fields[key];
  o.metadata = { name, namespace, uid, resourceVersion, ...(deletionTimestamp ? { deletionTimestamp } : {}) };
}
