// Writing a ConfigMap the operator owns (a bundle copy, a policy) into a
// namespace tenants also write: controller/owned.ts's rule, for ConfigMaps.
import type { ConfigMap } from '../api/types.ts';
import { writeOwned } from '../controller/owned.ts';
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
export function writeOwnedConfigMap(
  api: ConfigMapApi, cached: ConfigMap | undefined, build: (existing?: ConfigMap) => ConfigMap, ours: (cm: ConfigMap) => boolean,
): Promise<ConfigMap | undefined> {
  const owned = { get: (ns: string, name: string) => api.getConfigMap(ns, name), create: (cm: ConfigMap) => api.createConfigMap(cm), replace: (cm: ConfigMap) => api.replaceConfigMap(cm) };
  return writeOwned(owned, cached, build, { ours, differs: configMapDiffers });
}
