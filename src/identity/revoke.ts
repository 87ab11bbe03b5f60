// Revocation: put a certificate on its trust domain's deny list. The list's
// home is the bundle ConfigMap in the operator's namespace; the trust
// reconciler copies it next to every published bundle and prunes it.
import { BUNDLE_DENYLIST, ANNOTATION_SERIAL, ANNOTATION_SPIFFE_ID, ANNOTATION_NOT_AFTER } from '../api/group.ts';
import { FILES, type DenyListEntry } from '../api/documents.ts';
import type { ConfigMap, Secret } from '../api/types.ts';
import { desiredBundleConfigMap } from '../trust/publish.ts';
import { bundleConfigMapName } from '../api/defaults.ts';
import { parseDenyList, serializeDenyList, withEntries } from '../trust/denylist.ts';
import type { TrustDomainState } from '../trust/store.ts';

/** The entry for the certificate a Secret holds, or none when it has already expired. */
export function denyEntryOf(secret: Secret, reason: string, now: Date): DenyListEntry | undefined {
  const a = secret.metadata.annotations ?? {};
  const serialNumber = a[ANNOTATION_SERIAL];
  const notAfter = a[ANNOTATION_NOT_AFTER];
  if (!serialNumber || !notAfter || new Date(notAfter).getTime() <= now.getTime()) return undefined;
  return { serialNumber, spiffeID: a[ANNOTATION_SPIFFE_ID] ?? '', notAfter, reason };
}

/** A pod certificate as the signer's ledger records it (signer/ledger.ts PodCertificate). */
export interface PodCertificateOnRecord {
  namespace: string;
  identity: string;
  trustDomain: string;
  serialNumber: string;
  spiffeID: string;
  notAfter: Date;
}

/** The entry for a pod certificate the signer issued. */
export function denyEntryOfPodCertificate(c: PodCertificateOnRecord, reason: string): DenyListEntry {
  return { serialNumber: c.serialNumber, spiffeID: c.spiffeID, notAfter: c.notAfter.toISOString(), reason };
}

export interface RevokeDeps {
  api: { createConfigMap(cm: ConfigMap): Promise<ConfigMap>; replaceConfigMap(cm: ConfigMap): Promise<ConfigMap> };
  configMaps: { get(name: string, namespace?: string): ConfigMap | undefined };
  operatorNamespace: string;
}

/** Adds the entries to the deny list's home copy in one write; a stale cache fails with 409 and is retried. */
export async function revoke(d: RevokeDeps, trustDomain: TrustDomainState, entries: DenyListEntry[]): Promise<void> {
  const home = d.configMaps.get(bundleConfigMapName(trustDomain.name), d.operatorNamespace);
  const list = parseDenyList(trustDomain.trustDomain, home?.data?.[BUNDLE_DENYLIST]);
  const listed = new Set(list.entries.map((e) => e.serialNumber));
  if (entries.every((e) => listed.has(e.serialNumber))) return;
  const cm = desiredBundleConfigMap(trustDomain.name, d.operatorNamespace, home?.data?.['ca.crt'] ?? trustDomain.bundlePem, serializeDenyList(withEntries(list, entries)), home, undefined, home?.data?.[FILES.federatedBundles]);
  await (home ? d.api.replaceConfigMap(cm) : d.api.createConfigMap(cm));
}
