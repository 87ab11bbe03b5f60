// Binding identities to ServiceAccounts: each rule that refuses a pod, the
// words it uses, and the pods that must get through.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_REFERENCED_SECRETS, needsIdentities, policyConfigMapToRead, RULES, secretsToRead, validatePod, type Verdict } from '../../../src/webhook/validate.ts';
import type { ObjectMeta } from '../../../src/api/types.ts';
import type { Pod } from '../../../src/webhook/pod.ts';
import { agentPod, identity, ownedSecret, pod } from './fixtures.ts';

const identities = [identity('planner'), identity('auditor', 'audit-sa', { secretName: 'auditor-certs' })];
/** `secrets`: the Secrets that exist, as their metadata; none by default (not issued yet). */
const judge = (p: Pod, ids = identities, secrets: ObjectMeta[] = [], policyConfigMap?: ObjectMeta) =>
  validatePod({ pod: p, namespace: 'agents', identities: ids, secrets: new Map(secrets.map((m) => [m.name!, m])), ...(policyConfigMap ? { policyConfigMap } : {}) });
const mounting = (secretName: string, serviceAccountName: string) => pod({ serviceAccountName, spec: { volumes: [{ name: 'v', secret: { secretName } }] } });

function denied(v: Verdict, reason: string): string {
  assert.equal(v.allowed, false, 'the pod was refused');
  if (v.allowed) throw new Error('unreachable');
  assert.equal(v.reason, reason);
  assert.doesNotMatch(v.message, /undefined|\[object/, 'the message is complete');
  return v.message;
}

test('a labelled pod naming an AgentIdentity that does not exist is refused, saying which and where', () => {
  const m = denied(judge(agentPod('planer')), 'IdentityNotFound');
  assert.equal(m, 'pod "agent" asks for AgentIdentity "planer" (label agentidentity.dev/agent), but namespace "agents" has no AgentIdentity "planer"; create it, or correct the label');
});

test('an empty agent label is refused', () => {
  const m = denied(judge(pod({ labels: { 'agentidentity.dev/agent': '' } })), 'IdentityNotFound');
  assert.match(m, /empty value/);
});

test('a labelled pod running as another ServiceAccount is refused, naming both and the fix', () => {
  const m = denied(judge(agentPod('planner', { serviceAccountName: 'intruder' })), 'ServiceAccountMismatch');
  assert.equal(m, 'pod "agent" runs as ServiceAccount "intruder", but AgentIdentity "planner" belongs to ServiceAccount "planner"; set spec.serviceAccountName: planner in the pod (or its workload\'s pod template)');
});

test('no serviceAccountName means "default"; the deprecated serviceAccount field counts', () => {
  const p = pod({ labels: { 'agentidentity.dev/agent': 'planner' } });
  assert.match(denied(judge(p), 'ServiceAccountMismatch'), /runs as ServiceAccount "default"/);
  assert.deepEqual(judge({ ...p, spec: { ...p.spec, serviceAccount: 'planner' } }), { allowed: true });
});

test('a pod made by a controller is described by its generateName', () => {
  const p = agentPod('planner', { serviceAccountName: 'x' });
  const generated = { ...p, metadata: { ...p.metadata, name: undefined, generateName: 'planner-7d9f-' } };
  assert.match(denied(judge(generated), 'ServiceAccountMismatch'), /^pod "planner-7d9f-\*" runs as/);
});

test('inject-containers naming containers the pod does not have is refused, listing what it has', () => {
  const p = agentPod('planner', { annotations: { 'agentidentity.dev/inject-containers': 'app,sidecar,proxy' }, spec: { containers: [{ name: 'app' }], initContainers: [{ name: 'init' }] } });
  assert.equal(denied(judge(p), 'InjectContainersUnknown'),
    'pod "agent" has containers "app", "init"; the annotation agentidentity.dev/inject-containers names "sidecar", "proxy", which are not among them');
  const empty = agentPod('planner', { annotations: { 'agentidentity.dev/inject-containers': ' , ' } });
  assert.match(denied(judge(empty), 'InjectContainersUnknown'), /is empty$/);
});

test('inject-containers against a huge pod: refused from one pass, with a message of bounded length', () => {
  const containers = Array.from({ length: 40_000 }, (_, i) => ({ name: `c${i}` }));
  const names = Array.from({ length: 200_000 }, (_, i) => `n${i}`).join(',');
  const p = agentPod('planner', { annotations: { 'agentidentity.dev/inject-containers': `${names},c1` }, spec: { containers } });
  const m = denied(judge(p), 'InjectContainersUnknown');
  assert.ok(m.length < 1000, `message of ${m.length} characters`);
  assert.match(m, /^pod "agent" has containers "c0", "c1", .*"c9" and 39990 more; the annotation agentidentity.dev\/inject-containers names "n0", .*"n9" and \d+ more, which are not among them$/);
  // The same check, every name present: allowed.
  const all = agentPod('planner', { annotations: { 'agentidentity.dev/inject-containers': containers.map((c) => c.name).reverse().join(',') }, spec: { containers } });
  assert.deepEqual(judge(all), { allowed: true });
});

test('a container that mounts another volume at the identity directory is refused', () => {
  const p = agentPod('planner', { spec: { containers: [{ name: 'app', volumeMounts: [{ name: 'scratch', mountPath: '/var/run/agentidentity' }] }], volumes: [{ name: 'scratch', emptyDir: {} }] } });
  assert.match(denied(judge(p), 'IdentityDirectoryInUse'), /^container "app" of pod "agent" mounts volume "scratch" at \/var\/run\/agentidentity/);
  // Leaving that container out with the annotation is the way out.
  const excluded = { ...p, metadata: { ...p.metadata, annotations: { 'agentidentity.dev/inject-containers': 'other' } }, spec: { ...p.spec, containers: [...p.spec.containers, { name: 'other' }] } };
  assert.deepEqual(judge(excluded), { allowed: true });
});

// Every way a pod spec reaches a Secret, each under the wrong ServiceAccount.
const planner = 'planner-identity';
const references: Array<[string, Partial<Pod['spec']>, RegExp]> = [
  ['secret volume', { volumes: [{ name: 'stolen', secret: { secretName: planner } }] }, /\(volume "stolen"\)/],
  ['projected volume', { volumes: [{ name: 'p', projected: { sources: [{ configMap: { name: 'c' } }, { secret: { name: planner } }] } }] }, /\(projected volume "p"\)/],
  ['env secretKeyRef', { containers: [{ name: 'app', env: [{ name: 'KEY', valueFrom: { secretKeyRef: { name: planner, key: 'tls.key' } } }] }] }, /\(env KEY of container "app"\)/],
  ['envFrom secretRef', { containers: [{ name: 'app', envFrom: [{ secretRef: { name: planner } }] }] }, /\(envFrom of container "app"\)/],
  ['initContainer env', { initContainers: [{ name: 'init', env: [{ name: 'K', valueFrom: { secretKeyRef: { name: planner, key: 'tls.key' } } }] }] }, /\(env K of initContainer "init"\)/],
  ['initContainer envFrom', { initContainers: [{ name: 'init', envFrom: [{ secretRef: { name: planner } }] }] }, /\(envFrom of initContainer "init"\)/],
  ['ephemeralContainer env', { ephemeralContainers: [{ name: 'debug', env: [{ name: 'K', valueFrom: { secretKeyRef: { name: planner, key: 'tls.key' } } }] }] }, /\(env K of ephemeralContainer "debug"\)/],
  ['ephemeralContainer envFrom', { ephemeralContainers: [{ name: 'debug', envFrom: [{ secretRef: { name: planner } }] }] }, /\(envFrom of ephemeralContainer "debug"\)/],
];

for (const [how, spec, where] of references) {
  test(`an unlabelled pod under another ServiceAccount reaching an identity Secret through ${how} is refused`, () => {
    const p = pod({ serviceAccountName: 'default', spec });
    assert.equal(needsIdentities(p), true, 'the webhook looks this pod up');
    const m = denied(judge(p), 'IdentitySecretOfAnotherServiceAccount');
    assert.match(m, where);
    assert.match(m, /^pod "agent" runs as ServiceAccount "default" but uses Secret "planner-identity" .*; that Secret holds the private key of AgentIdentity "planner", which only pods running as ServiceAccount "planner" may use$/);
    // The same reference from the owning ServiceAccount is fine.
    assert.deepEqual(judge(pod({ serviceAccountName: 'planner', spec })), { allowed: true });
  });
}

test('identity Secrets are known by spec.secretName and by status.secretName', () => {
  assert.match(denied(judge(pod({ spec: { volumes: [{ name: 'v', secret: { secretName: 'auditor-certs' } }] } })), 'IdentitySecretOfAnotherServiceAccount'), /AgentIdentity "auditor".*ServiceAccount "audit-sa"/);
  const renamed = [identity('planner', 'planner', { secretName: 'new-name', statusSecretName: 'old-name' })];
  denied(judge(pod({ spec: { volumes: [{ name: 'v', secret: { secretName: 'old-name' } }] } }), renamed), 'IdentitySecretOfAnotherServiceAccount');
});

test('a labelled pod with its own identity may not also take another identity\'s Secret', () => {
  const p = agentPod('planner', { spec: { containers: [{ name: 'app', envFrom: [{ secretRef: { name: 'auditor-certs' } }] }] } });
  denied(judge(p), 'IdentitySecretOfAnotherServiceAccount');
});

test('allowed: the right ServiceAccount, ordinary Secrets, unrelated pods', () => {
  assert.deepEqual(judge(agentPod('planner')), { allowed: true });
  // The pod as the mutating webhook leaves it: it references its own identity Secret.
  assert.deepEqual(judge(agentPod('planner', { spec: { volumes: [{ name: 'agent-identity', projected: { sources: [{ secret: { name: planner } }] } }] } })), { allowed: true });
  assert.deepEqual(judge(pod({ spec: { volumes: [{ name: 'db', secret: { secretName: 'database-password' } }] } })), { allowed: true });
  assert.deepEqual(judge(pod({ spec: { containers: [{ name: 'app', envFrom: [{ secretRef: { name: 'api-token' } }] }] } })), { allowed: true });
  assert.deepEqual(judge(pod()), { allowed: true });
  assert.deepEqual(judge(agentPod('planner'), []).allowed, false, 'but nothing is allowed by an empty namespace');
});

test('unrelated pods need no lookup at all', () => {
  assert.equal(needsIdentities(pod()), false);
  assert.equal(needsIdentities(pod({ spec: { volumes: [{ name: 'c', configMap: { name: 'x' } }], containers: [{ name: 'a', env: [{ name: 'A', value: '1' }], envFrom: [{ configMapRef: { name: 'x' } }] }] } })), false);
  assert.equal(needsIdentities(agentPod('planner')), true);
});

test('rules run in order; the first refusal is the answer', () => {
  assert.deepEqual(RULES.map((r) => r.name), ['identityExists', 'serviceAccountMatches', 'policyIsTheOperators', 'bundleIsTheOperators', 'injectContainersExist', 'identityDirectoryFree', 'podIsolatesProxy', 'identityOnlyInProxy', 'proxyKeysOnlyInProxies', 'identitySecretsStayWithTheirServiceAccount']);
  // Missing identity and a stolen Secret: the missing identity is reported.
  denied(judge(pod({ labels: { 'agentidentity.dev/agent': 'ghost' }, spec: { volumes: [{ name: 'v', secret: { secretName: planner } }] } })), 'IdentityNotFound');
});

test('the Secret\'s owner decides, not the claims in specs: a shadow claim neither hands the Secret to its ServiceAccount nor takes it from the owner', () => {
  const alpha = identity('alpha');
  const shadow = identity('zzz-shadow', 'other', { secretName: 'alpha-identity' });
  const issued = [ownedSecret({ name: 'alpha', uid: 'uid-alpha' })];
  const m = denied(judge(mounting('alpha-identity', 'other'), [alpha, shadow], issued), 'IdentitySecretOfAnotherServiceAccount');
  assert.equal(m, 'pod "agent" runs as ServiceAccount "other" but uses Secret "alpha-identity" (volume "v"); that Secret holds the private key of AgentIdentity "alpha", which only pods running as ServiceAccount "alpha" may use');
  assert.deepEqual(judge(mounting('alpha-identity', 'alpha'), [alpha, shadow], issued), { allowed: true }, 'the owner wins over the later claim');
  // The order of the list does not matter (the old map let the last claim win).
  denied(judge(mounting('alpha-identity', 'other'), [shadow, alpha], issued), 'IdentitySecretOfAnotherServiceAccount');
  // Not issued yet: no owner to ask, so every claim must agree, and the two do not.
  assert.match(denied(judge(mounting('alpha-identity', 'alpha'), [alpha, shadow]), 'IdentitySecretOfAnotherServiceAccount'), /AgentIdentity "zzz-shadow", which only pods running as ServiceAccount "other"/);
  assert.match(denied(judge(mounting('alpha-identity', 'other'), [alpha, shadow]), 'IdentitySecretOfAnotherServiceAccount'), /AgentIdentity "alpha", which only pods running as ServiceAccount "alpha"/);
});

test('a Secret owned by an identity that no one claims any more is still that identity\'s', () => {
  const renamedTwice = identity('alpha', 'alpha', { secretName: 'alpha-v3' });
  const old = { ...ownedSecret({ name: 'alpha', uid: 'uid-alpha' }), name: 'alpha-v1' };
  denied(judge(mounting('alpha-v1', 'other'), [renamedTwice], [old]), 'IdentitySecretOfAnotherServiceAccount');
  assert.deepEqual(judge(mounting('alpha-v1', 'alpha'), [renamedTwice], [old]), { allowed: true });
});

test('a Secret whose owning AgentIdentity is gone may be used by nobody', () => {
  const orphan = ownedSecret({ name: 'alpha', uid: 'uid-deleted' });
  // Another AgentIdentity "alpha" (a new uid) is not the one that holds this key.
  const m = denied(judge(mounting('alpha-identity', 'alpha'), [identity('alpha')].map((i) => ({ ...i, metadata: { ...i.metadata, uid: 'uid-new' } })), [orphan]), 'IdentitySecretReserved');
  assert.match(m, /that Secret holds the private key of AgentIdentity "alpha", which no longer exists, so no pod may use it$/);
});

test('an owner that is not an AgentIdentity makes the Secret nobody\'s identity: claims still apply', () => {
  const external = { name: 'planner-identity', ownerReferences: [{ apiVersion: 'external-secrets.io/v1', kind: 'ExternalSecret', name: 'x', uid: 'uid-planner', controller: true }] };
  denied(judge(mounting('planner-identity', 'other'), identities, [external]), 'IdentitySecretOfAnotherServiceAccount');
  assert.deepEqual(judge(mounting('planner-identity', 'planner'), identities, [external]), { allowed: true });
});

test('a Secret named like an identity Secret is refused before its AgentIdentity exists, to every ServiceAccount', () => {
  for (const sa of ['other', 'beta']) {
    const m = denied(judge(mounting('beta-identity', sa)), 'IdentitySecretReserved');
    assert.equal(m, `pod "agent" runs as ServiceAccount "${sa}" but uses Secret "beta-identity" (volume "v"); that name is reserved for the identity Secret of AgentIdentity "beta" (the default spec.secretName), which no AgentIdentity in namespace "agents" holds yet, and only pods running as the ServiceAccount of the identity that gets it may use it; create AgentIdentity "beta" first, or give the Secret another name`);
  }
  // Once it exists the claim names the ServiceAccount: its pods may, others still may not.
  const beta = [...identities, identity('beta')];
  assert.deepEqual(judge(mounting('beta-identity', 'beta'), beta), { allowed: true });
  denied(judge(mounting('beta-identity', 'other'), beta), 'IdentitySecretOfAnotherServiceAccount');
  // Labelled as the operator's but unowned: the operator would adopt it, so it is reserved as well.
  const unowned = { name: 'beta-identity', labels: { 'app.kubernetes.io/managed-by': 'agent-identity-operator' } };
  denied(judge(mounting('beta-identity', 'other'), identities, [unowned]), 'IdentitySecretReserved');
});

test('an existing Secret of someone else\'s that happens to end in -identity is an ordinary Secret (the operator never writes into it)', () => {
  assert.deepEqual(judge(mounting('google-identity', 'web'), identities, [{ name: 'google-identity' }]), { allowed: true });
  // Not an object name before the suffix: no AgentIdentity could have it.
  assert.deepEqual(judge(mounting('-identity', 'web')), { allowed: true });
});

test('a spec claim on an existing, unowned Secret refuses other ServiceAccounts and says whose claim it is', () => {
  const claimer = [identity('db', 'db-sa', { secretName: 'database-password' })];
  const m = denied(judge(mounting('database-password', 'web'), claimer, [{ name: 'database-password' }]), 'IdentitySecretOfAnotherServiceAccount');
  assert.match(m, /; AgentIdentity "db" names that Secret as its identity Secret, so only pods running as ServiceAccount "db-sa" may use it$/);
  assert.deepEqual(judge(mounting('database-password', 'db-sa'), claimer, [{ name: 'database-password' }]), { allowed: true });
});

test('the Secrets read for a pod: each name once, only names a Secret can have, and at most a hundred', () => {
  const refs = pod({ spec: {
    volumes: [{ name: 'a', secret: { secretName: 'one' } }, { name: 'b', projected: { sources: [{ secret: { name: 'one' } }, { secret: { name: 'Not/A/Name' } }] } }],
    containers: [{ name: 'app', envFrom: [{ secretRef: { name: 'two' } }] }],
  } });
  assert.deepEqual(secretsToRead(refs), { names: ['one', 'two'] });
  const many = pod({ spec: { volumes: Array.from({ length: MAX_REFERENCED_SECRETS + 1 }, (_, i) => ({ name: `v${i}`, secret: { secretName: `s${i}` } })) } });
  const refused = secretsToRead(many);
  assert.ok('reason' in refused);
  assert.equal(refused.reason, 'TooManySecrets');
  assert.equal(refused.message, 'pod "agent" references 101 different Secrets; the webhook checks at most 100 per pod, so split it into pods that each need fewer');
  const repeated = pod({ spec: { volumes: Array.from({ length: 500 }, (_, i) => ({ name: `v${i}`, secret: { secretName: 'same' } })) } });
  assert.deepEqual(secretsToRead(repeated), { names: ['same'] }, 'the same Secret named many times is one read');
});

test('pod-certificate delivery: a policy ConfigMap the identity does not control refuses its pods: a tenant\'s policy.json would be mounted', () => {
  const podCertificates = identities.map((i) => ({ ...i, spec: { ...i.spec, delivery: 'PodCertificate' as const } }));
  const controlledBy = (uid: string, kind = 'AgentIdentity') => ({ name: 'planner-identity-policy', namespace: 'agents', ownerReferences: [{ apiVersion: 'agentidentity.dev/v1alpha1', kind, name: 'planner', uid, controller: true }] });
  const squatter = { name: 'planner-identity-policy', namespace: 'agents', labels: { 'app.kubernetes.io/managed-by': 'agent-identity-operator' } };
  const expected = 'ConfigMap agents/planner-identity-policy is not the operator\'s policy for AgentIdentity planner (it is not controlled by it); delete it — the operator will write the real one';
  assert.equal(denied(judge(agentPod('planner'), podCertificates, [], squatter), 'PolicyConfigMapConflict'), expected, 'the operator\'s label proves nothing');
  denied(judge(agentPod('planner'), podCertificates, [], controlledBy('uid-deleted')), 'PolicyConfigMapConflict');
  // An owner reference that is not the controller is not control.
  denied(judge(agentPod('planner'), podCertificates, [], { ...squatter, ownerReferences: [{ ...controlledBy('uid-planner').ownerReferences[0]!, controller: false }] }), 'PolicyConfigMapConflict');
  assert.deepEqual(judge(agentPod('planner'), podCertificates, [], controlledBy('uid-planner')), { allowed: true });
  assert.deepEqual(judge(agentPod('planner'), podCertificates), { allowed: true }, 'not written yet: admitted, the kubelet waits for it');
  // Only a labelled pod's own identity: another identity's ConfigMap, or a pod without the label, is not this rule's business.
  assert.deepEqual(judge(pod({ spec: { volumes: [{ name: 'c', configMap: { name: 'planner-identity-policy' } }] } }), podCertificates, [], squatter), { allowed: true });
  // Secret delivery mounts policy.json from the identity Secret: a ConfigMap of that name is nobody's policy.
  assert.deepEqual(judge(agentPod('planner'), identities, [], squatter), { allowed: true });
});

test('the policy ConfigMap read for a pod: only a labelled one\'s, only a name a ConfigMap can have', () => {
  assert.equal(policyConfigMapToRead(agentPod('planner')), 'planner-identity-policy');
  assert.equal(policyConfigMapToRead(pod()), undefined);
  assert.equal(policyConfigMapToRead(agentPod('alpha/status')), undefined);
  assert.equal(policyConfigMapToRead(agentPod('')), undefined);
  assert.equal(policyConfigMapToRead(agentPod('a'.repeat(240))), undefined, 'past 253 characters with the suffix');
});
