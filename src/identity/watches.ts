// Which identities another object's change concerns: the mappings the
// identity controller is declared with (operator.ts). Each reads one group of
// an index (controller/indexer.ts), never a filter over every identity.
import { bundleConfigMapName, secretNameOf, trustDomainOf } from '../api/defaults.ts';
import { BUNDLE_DENYLIST, LABEL_IDENTITY, LABEL_TRUST_DOMAIN, SECRET_BUNDLE } from '../api/group.ts';
import type { AgentIdentity, ConfigMap, Namespace, ServiceAccount, TrustDomain } from '../api/types.ts';
import { objectKey, type Mapper, type Predicate, type Source } from '../controller/controller.ts';
import { Indexer } from '../controller/indexer.ts';

/** The identities by what other objects find them by. */
export interface IdentityIndexes {
  byTrustDomain: { of(trustDomain: string): readonly AgentIdentity[] };
  /** By `namespace/serviceAccountName`. */
  byServiceAccount: { of(key: string): readonly AgentIdentity[] };
  /** By `namespace/secretName`: who claims a Secret (ownership.ts). */
  bySecret: { of(key: string): readonly AgentIdentity[] };
}

export function identityIndexes(identities: Source<AgentIdentity>): IdentityIndexes {
  return {
    byTrustDomain: new Indexer(identities, trustDomainOf),
    byServiceAccount: new Indexer(identities, (i) => `${i.metadata.namespace}/${i.spec.serviceAccountName}`),
    bySecret: new Indexer(identities, secretKeyOf),
  };
}

export const secretKeyOf = (i: AgentIdentity): string => `${i.metadata.namespace}/${secretNameOf(i)}`;

/** A TrustDomain (its object, or its signing state by name): the identities it issues for. */
export const identitiesOfTrustDomain = (indexes: Pick<IdentityIndexes, 'byTrustDomain'>): Mapper<TrustDomain | string> => (td) =>
  indexes.byTrustDomain.of(typeof td === 'string' ? td : td.metadata.name!).map(objectKey);

/** A Namespace: its labels decide whether a TrustDomain admits the identities in it. */
export const identitiesInNamespace = (identities: { list(namespace?: string): readonly AgentIdentity[] }): Mapper<Namespace> => (n) =>
  identities.list(n.metadata.name!).map(objectKey);

/** A ServiceAccount appearing: an identity waits for it (ServiceAccountNotFound). */
export const identitiesOfServiceAccount = (indexes: Pick<IdentityIndexes, 'byServiceAccount'>): Mapper<ServiceAccount> => (sa) =>
  indexes.byServiceAccount.of(`${sa.metadata.namespace}/${sa.metadata.name}`).map(objectKey);

/**
 * What identities read of the home bundle copy: its bundle and deny list. A partner's bundle
 * (federated-bundles.json, for agents only) changing there must not queue every identity of the trust domain.
 */
export const bundleOrDenyListChanged: Predicate<ConfigMap> = (cm, old) => !old
  || cm.data?.[SECRET_BUNDLE] !== old.data?.[SECRET_BUNDLE] || cm.data?.[BUNDLE_DENYLIST] !== old.data?.[BUNDLE_DENYLIST]
  || JSON.stringify(cm.metadata.labels) !== JSON.stringify(old.metadata.labels);

/** The deny list's home copy (in the operator's namespace): every policy.json of its TrustDomain embeds it. */
export const identitiesOfDenyList = (indexes: Pick<IdentityIndexes, 'byTrustDomain'>, operatorNamespace: string): Mapper<ConfigMap> => (cm) => {
  const trustDomain = cm.metadata.labels?.[LABEL_TRUST_DOMAIN];
  if (!trustDomain || cm.metadata.labels?.[LABEL_IDENTITY] || cm.metadata.namespace !== operatorNamespace || cm.metadata.name !== bundleConfigMapName(trustDomain)) return [];
  return identitiesOfTrustDomain(indexes)(trustDomain);
};
