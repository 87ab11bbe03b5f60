// Writing an object the operator owns into a namespace tenants also write.
// A name proves nothing: a tenant may have created the object first, or
// stripped its managed-by label so it fell out of the label-filtered cache.
// Ours (by owner UID) is restored; anyone else's is never overwritten.
import { isAlreadyExists } from '../kube/errors.ts';
import type { KubeObject } from './controller.ts';

export interface OwnedApi<T> {
  get(namespace: string, name: string): Promise<T>;
  create(obj: T): Promise<unknown>;
  replace(obj: T): Promise<unknown>;
}

export interface Ownership<T> {
  /** Whether an object of that name is the caller's (its controller owner reference's UID). */
  ours(obj: T): boolean;
  /** Whether what is there differs from what `build` describes in anything the caller owns. */
  differs(have: T, want: T): boolean;
}

/**
 * Writes what `build` describes (given the object it replaces) when it differs,
 * unless the object of that name is not `ours`: then nothing is written and
 * that foreign object is returned for the caller to report.
 */
export async function writeOwned<T extends KubeObject>(api: OwnedApi<T>, cached: T | undefined, build: (existing?: T) => T, o: Ownership<T>): Promise<T | undefined> {
  if (cached) {
    if (!o.ours(cached)) return cached;
    const want = build(cached);
    if (o.differs(cached, want)) await api.replace(want);
    return undefined;
  }
  const want = build();
  try {
    await api.create(want);
    return undefined;
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
  // Not in the cache yet exists: unlabelled (or a lagging watch). Only a read tells whose it is.
  const live = await api.get(want.metadata.namespace!, want.metadata.name!);
  if (!o.ours(live)) return live;
  await api.replace(build(live));
  return undefined;
}
