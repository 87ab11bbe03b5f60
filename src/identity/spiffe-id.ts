// The SPIFFE ID of an identity, the same for its Secret leaf and its pod
// certificates: rendered from its TrustDomain's template.
import type { AgentIdentity } from '../api/types.ts';
import { PkiError } from '../pki/errors.ts';
import { renderSpiffeID, type SpiffeID } from '../pki/spiffeid.ts';
import { ReconcileFailure } from '../controller/failure.ts';
import type { TrustDomainState } from '../trust/store.ts';

/** The SPIFFE ID the trust domain's template gives this identity. */
export function spiffeIDFor(trustDomain: Pick<TrustDomainState, 'trustDomain' | 'spiffeIDTemplate'>, identity: AgentIdentity): SpiffeID {
  try {
    return renderSpiffeID(trustDomain.trustDomain, trustDomain.spiffeIDTemplate, {
      namespace: identity.metadata.namespace!, name: identity.metadata.name!, serviceAccount: identity.spec.serviceAccountName,
    });
  } catch (err) {
    if (err instanceof PkiError) throw new ReconcileFailure('InvalidSpiffeID', err.message, { retry: false });
    throw err;
  }
}
