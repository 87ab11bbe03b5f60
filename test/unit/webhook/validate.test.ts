// Binding identities to ServiceAccounts: each rule that refuses a pod, the
// words it uses, and the pods that must get through.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { needsIdentities, RULES, validatePod, type Verdict } from '../../../src/webhook/validate.ts';
import type { Pod } from '../../../src/webhook/pod.ts';
import { agentPod, identity, pod } from './fixtures.ts';

const identities = [identity('planner'), identity('auditor', 'audit-sa', { secretName: 'auditor-certs' })];
const judge = (p: Pod, ids = identities) => validatePod({ pod: p, namespace: 'agents', identities: ids });

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
  assert.deepEqual(RULES.map((r) => r.name), ['identityExists', 'serviceAccountMatches', 'injectContainersExist', 'identityDirectoryFree', 'identitySecretsStayWithTheirServiceAccount']);
  // Missing identity and a stolen Secret: the missing identity is reported.
  denied(judge(pod({ labels: { 'agentidentity.dev/agent': 'ghost' }, spec: { volumes: [{ name: 'v', secret: { secretName: planner } }] } })), 'IdentityNotFound');
});
