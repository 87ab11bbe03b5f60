// The identity's current material in the forms node:tls takes. Built from
// whatever the Identity holds at call time, so each new connection or
// server context picks up a reload.
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import type { PolicyDocument } from '../api/documents.ts';
import { authorizePolicy, type Authorizer, type PolicyAuthorizerOptions } from './authorizer.ts';
import type { Identity } from './identity.ts';
import { certificatesToPem } from '../pki/index.ts';
import { privateKeyPemOf, type X509SVID } from './svid.ts';

/**
 * OpenSSL gets every trust domain's Roots, since it cannot choose a store by
 * the peer's SPIFFE ID; peer.ts then verifies each peer against its own trust
 * domain's Bundle alone. Without federation that is exactly ca.crt.
 */
export function secureContextOptions(identity: Identity): SecureContextOptions {
  const { bundles } = identity;
  return { cert: identity.svid.certificatesPem, key: privateKeyPemOf(identity.svid), ca: bundles.federated ? certificatesToPem(bundles.allRoots()) : identity.bundle.toPem() };
}

// Every reload builds a new SVID object (with its Bundle), so it keys one context per generation.
const contexts = new WeakMap<X509SVID, SecureContext>();

export function clientSecureContext(identity: Identity): SecureContext {
  let context = contexts.get(identity.svid);
  if (!context) {
    context = createSecureContext(secureContextOptions(identity));
    contexts.set(identity.svid, context);
  }
  return context;
}

const policyAuthorizers = [new WeakMap<PolicyDocument, Authorizer>(), new WeakMap<PolicyDocument, Authorizer>()];

/** authorizePolicy over whatever policy.json the identity holds at the moment of each check. */
export function currentPolicyAuthorizer(identity: Identity, opts: PolicyAuthorizerOptions = {}): Authorizer {
  const cache = policyAuthorizers[opts.inspectsRequests ? 1 : 0]!;
  return (peer, chain) => {
    let authorize = cache.get(identity.policy);
    if (!authorize) {
      authorize = authorizePolicy(identity.policy, opts);
      cache.set(identity.policy, authorize);
    }
    return authorize(peer, chain);
  };
}
