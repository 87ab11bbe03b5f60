// A CA is generated only after the API server answered 404 for its Secret.
// Here the operator runs as a ServiceAccount that may create Secrets but not
// read them: the read fails with 403, and no CA may appear. The failure shows
// three ways (condition, event, metric); granting the read then lets it
// generate exactly one CA.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { KubeConfig, PatchStrategy, RbacAuthorizationV1Api, setHeaderOptions } from '@kubernetes/client-node';
import { startTestEnv, type TestEnv } from '../support/env.ts';
import { runOperator, eventually, ensureNamespace, OPERATOR_NAMESPACE } from '../support/operator.ts';
import { api, isReady } from '../support/objects.ts';
import type { Operator } from '../../src/operator.ts';

let env: TestEnv;
let op: Operator | undefined;
let a: ReturnType<typeof api>;

before(async () => { env = await startTestEnv(); a = api(env.kc); });
after(async () => { await op?.stop(); await env?.stop(); });

async function kubeconfigFor(sa: string): Promise<KubeConfig> {
  await a.core.createNamespacedServiceAccount({ namespace: OPERATOR_NAMESPACE, body: { metadata: { name: sa } } });
  const tr = await a.core.createNamespacedServiceAccountToken({ namespace: OPERATOR_NAMESPACE, name: sa, body: { spec: { audiences: [], expirationSeconds: 3600 } } });
  const cluster = env.kc.getCurrentCluster()!;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster], users: [{ name: sa, token: tr.status!.token }],
    contexts: [{ name: sa, cluster: cluster.name, user: sa }], currentContext: sa,
  });
  return kc;
}

test('a forbidden CA Secret read creates no CA; once readable, exactly one CA is generated', async () => {
  await ensureNamespace(env.kc, OPERATOR_NAMESPACE);
  const rbac = env.kc.makeApiClient(RbacAuthorizationV1Api);
  const sa = 'limited-operator';
  await rbac.createClusterRole({ body: { metadata: { name: sa }, rules: [
    { apiGroups: ['agentidentity.dev'], resources: ['agentidentities', 'trustdomains'], verbs: ['list', 'watch', 'patch'] },
    { apiGroups: [''], resources: ['configmaps'], verbs: ['list', 'watch', 'create', 'update', 'delete'] },
    { apiGroups: [''], resources: ['namespaces', 'serviceaccounts'], verbs: ['list', 'watch'] },
    { apiGroups: ['agentidentity.dev'], resources: ['agentidentities/status', 'trustdomains/status'], verbs: ['patch'] },
    // create but not get: the only way this operator could make a CA is by ignoring the failed read.
    { apiGroups: [''], resources: ['secrets'], verbs: ['list', 'watch', 'create', 'update'] },
    { apiGroups: [''], resources: ['events'], verbs: ['create'] },
  ] } });
  await rbac.createClusterRoleBinding({ body: { metadata: { name: sa }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: sa }, subjects: [{ kind: 'ServiceAccount', name: sa, namespace: OPERATOR_NAMESPACE }] } });
  const kc = await kubeconfigFor(sa);

  await a.createTrustDomain('default', { trustDomain: 'cluster.local', ca: { selfSigned: {} } });
  op = await runOperator(kc, {}, env.kc);

  const td = await eventually(async () => {
    const t = await a.getTrustDomain('default');
    return t.status?.conditions?.find((c) => c.type === 'Ready' && c.status === 'False') && t;
  }, { what: 'TrustDomain Ready=False' });
  const cond = td.status!.conditions!.find((c) => c.type === 'Ready')!;
  assert.equal(cond.reason, 'CASecretUnreadable');
  assert.match(cond.message, /cannot read CA Secret agent-identity-system\/default-ca, so no CA will be generated/);
  assert.match(cond.message, /forbidden/i);

  // Wait for two retries (backoff 1 s, then 2 s) to have failed the same way; none may create a CA.
  const unreadable = async () => (await op!.metrics.reconcileErrors.get()).values.find((v) => v.labels.reason === 'CASecretUnreadable')?.value ?? 0;
  await eventually(async () => (await unreadable()) >= 3, { what: 'the first attempt and two retries to fail with CASecretUnreadable' });
  const secrets = await a.core.listNamespacedSecret({ namespace: OPERATOR_NAMESPACE });
  assert.deepEqual(secrets.items.map((s) => s.metadata!.name), [], 'no CA Secret was created');
  const generated = (await op.metrics.caGenerated.get()).values.reduce((s, v) => s + v.value, 0);
  assert.equal(generated, 0);
  // Events are written in the background: wait for it.
  await eventually(async () => (await a.core.listNamespacedEvent({ namespace: 'default' })).items
    .some((e) => e.reason === 'CASecretUnreadable' && e.involvedObject.name === 'default' && e.type === 'Warning'), { what: 'a Warning CASecretUnreadable event' });

  // Grant the read: the next retry sees a real 404 and generates the CA once.
  await rbac.createClusterRole({ body: { metadata: { name: `${sa}-get` }, rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }] } });
  await rbac.createClusterRoleBinding({ body: { metadata: { name: `${sa}-get` }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `${sa}-get` }, subjects: [{ kind: 'ServiceAccount', name: sa, namespace: OPERATOR_NAMESPACE }] } });
  // The failing key is backing off (up to minutes); a metadata change re-queues it now, as
  // `kubectl annotate` would for a user who just fixed the RBAC.
  await a.custom.patchClusterCustomObject({ group: 'agentidentity.dev', version: 'v1alpha1', plural: 'trustdomains', name: 'default', body: { metadata: { annotations: { 'example.com/rbac-fixed': 'now' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  await eventually(async () => isReady(await a.getTrustDomain('default')), { timeoutMs: 60_000, what: 'TrustDomain Ready after the grant' });
  const after = await a.core.listNamespacedSecret({ namespace: OPERATOR_NAMESPACE });
  assert.deepEqual(after.items.map((s) => s.metadata!.name), ['default-ca']);
  assert.equal((await op.metrics.caGenerated.get()).values.reduce((s, v) => s + v.value, 0), 1);
  // This operator may read ClusterTrustBundles (every user may) but not write them: reported, not fatal.
  const published = (await a.getTrustDomain('default')).status!.conditions!.find((c) => c.type === 'BundlePublished');
  assert.equal(published?.status, 'False');
  assert.equal(published?.reason, 'ClusterTrustBundleFailed');
  assert.match(published!.message, /cannot publish ClusterTrustBundle agentidentity-default: .*forbidden/);
});
