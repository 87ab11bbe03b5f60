// Delivery → what the identity volume projects: the Secret for Secret
// delivery; for pod-certificate delivery a podCertificate source whose fields
// come from the identity, the trust bundle ConfigMap and the policy, no Secret.
import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentIdentity, AgentIdentitySpec } from '../../../src/api/types.ts';
import { identitySecretName, identitySources, podCertificateKeyType, podCertificateSeconds } from '../../../src/webhook/delivery.ts';
import { injectIdentity } from '../../../src/webhook/mutate.ts';
import { validatePod } from '../../../src/webhook/validate.ts';
import { agentPod, applyPatch, identity, pod } from './fixtures.ts';

const podCert = (name: string, spec: Partial<AgentIdentitySpec> = {}, spiffeID = true): AgentIdentity => {
  const base = identity(name, name, spiffeID ? {} : { spiffeID: undefined });
  return { ...base, spec: { ...base.spec, delivery: 'PodCertificate', trustDomain: 'prod', ...spec } };
};

test('pod-certificate delivery: a podCertificate source, the trust bundle ConfigMap (ca.crt, and optionally federated-bundles.json) and the policy; no Secret', () => {
  assert.deepEqual(identitySources(podCert('planner', { duration: '48h' })), {
    sources: [
      {
        podCertificate: {
          signerName: 'agentidentity.dev/svid',
          keyType: 'ECDSAP256',
          maxExpirationSeconds: 172_800,
          credentialBundlePath: 'credential-bundle.pem',
          userAnnotations: { 'agentidentity.dev/agent': 'planner' },
        },
      },
      { configMap: { name: 'trust-bundle-prod', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
      // Optional: nothing is projected while the TrustDomain federates with nobody.
      { configMap: { name: 'trust-bundle-prod', items: [{ key: 'federated-bundles.json', path: 'federated-bundles.json' }], optional: true } },
      { configMap: { name: 'planner-identity-policy', items: [{ key: 'policy.json', path: 'policy.json' }] } },
    ],
  });
  assert.equal(identitySecretName(podCert('planner')), undefined);
  assert.equal(identitySecretName(identity('planner')), 'planner-identity');
});

test('the default TrustDomain\'s bundle when the identity names none', () => {
  const i = podCert('planner');
  delete i.spec.trustDomain;
  const sources = identitySources(i);
  assert.ok('sources' in sources);
  assert.equal(sources.sources[1]!.configMap!.name, 'trust-bundle-default');
});

describe('key type from spec.privateKey', () => {
  const cases: [AgentIdentitySpec['privateKey'], string | undefined][] = [
    [undefined, 'ECDSAP256'],
    [{ algorithm: 'ECDSA' }, 'ECDSAP256'],
    [{ algorithm: 'ECDSA', size: 256 }, 'ECDSAP256'],
    [{ algorithm: 'ECDSA', size: 384 }, 'ECDSAP384'],
    [{ algorithm: 'Ed25519' }, 'ED25519'],
    [{ algorithm: 'Ed25519', size: 384 }, 'ED25519'],
    [{ algorithm: 'RSA', size: 3072 }, 'RSA3072'],
    [{ algorithm: 'RSA', size: 4096 }, 'RSA4096'],
    [{ algorithm: 'RSA', size: 2048 }, undefined],
    [{ algorithm: 'RSA' }, undefined],
    [{ algorithm: 'ECDSA', size: 521 }, undefined],
  ];
  for (const [privateKey, expected] of cases) {
    it(`${JSON.stringify(privateKey)} → ${expected}`, () => assert.equal(podCertificateKeyType(podCert('a', privateKey ? { privateKey } : {})), expected));
  }
});

test('a key a pod certificate cannot have refuses the injection and names a supported one', () => {
  const i = podCert('planner', { privateKey: { algorithm: 'RSA', size: 2048 } });
  const { patch, refusal } = injectIdentity(agentPod('planner'), i);
  assert.deepEqual(patch, []);
  assert.equal(refusal?.reason, 'UnsupportedKeyType');
  assert.match(refusal!.message, /RSA 2048 key.*ECDSA 256/);
});

describe('maxExpirationSeconds from spec.duration, within the API server\'s [1h, 91d]', () => {
  const cases: [string | undefined, number][] = [
    [undefined, 86_400], ['24h', 86_400], ['1h', 3600], ['90m', 5400], ['1h0m0.5s', 3600], ['30m', 3600], ['2184h', 7_862_400], ['9000h', 7_862_400],
  ];
  for (const [duration, expected] of cases) {
    it(`${duration ?? 'default'} → ${expected}`, () => assert.equal(podCertificateSeconds(podCert('a', duration ? { duration } : {})), expected));
  }
});

test('injection for pod-certificate delivery: the volume, the credential bundle variable instead of tls.crt/tls.key, the signer in the record; idempotent', () => {
  const i = podCert('planner');
  const p = agentPod('planner');
  const { patch, summary } = injectIdentity(p, i);
  const out = applyPatch(p, patch);
  const volume = out.spec.volumes!.find((v) => v.name === 'agent-identity')!;
  assert.deepEqual(volume.projected!.sources!.map((s) => Object.keys(s)[0]), ['podCertificate', 'configMap', 'configMap', 'configMap']);
  assert.equal(volume.projected!.defaultMode, 0o644);
  assert.equal(JSON.stringify(out.spec).includes('"secret"'), false, 'no Secret anywhere in the pod');
  const env = Object.fromEntries(out.spec.containers[0]!.env!.map((e) => [e.name, e.value]));
  const DIR = '/var/run/agentidentity';
  assert.deepEqual(env, {
    AGENT_IDENTITY_DIR: DIR,
    AGENT_IDENTITY_CREDENTIAL_BUNDLE_FILE: `${DIR}/credential-bundle.pem`,
    AGENT_IDENTITY_BUNDLE_FILE: `${DIR}/ca.crt`,
    AGENT_IDENTITY_POLICY_FILE: `${DIR}/policy.json`,
    AGENT_IDENTITY_SPIFFE_ID: 'spiffe://cluster.local/ns/agents/agent/planner',
  });
  assert.deepEqual(summary, { identity: 'planner', spiffeID: env.AGENT_IDENTITY_SPIFFE_ID, signerName: 'agentidentity.dev/svid', policy: 'planner-identity-policy', mountPath: DIR, containers: ['app'] });
  assert.deepEqual(JSON.parse(out.metadata.annotations!['agentidentity.dev/injected']!), summary);
  assert.deepEqual(injectIdentity(out, i).patch, []);
});

test('a pod-certificate identity claims no Secret: the validating rules neither demand nor reserve one for it beyond its default name', () => {
  const i = podCert('planner');
  const judge = (p: ReturnType<typeof pod>, secrets: Parameters<typeof validatePod>[0]['secrets'] = new Map()) => validatePod({ pod: p, namespace: 'agents', identities: [i], secrets });
  assert.deepEqual(judge(applyPatch(agentPod('planner'), injectIdentity(agentPod('planner'), i).patch)), { allowed: true }, 'its injected pod passes with no Secret');
  // Its default Secret name stays reserved (re-created with Secret delivery it would hold its key there), with the reason said.
  const other = pod({ serviceAccountName: 'other', spec: { volumes: [{ name: 'v', secret: { secretName: 'planner-identity' } }] } });
  const v = judge(other);
  assert.equal(v.allowed, false);
  assert.ok(!v.allowed && v.reason === 'IdentitySecretReserved' && /gets pod certificates and has no Secret/.test(v.message));
  // An existing Secret of that name that the operator does not manage is someone's ordinary Secret.
  assert.deepEqual(judge(other, new Map([['planner-identity', { name: 'planner-identity' }]])), { allowed: true }, 'an existing Secret nobody manages is an ordinary Secret');
});
