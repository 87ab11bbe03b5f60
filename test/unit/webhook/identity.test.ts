import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AgentIdentity, AgentIdentitySpec, ObjectMeta, TrustDomain } from '../../../src/api/types.ts';
import { KubeError } from '../../../src/kube/errors.ts';
import { secretClaimDenial, validateIdentity, type IdentityAdmissionOptions } from '../../../src/webhook/identity.ts';

const identity = (name: string, spec: Partial<AgentIdentitySpec> = {}, status?: AgentIdentity['status']): AgentIdentity => ({
  apiVersion: 'agentidentity.dev/v1alpha1', kind: 'AgentIdentity', metadata: { name, namespace: 'agents', uid: `uid-${name}` },
  spec: { serviceAccountName: name, ...spec }, ...(status ? { status } : {}),
});
const ownedBy = (kind: string, name: string): ObjectMeta => ({ name: 'x', ownerReferences: [{ apiVersion: 'v1', kind, name, uid: 'u', controller: true }] });

describe('secretClaimDenial', () => {
  const cases: [string, AgentIdentity, AgentIdentity[], ObjectMeta | undefined, string | undefined][] = [
    ['a free name', identity('a'), [identity('b')], undefined, undefined],
    ['its own Secret (an update)', identity('a'), [identity('a')], ownedBy('AgentIdentity', 'a'), undefined],
    ['another identity names it in spec.secretName', identity('copycat', { secretName: 'a-identity' }), [identity('a')], undefined, 'SecretNameInUse'],
    ['another identity still holds it in status.secretName', identity('b', { secretName: 'old' }), [identity('a', { secretName: 'new' }, { secretName: 'old' })], undefined, 'SecretNameInUse'],
    ['owned by another AgentIdentity no identity names any more', identity('b', { secretName: 'old' }), [], ownedBy('AgentIdentity', 'a'), 'SecretOwnedByAnother'],
    ['owned by something else', identity('db', { secretName: 'db-credentials' }), [], ownedBy('ConfigMap', 'db'), 'SecretOwnedByAnother'],
    ['an earlier identity of the same name (re-created)', identity('a'), [], ownedBy('AgentIdentity', 'a'), undefined],
    ['a Secret without a controller', identity('a'), [], { name: 'a-identity' }, undefined],
    ['the default name of a pod-certificate identity, which has no Secret', identity('b', { secretName: 'a-identity' }), [identity('a', { delivery: 'PodCertificate' })], undefined, undefined],
  ];
  for (const [name, i, others, secret, expected] of cases) {
    it(name, () => assert.equal(secretClaimDenial(i, others, secret)?.reason, expected));
  }
});

describe('validateIdentity', () => {
  const td: TrustDomain = { apiVersion: 'agentidentity.dev/v1alpha1', kind: 'TrustDomain', metadata: { name: 'default' }, spec: { trustDomain: 'cluster.local', ca: { selfSigned: {} }, namespaceSelector: { matchLabels: { team: 'a' } } } };
  const calls: string[] = [];
  const opts = (over: Partial<IdentityAdmissionOptions> = {}): IdentityAdmissionOptions => ({
    identities: { get: async () => { calls.push('get'); return undefined; }, claimants: async () => { calls.push('claimants'); return []; } },
    trustDomain: async () => { calls.push('trustDomain'); return td; },
    namespaceLabels: async () => { calls.push('namespace'); return { team: 'a' }; },
    secretMetadata: async () => { calls.push('secret'); return undefined; },
    ...over,
  });
  const request = (object: AgentIdentity, operation = 'CREATE', oldObject?: AgentIdentity) => ({
    uid: 'u-1', kind: { group: 'agentidentity.dev', version: 'v1alpha1', kind: 'AgentIdentity' }, namespace: 'agents', operation, object, ...(oldObject ? { oldObject } : {}),
  });

  it('an update that leaves the spec alone (a finalizer) is allowed without a lookup', async () => {
    calls.length = 0;
    const out = await validateIdentity(request(identity('a'), 'UPDATE', identity('a')), opts());
    assert.equal(out.result, 'allowed');
    assert.deepEqual(calls, []);
  });

  it('a pod-certificate identity claims no Secret: nothing is listed or read for it', async () => {
    calls.length = 0;
    const out = await validateIdentity(request(identity('a', { delivery: 'PodCertificate' })), opts({ secretMetadata: async () => ownedBy('ConfigMap', 'x') }));
    assert.equal(out.result, 'allowed');
    assert.deepEqual(calls, ['trustDomain', 'namespace']);
  });

  it('a TrustDomain that does not exist yet is allowed with a warning: the reconciler judges it later', async () => {
    const out = await validateIdentity(request(identity('a')), opts({ trustDomain: async () => undefined }));
    assert.equal(out.result, 'allowed');
    assert.match(out.response.warnings![0]!, /^TrustDomain "default" does not exist yet/);
  });

  it('a failed lookup refuses the identity in our words, and keeps the API server\'s for the log', async () => {
    const err = new KubeError(403, 'Forbidden', 'trustdomains.agentidentity.dev "default" is forbidden: secret detail');
    const out = await validateIdentity(request(identity('a')), opts({ trustDomain: async () => { throw err; } }));
    assert.equal(out.result, 'error');
    assert.equal(out.response.status!.message, 'could not read TrustDomain "default": the webhook is not allowed to read it (HTTP 403); check its RBAC; AgentIdentity "a" was not admitted, retry shortly');
    assert.doesNotMatch(out.response.status!.message, /secret detail/);
  });

  it('a namespace the selector does not pick is refused before any Secret is looked at', async () => {
    calls.length = 0;
    const out = await validateIdentity(request(identity('a')), opts({ namespaceLabels: async () => { calls.push('namespace'); return {}; } }));
    assert.equal(out.reason, 'NamespaceNotAllowed');
    assert.deepEqual(calls, ['trustDomain', 'namespace']);
  });

  it('a TrustDomain that admits every namespace needs no namespace read', async () => {
    calls.length = 0;
    const open = { ...td, spec: { ...td.spec, namespaceSelector: {} } };
    const out = await validateIdentity(request(identity('a')), opts({ trustDomain: async () => { calls.push('trustDomain'); return open; } }));
    assert.equal(out.result, 'allowed');
    assert.deepEqual(calls.sort(), ['claimants', 'get', 'secret', 'trustDomain']);
  });
});
