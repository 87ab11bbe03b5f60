// Defaults applied when a field is absent. The CRD schema sets the same
// defaults on admission; these cover objects read before defaulting (e.g. in
// unit tests) so logic never sees undefined.
import { BUNDLE_CONFIGMAP_PREFIX } from './group.ts';
import { parseDuration } from './duration.ts';
import type { AgentIdentity, Delivery, KeyAlgorithm, RotationPolicy, TrustDomain } from './types.ts';

export const DEFAULT_TRUST_DOMAIN = 'default';
export const DEFAULT_DURATION = '24h';
export const DEFAULT_SPIFFE_ID_TEMPLATE = 'ns/{namespace}/agent/{name}';
export const DEFAULT_KEY_SIZE: Record<KeyAlgorithm, number> = { ECDSA: 256, RSA: 2048, Ed25519: 0 };

export interface KeyRequest {
  algorithm: KeyAlgorithm;
  size: number;
  rotationPolicy: RotationPolicy;
}

export function keyRequestOf(identity: AgentIdentity): KeyRequest {
  const pk = identity.spec.privateKey ?? {};
  const algorithm = pk.algorithm ?? 'ECDSA';
  return {
    algorithm,
    size: algorithm === 'Ed25519' ? 0 : (pk.size ?? DEFAULT_KEY_SIZE[algorithm]),
    rotationPolicy: pk.rotationPolicy ?? 'Always',
  };
}

export function secretNameOf(identity: AgentIdentity): string {
  return identity.spec.secretName ?? `${identity.metadata.name}-identity`;
}

/** The ConfigMap holding an identity's policy.json, written by the operator, mounted by the webhook. */
export function policyConfigMapName(identityName: string): string {
  return `${identityName}-identity-policy`;
}

/** The NetworkPolicy the operator keeps for an identity with spec.proxy: its pods admit ingress on the proxy's port only. */
export function proxyNetworkPolicyName(identityName: string): string {
  return `${identityName}-identity-proxy`;
}

export function deliveryOf(identity: AgentIdentity): Delivery {
  return identity.spec.delivery ?? 'Secret';
}

/** The ConfigMap a TrustDomain's bundle (and deny list) is published in, in every namespace with its identities. */
export function bundleConfigMapName(trustDomainObject: string): string {
  return `${BUNDLE_CONFIGMAP_PREFIX}${trustDomainObject}`;
}

export function trustDomainOf(identity: AgentIdentity): string {
  return identity.spec.trustDomain ?? DEFAULT_TRUST_DOMAIN;
}

/**
 * Whether the identity's policy.json lists its peers: it has rules (spec.policy), or its pods run the
 * identity proxy (spec.proxy), whose outbound side maps hosts to identities. Others skip the list, so a
 * burst of N identities does not cost N² work.
 */
export function needsPeers(identity: AgentIdentity): boolean {
  return identity.spec.policy !== undefined || identity.spec.proxy !== undefined;
}

export const DEFAULT_REFRESH_HINT = '5m';

/**
 * The spiffe_refresh_hint a TrustDomain publishes, in ms; undefined when it
 * publishes no bundle endpoint. Partners poll us at this interval, so it is
 * also how long a new Root must be served before anything they verify (our
 * agents' Leaves, the endpoint's own SVID) may chain to it.
 */
export function refreshHintMs(trustDomain: TrustDomain): number | undefined {
  const endpoint = trustDomain.spec.federation?.bundleEndpoint;
  return endpoint ? parseDuration(endpoint.refreshHint ?? DEFAULT_REFRESH_HINT) : undefined;
}
