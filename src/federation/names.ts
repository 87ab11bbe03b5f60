// Names and keys of the objects federation keeps in the operator's namespace.
import { GROUP } from '../api/group.ts';
import { FEDERATED_ROOTS_KEY, FEDERATED_TRUST_DOMAIN_KEY } from '../api/names.ts';

/** On the ConfigMap and Secret of a served bundle: the TrustDomain (object name) they serve. */
export const LABEL_BUNDLE_ENDPOINT = `${GROUP}/bundle-endpoint`;

/** The published document of TrustDomain `name`; every replica's endpoint serves it from here. */
export function servedBundleConfigMapName(trustDomainObject: string): string {
  return `spiffe-bundle-${trustDomainObject}`;
}

/** The https_spiffe endpoint's own SVID (tls.crt, tls.key), issued and renewed by the leader. */
export function endpointSVIDSecretName(trustDomainObject: string): string {
  return `bundle-endpoint-${trustDomainObject}`;
}

/** The accepted bundle of ClusterFederatedTrustDomain `name`: what the delivery to agents reads. */
export function federatedBundleConfigMapName(federatedObject: string): string {
  return `federated-bundle-${federatedObject}`;
}

/** Keys of those ConfigMaps. */
export const DOCUMENT_KEY = 'bundle.spiffe.json';
/** The Roots as PEM, the form agents' ca.crt already has. */
export const ROOTS_KEY = FEDERATED_ROOTS_KEY;
/** The foreign trust domain (spec.trustDomain), so the delivery to agents needs no ClusterFederatedTrustDomain informer. */
export const TRUST_DOMAIN_KEY = FEDERATED_TRUST_DOMAIN_KEY;
/** Where and how a served bundle is served: {trustDomain, secretName, dnsNames} (ServedEndpoint). */
export const ENDPOINT_KEY = 'endpoint.json';

/** The path every replica serves trust domain `td`'s bundle at. */
export function bundlePath(trustDomain: string): string {
  return `/bundles/${trustDomain}`;
}

/** The SPIFFE ID an https_spiffe endpoint of this operator presents; outside the identities' default template (ns/...). */
export const ENDPOINT_SPIFFE_PATH = '/agent-identity-operator/bundle-endpoint';
