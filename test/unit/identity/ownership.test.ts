import { test } from 'node:test';
import assert from 'node:assert/strict';
import { foreignClaim } from '../../../src/identity/ownership.ts';
import { withoutCertificate } from '../../../src/identity/status.ts';
import { isOwnBundleCopy } from '../../../src/trust/publish.ts';
import type { AgentIdentity, ConfigMap, Secret, TrustDomain } from '../../../src/api/types.ts';

const identity = (name: string, uid: string, created: string, spec: Partial<AgentIdentity['spec']> = {}, ns = 'a'): AgentIdentity => ({
  apiVersion: 'agentidentity.dev/v1alpha1', kind: 'AgentIdentity',
  metadata: { name, namespace: ns, uid, creationTimestamp: created }, spec: { serviceAccountName: name, ...spec },
});
const secret = (owner?: { name: string; uid: string }): Secret => ({
  apiVersion: 'v1', kind: 'Secret',
  metadata: { name: 'beta-identity', namespace: 'a', ownerReferences: owner ? [{ apiVersion: 'agentidentity.dev/v1alpha1', kind: 'AgentIdentity', ...owner, controller: true }] : undefined },
});

const beta = identity('beta', 'u-beta', '2026-01-01T00:00:00Z');
const shadow = identity('shadow', 'u-shadow', '2026-01-01T00:00:05Z', { secretName: 'beta-identity' });

test('a Secret controlled by another identity is never this one\'s, whatever its name', () => {
  assert.match(foreignClaim(shadow, secret({ name: 'beta', uid: 'u-beta' }), [beta, shadow])!, /belongs to AgentIdentity beta/);
  assert.equal(foreignClaim(beta, secret({ name: 'beta', uid: 'u-beta' }), [beta, shadow]), undefined);
});

test('a Secret the identity controls stays its own, even if an older identity names it', () => {
  const older = identity('older', 'u-older', '2025-01-01T00:00:00Z', { secretName: 'beta-identity' });
  assert.equal(foreignClaim(beta, secret({ name: 'beta', uid: 'u-beta' }), [older, beta]), undefined);
});

test('before the Secret exists, the oldest identity naming it holds the claim', () => {
  assert.match(foreignClaim(shadow, undefined, [beta, shadow])!, /claimed by the older AgentIdentity beta/);
  assert.equal(foreignClaim(beta, undefined, [beta, shadow]), undefined);
});

test('the claim ignores identities being deleted, in other namespaces, or naming other Secrets; ties go by name', () => {
  const deleting = { ...beta, metadata: { ...beta.metadata, deletionTimestamp: '2026-01-02T00:00:00Z' } };
  assert.equal(foreignClaim(shadow, undefined, [deleting, shadow]), undefined);
  assert.equal(foreignClaim(shadow, undefined, [identity('beta', 'u-b2', '2025-01-01T00:00:00Z', {}, 'b'), shadow]), undefined);
  assert.equal(foreignClaim(shadow, undefined, [identity('other', 'u-o', '2025-01-01T00:00:00Z'), shadow]), undefined);
  const twin = identity('alpha', 'u-alpha', shadow.metadata.creationTimestamp!, { secretName: 'beta-identity' });
  assert.match(foreignClaim(shadow, undefined, [twin, shadow])!, /alpha/);
  assert.equal(foreignClaim(twin, undefined, [twin, shadow]), undefined);
});

test('an unowned Secret is not claimed by anyone (the operator adopts it by writing its owner reference)', () => {
  assert.equal(foreignClaim(shadow, secret(), [shadow]), undefined);
});

test('withoutCertificate keeps the conditions and failure counters, nothing about a certificate', () => {
  const s = withoutCertificate({
    conditions: [{ type: 'Ready', status: 'False', reason: 'SecretOwnedByAnother', message: 'm', lastTransitionTime: 't' }], observedGeneration: 2,
    spiffeID: 'spiffe://x', serialNumber: 'ab', notBefore: 'n', notAfter: 'n', renewalTime: 'r', secretName: 's', caFingerprint: 'f',
    lastIssuanceReason: 'Issued', lastRenewalRequest: 'q', policyPeers: 3, failedIssuanceAttempts: 4, lastFailureTime: 'l',
  });
  assert.deepEqual(JSON.parse(JSON.stringify(s)), {
    conditions: [{ type: 'Ready', status: 'False', reason: 'SecretOwnedByAnother', message: 'm', lastTransitionTime: 't' }], observedGeneration: 2, failedIssuanceAttempts: 4, lastFailureTime: 'l',
  });
});

test('a bundle copy is the TrustDomain\'s when it controls it, or an unowned copy already saying exactly the bundle', () => {
  const td = { metadata: { name: 'default', uid: 'u-td' } } as TrustDomain;
  const cm = (ownerUID: string | undefined, pem: string): ConfigMap => ({
    apiVersion: 'v1', kind: 'ConfigMap', data: { 'ca.crt': pem },
    metadata: { name: 'trust-bundle-default', namespace: 'a', ownerReferences: ownerUID ? [{ apiVersion: 'v1', kind: 'TrustDomain', name: 'x', uid: ownerUID, controller: true }] : undefined },
  });
  assert.ok(isOwnBundleCopy(cm('u-td', 'old'), td, 'new'));
  assert.ok(isOwnBundleCopy(cm(undefined, 'new'), td, 'new'));
  assert.ok(!isOwnBundleCopy(cm(undefined, 'foreign root'), td, 'new'));
  assert.ok(!isOwnBundleCopy(cm('u-other', 'new'), td, 'new'));
});
