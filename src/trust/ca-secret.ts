// The self-signed CA's Secret: its name, and the Secret built around a newly
// generated root. Pure.
import { LABEL_MANAGED_BY, MANAGED_BY_VALUE, LABEL_TRUST_DOMAIN, ANNOTATION_CA_FINGERPRINT, SECRET_CERT, SECRET_KEY, SECRET_BUNDLE } from '../api/group.ts';
import type { Secret } from '../api/types.ts';

export function caSecretName(trustDomainObject: string): string {
  return `${trustDomainObject}-ca`;
}

export function newCASecret(opts: { namespace: string; trustDomainObject: string; certificatePem: string; privateKeyPem: string; fingerprint: string }): Secret {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return {
    apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls',
    metadata: {
      name: caSecretName(opts.trustDomainObject), namespace: opts.namespace,
      labels: { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, [LABEL_TRUST_DOMAIN]: opts.trustDomainObject },
      annotations: { [ANNOTATION_CA_FINGERPRINT]: opts.fingerprint },
    },
    data: { [SECRET_CERT]: b64(opts.certificatePem), [SECRET_KEY]: b64(opts.privateKeyPem), [SECRET_BUNDLE]: b64(opts.certificatePem) },
  };
}
