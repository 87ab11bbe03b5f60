// Which TrustDomains another object's change concerns: the mappings the
// trust controller is declared with (operator.ts).
import { LABEL_FEDERATED_TRUST_DOMAIN } from '../api/group.ts';
import type { ConfigMap, TrustDomain } from '../api/types.ts';
import type { Mapper } from '../controller/controller.ts';

/** A Namespace: bundles are published by namespace selector, so every TrustDomain may publish there or withdraw. */
export const everyTrustDomain = (trustDomains: { list(): readonly TrustDomain[] }): Mapper<unknown> => () => trustDomains.list().map((t) => t.metadata.name!);

/** A partner's bundle the federation fetcher accepted (or lost): every TrustDomain that federates delivers it again. */
export const federatingTrustDomains = (trustDomains: { list(): readonly TrustDomain[] }): Mapper<ConfigMap> => (cm) => (cm.metadata.labels?.[LABEL_FEDERATED_TRUST_DOMAIN]
  ? trustDomains.list().filter((t) => t.spec.federatesWith?.length).map((t) => t.metadata.name!)
  : []);
