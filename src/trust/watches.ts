// Which TrustDomains another object's change concerns: the mappings the
// trust controller is declared with (operator.ts).
import type { TrustDomain } from '../api/types.ts';
import type { Mapper } from '../controller/controller.ts';

/** A Namespace: bundles are published by namespace selector, so every TrustDomain may publish there or withdraw. */
export const everyTrustDomain = (trustDomains: { list(): readonly TrustDomain[] }): Mapper<unknown> => () => trustDomains.list().map((t) => t.metadata.name!);
