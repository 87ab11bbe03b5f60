// Which identities another object's change concerns: the mappings the
// identity controller is declared with (operator.ts).
import { bundleConfigMapName, needsPeers, trustDomainOf } from '../api/defaults.ts';
import { BUNDLE_DENYLIST, LABEL_IDENTITY, LABEL_TRUST_DOMAIN, SECRET_BUNDLE } from '../api/group.ts';
import type { AgentIdentity, ConfigMap, Namespace, ServiceAccount, TrustDomain } from '../api/types.ts';
import { objectKey, type Mapper, type Predicate } from '../controller/controller.ts';

type Identities = { list(namespace?: string): readonly AgentIdentity[] };

const keysOf = (identities: readonly AgentIdentity[], match: (i: AgentIdentity) => boolean) => identities.filter(match).map(objectKey);

/** A TrustDomain (its object, or its signing state by name): the identities it issues for. */
export const identitiesOfTrustDomain = (identities: Identities): Mapper<TrustDomain | string> => (td) => {
  const name = typeof td === 'string' ? td : td.metadata.name!;
  return keysOf(identities.list(), (i) => trustDomainOf(i) === name);
};

/** A Namespace: its labels decide whether a TrustDomain admits the identities in it. */
export const identitiesInNamespace = (identities: Identities): Mapper<Namespace> => (n) => keysOf(identities.list(n.metadata.name!), () => true);

/** A ServiceAccount appearing: an identity waits for it (ServiceAccountNotFound). */
export const identitiesOfServiceAccount = (identities: Identities): Mapper<ServiceAccount> => (sa) =>
  keysOf(identities.list(sa.metadata.namespace!), (i) => i.spec.serviceAccountName === sa.metadata.name);

/** Any identity appearing, changing or leaving may change the peers a policy names. */
export const policyHolders = (identities: Identities): Mapper<unknown> => () => keysOf(identities.list(), needsPeers);

/** The deny list's home copy (in the operator's namespace): every policy.json of its TrustDomain embeds it. */
/**
 * What identities read of the home bundle copy: its bundle and deny list. A partner's bundle
 * (federated-bundles.json, for agents only) changing there must not queue every identity of the trust domain.
 */
export const bundleOrDenyListChanged: Predicate<ConfigMap> = (cm, old) => !old
  || cm.data?.[SECRET_BUNDLE] !== old.data?.[SECRET_BUNDLE] || cm.data?.[BUNDLE_DENYLIST] !== old.data?.[BUNDLE_DENYLIST]
  || JSON.stringify(cm.metadata.labels) !== JSON.stringify(old.metadata.labels);

export const identitiesOfDenyList = (identities: Identities, operatorNamespace: string): Mapper<ConfigMap> => (cm) => {
  const trustDomain = cm.metadata.labels?.[LABEL_TRUST_DOMAIN];
  if (!trustDomain || cm.metadata.labels?.[LABEL_IDENTITY] || cm.metadata.namespace !== operatorNamespace || cm.metadata.name !== bundleConfigMapName(trustDomain)) return [];
  return identitiesOfTrustDomain(identities)(trustDomain);
};
