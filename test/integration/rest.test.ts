// The operator's own REST client against a real API server: errors carry the
// API server's Status message and nothing of the request or response; bearer
// tokens, a token file that rotates and the in-cluster layout authenticate;
// an informer whose resourceVersion the API server no longer has (410 Gone)
// relists instead of backing off.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { startTestEnv, type TestEnv } from '../support/env.ts';
import { eventually } from '../support/operator.ts';
import { KubeClient, loadKubeConfig, type KubeConfig } from '../../src/kube/client.ts';
import { send } from '../../src/kube/transport.ts';
import { inClusterConfig } from '../../src/kube/config.ts';
import { ifExists, toKubeError } from '../../src/kube/errors.ts';
import type { ConfigMap } from '../../src/api/types.ts';
import { LABEL_MANAGED_BY, MANAGED_BY_VALUE } from '../../src/api/group.ts';

let env: TestEnv;
let dir: string;

before(async () => {
  env = await startTestEnv();
  dir = mkdtempSync(join(tmpdir(), 'aio-rest-'));
});
after(async () => { await env?.stop(); });

const SECRET_VALUE = 'do-not-log-this-value';

test("a refused write fails with the API server's Status code, reason and message, and none of the body or headers", async () => {
  const kube = new KubeClient(env.kc);
  const ns = await env.namespace('errors');
  const err = toKubeError(await kube.createSecret({
    apiVersion: 'v1', kind: 'Secret', metadata: { name: 'Not_A_Valid_Name', namespace: ns }, data: { key: Buffer.from(SECRET_VALUE).toString('base64') },
  }).catch((e: unknown) => e));
  assert.equal(err.code, 422);
  assert.equal(err.reason, 'Invalid');
  assert.match(err.message, /^Secret "Not_A_Valid_Name" is invalid: metadata.name: Invalid value: "Not_A_Valid_Name"/);
  for (const leak of [SECRET_VALUE, Buffer.from(SECRET_VALUE).toString('base64'), '"kind"', 'apiVersion', 'content-type', 'authorization']) {
    assert.ok(!err.message.toLowerCase().includes(leak.toLowerCase()) && !JSON.stringify(err).toLowerCase().includes(leak.toLowerCase()), `the error carries ${leak}`);
  }
  const missing = toKubeError(await kube.getSecret(ns, 'absent').catch((e: unknown) => e));
  assert.deepEqual([missing.code, missing.reason, missing.message], [404, 'NotFound', 'secrets "absent" not found']);
});

/** A token of a ServiceAccount allowed to read ConfigMaps in `ns` only. */
async function serviceAccountToken(ns: string, name: string): Promise<string> {
  const core = env.kc.makeApiClient(CoreV1Api);
  await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name } } });
  await env.kc.makeApiClient(RbacAuthorizationV1Api).createNamespacedRoleBinding({ namespace: ns, body: {
    metadata: { name }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
    subjects: [{ kind: 'ServiceAccount', name, namespace: ns }],
  } });
  const tr = await core.createNamespacedServiceAccountToken({ namespace: ns, name, body: { spec: { audiences: [], expirationSeconds: 3600 } } });
  return tr.status!.token!;
}

function writeKubeconfig(name: string, user: string): string {
  const cluster = env.kc.getCurrentCluster()!;
  const path = join(dir, name);
  writeFileSync(path, `apiVersion: v1
kind: Config
current-context: c
clusters:
- name: c
  cluster: { server: "${cluster.server}", certificate-authority-data: "${cluster.caData}" }
users:
- name: u
  user: ${user}
contexts:
- name: c
  context: { cluster: c, user: u }
`);
  return path;
}

/** Allowed in its namespace (an absent ConfigMap is a 404, not a 403), forbidden elsewhere. */
async function assertActsAs(kube: KubeClient, ns: string, account: string): Promise<void> {
  assert.equal(await ifExists(() => kube.getConfigMap(ns, 'absent')), undefined);
  const denied = toKubeError(await kube.getConfigMap('default', 'kube-root-ca.crt').catch((e: unknown) => e));
  assert.equal(denied.code, 403);
  assert.match(denied.message, new RegExp(`system:serviceaccount:${ns}:${account}`));
}

test('a kubeconfig with a bearer token authenticates as its ServiceAccount', async () => {
  const ns = await env.namespace('token');
  const token = await serviceAccountToken(ns, 'reader');
  await assertActsAs(new KubeClient(loadKubeConfig(writeKubeconfig('token', `{ token: "${token}" }`))), ns, 'reader');
});

test('a token file is read from disk, and a rotated one is picked up after the API server refuses the old one', async () => {
  const ns = await env.namespace('tokenfile');
  const tokenPath = join(dir, 'tokenfile-token');
  writeFileSync(tokenPath, 'not-a-valid-token\n');
  const kube = new KubeClient(loadKubeConfig(writeKubeconfig('tokenfile', `{ tokenFile: "${tokenPath}" }`)));
  const refused = toKubeError(await kube.getConfigMap(ns, 'absent').catch((e: unknown) => e));
  assert.equal(refused.code, 401);
  writeFileSync(tokenPath, `${await serviceAccountToken(ns, 'rotated')}\n`);
  await assertActsAs(kube, ns, 'rotated');
});

test("an exec credential plugin's token is used (our own runner: client-node is not loaded)", async () => {
  const ns = await env.namespace('exec');
  const credential = JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: await serviceAccountToken(ns, 'plugin') } });
  const plugin = join(dir, 'plugin.json');
  writeFileSync(plugin, credential);
  const exec = JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: ['-e', `process.stdout.write(require('fs').readFileSync(${JSON.stringify(plugin)}))`], interactiveMode: 'Never' });
  await assertActsAs(new KubeClient(loadKubeConfig(writeKubeconfig('exec', `{ exec: ${exec} }`))), ns, 'plugin');
});

/** Who the API server thinks we are (SelfSubjectReview). */
async function whoAmI(kc: KubeConfig): Promise<{ username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> }> {
  const review = await send<{ status: { userInfo: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> } } }>(kc, {}, {
    method: 'POST', path: '/apis/authentication.k8s.io/v1/selfsubjectreviews', body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
  });
  return review.status.userInfo;
}

test('a client certificate from the kubeconfig authenticates, and every impersonation field arrives as its own header', async () => {
  const admin = loadKubeConfig(env.kubeconfigPath);
  assert.deepEqual((await whoAmI(admin)).username, 'admin');
  const { certData, keyData } = admin.getCurrentUser()!;
  const kc = loadKubeConfig(writeKubeconfig('impersonate', `{ client-certificate-data: "${certData}", client-key-data: "${keyData}", as: alice, as-uid: "1234", as-groups: [team-a, team-b], as-user-extra: { example.com/scopes: [read, write] } }`));
  const who = await whoAmI(kc);
  assert.deepEqual([who.username, who.uid, who.groups, who.extra], ['alice', '1234', ['team-a', 'team-b', 'system:authenticated'], { 'example.com/scopes': ['read', 'write'] }]);
});

test("in a pod: the service's address, the mounted CA and the service account's token", async () => {
  const ns = await env.namespace('incluster');
  const root = mkdtempSync(join(dir, 'sa-'));
  writeFileSync(join(root, 'ca.crt'), Buffer.from(env.kc.getCurrentCluster()!.caData!, 'base64'));
  writeFileSync(join(root, 'token'), await serviceAccountToken(ns, 'pod'));
  const { hostname, port } = new URL(env.kc.getCurrentCluster()!.server);
  await assertActsAs(new KubeClient(inClusterConfig({ KUBERNETES_SERVICE_HOST: hostname, KUBERNETES_SERVICE_PORT: port }, root)), ns, 'pod');
});

test('an informer whose resourceVersion the API server lost (410 Gone) relists at once, delivers deletes for what vanished and keeps watching', {
  skip: !process.env.USE_EXISTING_CLUSTER ? false : 'needs a control plane this test can restart',
}, async () => {
  const ns = await env.namespace('relist');
  const core = env.kc.makeApiClient(CoreV1Api);
  const label = { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE };
  const cm = (name: string) => ({ metadata: { name, namespace: ns, labels: label } });
  await core.createNamespacedConfigMap({ namespace: ns, body: cm('stays') });
  await core.createNamespacedConfigMap({ namespace: ns, body: cm('goes') });
  const changed: string[] = [];
  const deleted: string[] = [];
  const restarts: number[] = [];
  const informer = new KubeClient(env.kc).managedConfigMapInformer({
    onChange: (o: ConfigMap) => changed.push(o.metadata.name!), onDelete: (o: ConfigMap) => deleted.push(o.metadata.name!),
    onRestart: (err) => restarts.push(toKubeError(err).code), resyncMs: 3_600_000,
  });
  // The informer's requests, as undici dispatches them: a list is a GET of the collection without watch=1.
  const lists: string[] = [];
  const record = (msg: unknown) => {
    const r = (msg as { request: { method: string; path: string } }).request;
    if (r.method === 'GET' && r.path.startsWith('/api/v1/configmaps') && !r.path.includes('watch=')) lists.push(r.path);
  };
  subscribe('undici:request:create', record);
  try {
    await informer.start();
    assert.deepEqual(informer.list(ns).map((o) => o.metadata.name).sort(), ['goes', 'stays']);
    assert.ok(informer.list(ns).every((o) => o.metadata.managedFields === undefined), 'managedFields stripped');
    // Writes the informer does not watch move etcd's revision past the informer's resourceVersion.
    for (let i = 0; i < 5; i++) await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: `unwatched-${i}`, namespace: ns } } });
    // kubectl, not our client, so the informer sees no event for it: the API server restarts
    // and forgets its watch cache; what the informer watched from is then too old (410 Gone).
    const listsBefore = lists.length;
    await env.controlPlane!.restartAPIServer();
    await env.kubectl(['-n', ns, 'delete', 'configmap', 'goes']);
    await core.createNamespacedConfigMap({ namespace: ns, body: cm('new') });
    await eventually(async () => informer.get('new', ns) && !informer.get('goes', ns), { timeoutMs: 60_000, what: 'the cache caught up' });
    assert.deepEqual(informer.list(ns).map((o) => o.metadata.name).sort(), ['new', 'stays']);
    assert.ok(deleted.includes('goes'), 'the vanished ConfigMap was delivered as a delete');
    assert.ok(changed.includes('new'));
    assert.ok(!restarts.includes(410), `a 410 is a relist, not a failure to back off from: ${restarts.join(', ')}`);
    console.log(`lists after the restart: ${lists.length - listsBefore}; restarts: ${restarts.join(', ')}`);
    assert.ok(lists.length > listsBefore, 'the informer listed again');
  } finally {
    unsubscribe('undici:request:create', record);
    await informer.stop();
  }
});
