// Writing a ConfigMap the operator owns into a namespace tenants also write.
// A name proves nothing: a tenant may have created the object first, or
// stripped its managed-by label so it fell out of the label-filtered cache.
// Ours (by owner UID) is restored; anyone else's is never overwritten.
import type { ConfigMap } from '../api/types.ts';
import { isAlreadyExists } from '../kube/errors.ts';
import { configMapDiffers } from './publish.ts';

export interface ConfigMapApi {
  getConfigMap(namespace: string, name: string): Promise<ConfigMap>;
  createConfigMap(cm: ConfigMap): Promise<ConfigMap>;
  replaceConfigMap(cm: ConfigMap): Promise<ConfigMap>;
}

/**
 * Writes what `build` describes (given the object it replaces) when it differs,
 * unless the ConfigMap of that name is not `ours`: then nothing is written and
 * that foreign ConfigMap is returned for the caller to report.
 */
export async function writeOwnedConfigMap(
  api: ConfigMapApi, cached: ConfigMap | undefined, build: (existing?: ConfigMap) => ConfigMap, ours: (cm: ConfigMap) => boolean,
): Promise<ConfigMap | undefined> {
  if (cached) {
    if (!ours(cached)) return cached;
    const want = build(cached);
    if (configMapDiffers(cached, want)) await api.replaceConfigMap(want);
    return undefined;
  }
  const want = build();
  try {
    await api.createConfigMap(want);
    return undefined;
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
  // Not in the cache yet exists: unlabelled (or a lagging watch). Only a read tells whose it is.
  const live = await api.getConfigMap(want.metadata.namespace!, want.metadata.name!);
  if (!ours(live)) return live;
  await api.replaceConfigMap(build(live));
  return undefined;
}
