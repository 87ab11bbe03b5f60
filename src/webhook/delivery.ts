// What goes into the identity volume for each delivery. Pure.
//   Secret:         the identity's Secret (tls.crt, tls.key, ca.crt) + policy.json.
//   PodCertificate: a podCertificate source (the kubelet makes the key on the
//                   node and asks our signer; it writes credential-bundle.pem),
//                   the trust bundle ConfigMap (ca.crt) + policy.json. No Secret.
//   Both:           federated-bundles.json (optional) from the trust bundle ConfigMap.
import { POD_CERTIFICATE_AGENT_ANNOTATION, SECRET_BUNDLE, SECRET_CERT, SECRET_KEY, SIGNER_NAME } from '../api/group.ts';
import { bundleConfigMapName, DEFAULT_DURATION, deliveryOf, keyRequestOf, policyConfigMapName, secretNameOf, trustDomainOf } from '../api/defaults.ts';
import { FILES } from '../api/documents.ts';
import { parseDuration } from '../api/duration.ts';
import type { AgentIdentity, PodCertificateKeyType } from '../api/types.ts';
import type { VolumeProjection } from './pod.ts';

/** The Secret the identity's key lives in; undefined for pod-certificate delivery, whose key never leaves the node. */
export function identitySecretName(identity: AgentIdentity): string | undefined {
  return deliveryOf(identity) === 'Secret' ? secretNameOf(identity) : undefined;
}

/** The API server's bounds on a PodCertificateRequest's maxExpirationSeconds. */
export const MIN_POD_CERTIFICATE_SECONDS = 3600;
export const MAX_POD_CERTIFICATE_SECONDS = 7_862_400;

/** The projection's podCertificate source (core/v1 PodCertificateProjection). */
export interface PodCertificateProjection {
  signerName: string;
  keyType: PodCertificateKeyType;
  maxExpirationSeconds: number;
  credentialBundlePath: string;
  userAnnotations: Record<string, string>;
}

/** spec.privateKey as a kubelet key type; undefined for a key a pod certificate cannot have (the CRD refuses RSA-2048). */
export function podCertificateKeyType(identity: AgentIdentity): PodCertificateKeyType | undefined {
  const { algorithm, size } = keyRequestOf(identity);
  if (algorithm === 'Ed25519') return 'ED25519';
  if (algorithm === 'ECDSA' && (size === 256 || size === 384)) return `ECDSAP${size}`;
  if (algorithm === 'RSA' && (size === 3072 || size === 4096)) return `RSA${size}`;
  return undefined;
}

/** spec.duration in whole seconds, kept within what the API server accepts (the CRD already refuses the rest). */
export function podCertificateSeconds(identity: AgentIdentity): number {
  const seconds = Math.floor(parseDuration(identity.spec.duration ?? DEFAULT_DURATION) / 1000);
  return Math.min(MAX_POD_CERTIFICATE_SECONDS, Math.max(MIN_POD_CERTIFICATE_SECONDS, seconds));
}

export function podCertificateProjection(identity: AgentIdentity, keyType: PodCertificateKeyType): PodCertificateProjection {
  return {
    signerName: SIGNER_NAME,
    keyType,
    maxExpirationSeconds: podCertificateSeconds(identity),
    credentialBundlePath: FILES.credentialBundle,
    userAnnotations: { [POD_CERTIFICATE_AGENT_ANNOTATION]: identity.metadata.name! },
  };
}

export type IdentitySources = { sources: VolumeProjection[] } | { refusal: { reason: 'UnsupportedKeyType'; message: string } };

/**
 * federated-bundles.json from the trust bundle ConfigMap, in both deliveries:
 * the partners' Roots (docs/federation.md). Optional, so the kubelet projects
 * nothing while the TrustDomain federates with nobody, and the file appears
 * (and follows each partner's rotation) without restarting the pod once it does.
 * Its own source: `optional` covers a whole source, and ca.crt must never be optional.
 */
function federatedBundlesSource(identity: AgentIdentity): VolumeProjection {
  return { configMap: { name: bundleConfigMapName(trustDomainOf(identity)), items: [{ key: FILES.federatedBundles, path: FILES.federatedBundles }], optional: true } };
}

/**
 * The projected volume's sources for the identity's delivery. Secret delivery:
 * the identity Secret, policy.json included (the operator writes both in one
 * request, and no ConfigMap name is left for a tenant to squat). Pod
 * certificates: policy.json from the identity's ConfigMap, last. Both get the
 * partners' Roots (federatedBundlesSource).
 */
export function identitySources(identity: AgentIdentity): IdentitySources {
  if (deliveryOf(identity) === 'Secret') {
    const items = [{ key: SECRET_CERT, path: FILES.certificate }, { key: SECRET_KEY, path: FILES.privateKey }, { key: SECRET_BUNDLE, path: FILES.bundle }, { key: FILES.policy, path: FILES.policy }];
    return { sources: [{ secret: { name: identitySecretName(identity)!, items } }, federatedBundlesSource(identity)] };
  }
  const policy: VolumeProjection = { configMap: { name: policyConfigMapName(identity.metadata.name!), items: [{ key: FILES.policy, path: FILES.policy }] } };
  const keyType = podCertificateKeyType(identity);
  if (!keyType) {
    const { algorithm, size } = keyRequestOf(identity);
    return { refusal: { reason: 'UnsupportedKeyType', message: `AgentIdentity "${identity.metadata.name}" asks for a ${algorithm} ${size} key, which a pod certificate cannot have; set spec.privateKey to ECDSA 256 (or 384, Ed25519, RSA 3072/4096)` } };
  }
  // The bundle as a ConfigMap, not a ClusterTrustBundle projection: the
  // ConfigMap is the one copy every agent already reads (Secret delivery's
  // ca.crt and this one come from the same publication), the trust reconciler
  // keeps it in every namespace with identities, and it works on API servers
  // that do not serve ClusterTrustBundles, which the operator treats as optional.
  const bundle: VolumeProjection = { configMap: { name: bundleConfigMapName(trustDomainOf(identity)), items: [{ key: SECRET_BUNDLE, path: FILES.bundle }] } };
  return { sources: [{ podCertificate: podCertificateProjection(identity, keyType) }, bundle, federatedBundlesSource(identity), policy] };
}
