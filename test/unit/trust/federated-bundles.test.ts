// federated-bundles.json as the trust reconciler writes it into each bundle
// copy: the partners' Roots of spec.federatesWith, from the fetcher's ConfigMaps.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import type { ConfigMap, TrustDomain } from '../../../src/api/types.ts';
import { desiredBundleConfigMap, federatedBundlesDocument } from '../../../src/trust/publish.ts';
import { makeTrustDomain, type TestTrustDomain } from '../../support/sdk-pki.ts';

const NS = 'agent-identity-system';
let B: TestTrustDomain;
let C: TestTrustDomain;
before(async () => {
  [B, C] = await Promise.all([makeTrustDomain('cluster-b.test'), makeTrustDomain('partner.example')]);
});

const td = (federatesWith?: string[]): TrustDomain => ({ apiVersion: 'agentidentity.dev/v1alpha1', kind: 'TrustDomain', metadata: { name: 'default', uid: 'u' }, spec: { trustDomain: 'cluster-a.test', ...(federatesWith ? { federatesWith } : {}) } } as TrustDomain);
const fetched = (name: string, trustDomain: string, pem: string, namespace = NS): ConfigMap => ({
  apiVersion: 'v1', kind: 'ConfigMap',
  metadata: { name: `federated-bundle-${name}`, namespace, labels: { 'agentidentity.dev/federated-trust-domain': name } },
  data: { 'ca.crt': pem, 'trust-domain': trustDomain, 'bundle.spiffe.json': '{}' },
});

test('a TrustDomain that federates with nobody gets no federated-bundles.json, so its copies do not change', () => {
  assert.equal(federatedBundlesDocument(td(), [fetched('b', 'cluster-b.test', 'x')], NS), undefined);
  const cm = desiredBundleConfigMap('default', 'agents', 'PEM', '{}', undefined, undefined, undefined);
  assert.deepEqual(Object.keys(cm.data!), ['ca.crt', 'denylist.json']);
});

test('only the partners listed, only as the fetcher stored them in the operator namespace, never the local trust domain', () => {
  const doc = federatedBundlesDocument(td(['cluster-b.test', 'cluster-a.test', 'not-fetched.example']), [
    fetched('b', 'cluster-b.test', B.bundlePem),
    fetched('c', 'partner.example', C.bundlePem),
    fetched('evil', 'cluster-a.test', C.bundlePem),
    fetched('b-elsewhere', 'cluster-b.test', C.bundlePem, 'agents'),
  ], NS)!;
  assert.deepEqual(JSON.parse(doc), { version: 1, bundles: { 'cluster-b.test': B.bundlePem } });
  const cm = desiredBundleConfigMap('default', 'agents', 'PEM', '{}', undefined, undefined, doc);
  assert.equal(cm.data!['federated-bundles.json'], doc);
});

test('two ClusterFederatedTrustDomains for one partner give one canonical Bundle; garbage is left out', () => {
  const doc = federatedBundlesDocument(td(['cluster-b.test', 'partner.example']), [
    fetched('c1', 'partner.example', C.bundlePem), fetched('c2', 'partner.example', `${B.bundlePem}${C.bundlePem}`), fetched('b', 'cluster-b.test', 'not a certificate'),
  ], NS)!;
  const bundles = JSON.parse(doc).bundles as Record<string, string>;
  assert.deepEqual(Object.keys(bundles), ['partner.example']);
  assert.equal(bundles['partner.example']!.match(/BEGIN CERTIFICATE/g)!.length, 2);
});

test('a partner\'s bundle changing in the home copy does not queue every identity of the trust domain; the bundle or deny list does', async () => {
  const { bundleOrDenyListChanged } = await import('../../../src/identity/watches.ts');
  const home = (data: Record<string, string>): ConfigMap => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'trust-bundle-default', namespace: NS, labels: { 'agentidentity.dev/trust-domain': 'default' } }, data });
  const before = home({ 'ca.crt': 'A', 'denylist.json': '{}', 'federated-bundles.json': '{"version":1,"bundles":{}}' });
  assert.equal(bundleOrDenyListChanged(home({ ...before.data, 'federated-bundles.json': '{"version":1,"bundles":{"b.test":"x"}}' }), before), false);
  assert.equal(bundleOrDenyListChanged(home({ ...before.data, 'ca.crt': 'AB' }), before), true);
  assert.equal(bundleOrDenyListChanged(home({ ...before.data, 'denylist.json': '{"x":1}' }), before), true);
  assert.equal(bundleOrDenyListChanged(before, undefined), true);
});
