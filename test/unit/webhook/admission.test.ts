// The AdmissionReview handlers over injected lookups: what each answers, and
// that an unrelated pod is answered without touching the API server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type AdmissionRequest, describeLookupError, type IdentityLookup, mutate, validate } from '../../../src/webhook/admission.ts';
import { isObjectName, MAX_INJECTED_CONTAINERS } from '../../../src/webhook/mutate.ts';
import { KubeError } from '../../../src/kube/errors.ts';
import type { AgentIdentity, ObjectMeta, TrustDomain } from '../../../src/api/types.ts';
import type { Pod } from '../../../src/webhook/pod.ts';
import { agentPod, applyPatch, identity, ownedSecret, pod } from './fixtures.ts';

const POD_KIND = { group: '', version: 'v1', kind: 'Pod' };
const request = (object: Pod, namespace = 'agents'): AdmissionRequest => ({ uid: 'u-1', kind: POD_KIND, namespace, operation: 'CREATE', object });

function lookup(ids: AgentIdentity[]): IdentityLookup & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    get: async (ns, name) => { calls.push(`get ${ns}/${name}`); return ids.find((i) => i.metadata.name === name); },
    // What the field selectors spec.secretName=S and status.secretName=S select (each review's identity reads: related.ts).
    claimants: async (ns, s) => { calls.push(`claimants ${ns}/${s}`); return ids.filter((i) => i.spec.secretName === s || i.status?.secretName === s); },
  };
}
/** The validating webhook's lookups: the identities, the metadata of the Secrets and ConfigMaps that exist, and TrustDomains. Every call is recorded. */
function lookups(ids: AgentIdentity[], secrets: ObjectMeta[] = [], configMaps: ObjectMeta[] = [], trustDomains: TrustDomain[] = []) {
  const identities = lookup(ids);
  const secretMetadata = async (ns: string, name: string) => { identities.calls.push(`secret ${ns}/${name}`); return secrets.find((m) => m.name === name); };
  const configMapMetadata = async (ns: string, name: string) => { identities.calls.push(`configmap ${ns}/${name}`); return configMaps.find((m) => m.name === name); };
  const trustDomain = async (name: string) => { identities.calls.push(`trustdomain ${name}`); return trustDomains.find((t) => t.metadata.name === name); };
  return { identities, secretMetadata, configMapMetadata, trustDomain, calls: identities.calls };
}
const absent = async () => undefined;
const failing: IdentityLookup = {
  get: async () => { throw new KubeError(403, 'Forbidden', 'agentidentities.agentidentity.dev "planner" is forbidden'); },
  claimants: async () => { throw new KubeError(0, 'NetworkError', 'The operation was aborted due to timeout'); },
};

test('mutate: a labelled pod gets a base64 JSONPatch that injects its identity', async () => {
  const p = agentPod('planner');
  const out = await mutate(request(p), { identities: lookup([identity('planner')]) });
  assert.equal(out.result, 'patched');
  assert.equal(out.response.uid, 'u-1');
  assert.equal(out.response.allowed, true);
  assert.equal(out.response.patchType, 'JSONPatch');
  const patched = applyPatch(p, JSON.parse(Buffer.from(out.response.patch!, 'base64').toString('utf8')));
  assert.equal(patched.spec.volumes?.[0]?.name, 'agent-identity');
  assert.equal(out.response.warnings, undefined);
});

test('mutate: an already injected pod is allowed with no patch', async () => {
  const ids = [identity('planner')];
  const first = await mutate(request(agentPod('planner')), { identities: lookup(ids) });
  const injected = applyPatch(agentPod('planner'), JSON.parse(Buffer.from(first.response.patch!, 'base64').toString('utf8')));
  const again = await mutate(request(injected), { identities: lookup(ids) });
  assert.equal(again.result, 'allowed');
  assert.equal(again.response.patch, undefined);
});

test('mutate: an identity without a certificate yet is injected with a warning', async () => {
  const out = await mutate(request(agentPod('planner')), { identities: lookup([identity('planner', 'planner', { spiffeID: undefined })]) });
  assert.equal(out.result, 'patched');
  assert.deepEqual(out.response.warnings, ['AgentIdentity "planner" has no certificate yet; pod "agent" starts once Secret "planner-identity" exists']);
});

test('mutate: unlabelled pods and missing identities pass unpatched (the validating webhook refuses the latter)', async () => {
  const l = lookup([]);
  assert.deepEqual(await mutate(request(pod()), { identities: l }), { result: 'allowed', response: { uid: 'u-1', allowed: true } });
  assert.deepEqual(l.calls, [], 'no lookup for an unlabelled pod');
  const missing = await mutate(request(agentPod('ghost')), { identities: l });
  assert.equal(missing.response.allowed, true);
  assert.equal(missing.response.patch, undefined);
  assert.deepEqual(l.calls, ['get agents/ghost']);
});

test('mutate: a failed lookup refuses the pod and says what failed, in our words; the API server\'s go to the log', async () => {
  const out = await mutate(request(agentPod('planner')), { identities: failing });
  assert.equal(out.result, 'error');
  assert.equal(out.response.allowed, false);
  assert.equal(out.response.status?.code, 500);
  assert.equal(out.response.status!.message, 'could not read AgentIdentity "planner" in namespace "agents": the webhook is not allowed to read it (HTTP 403); check its RBAC; the pod was not admitted, retry shortly');
  assert.equal(out.error, 'agentidentities.agentidentity.dev "planner" is forbidden');
});

test('lookup errors are described by kind, never by the API server\'s text', () => {
  assert.equal(describeLookupError(new KubeError(0, 'TimeoutError', 'The operation was aborted due to timeout')), 'the API server did not answer in time');
  assert.equal(describeLookupError(new KubeError(401, 'Unauthorized', 'Unauthorized')), 'the webhook is not allowed to read it (HTTP 401); check its RBAC');
  assert.equal(describeLookupError(new KubeError(500, 'InternalError', 'etcdserver: leader changed /registry/x')), 'the API server answered HTTP 500');
});

test('mutate: a label that is not an AgentIdentity name is refused before any lookup', async () => {
  for (const value of ['alpha/status', '../secrets', 'Planner', 'a_b', '-a', 'a'.repeat(254), 'x%2Fstatus']) {
    const l = lookup([identity('planner')]);
    const out = await mutate(request(pod({ labels: { 'agentidentity.dev/agent': value } })), { identities: l });
    assert.equal(out.result, 'denied', value);
    assert.equal(out.reason, 'InvalidIdentityName');
    assert.equal(out.response.status?.code, 403);
    assert.deepEqual(l.calls, [], `no API call for ${value.slice(0, 20)}`);
  }
  const out = await mutate(request(pod({ labels: { 'agentidentity.dev/agent': 'alpha/status' } })), { identities: lookup([]) });
  assert.equal(out.response.status!.message, 'pod "agent" has the label agentidentity.dev/agent: "alpha/status", which is not an AgentIdentity name; use the name of an AgentIdentity in namespace "agents" (lowercase letters, digits, \'-\' and \'.\', starting and ending with a letter or digit, at most 253 characters)');
  const long = await mutate(request(pod({ labels: { 'agentidentity.dev/agent': 'A'.repeat(100_000) } })), { identities: lookup([]) });
  assert.ok(long.response.status!.message.length < 400, 'a huge value is clipped in the message');
  for (const name of ['planner', 'a', 'planner.v2', 'a-1.b-2']) assert.ok(isObjectName(name), name);
});

test('a request.namespace that is not a name is refused before it reaches a URL path', async () => {
  for (const handler of [mutate, validate]) {
    const l = lookup([identity('planner')]);
    const out = await handler(request(agentPod('planner'), 'agents/agentidentities/x'), { identities: l, secretMetadata: absent, configMapMetadata: absent, trustDomain: absent });
    assert.equal(out.reason, 'InvalidNamespace');
    assert.equal(out.response.allowed, false);
    assert.deepEqual(l.calls, []);
  }
});

test('mutate: a pod that would take the identity in more containers than the webhook injects into is refused, with the way out', async () => {
  const containers = Array.from({ length: MAX_INJECTED_CONTAINERS + 1 }, (_, i) => ({ name: `c${i}` }));
  const out = await mutate(request(agentPod('planner', { spec: { containers } })), { identities: lookup([identity('planner')]) });
  assert.equal(out.result, 'denied');
  assert.equal(out.reason, 'TooManyContainers');
  assert.equal(out.response.patch, undefined);
  assert.match(out.response.status!.message, /^pod "agent" would carry the identity in 1001 containers, more than the 1000 the webhook injects into; name the ones that need it with the annotation agentidentity\.dev\/inject-containers$/);
  const named = agentPod('planner', { spec: { containers }, annotations: { 'agentidentity.dev/inject-containers': 'c7' } });
  assert.equal((await mutate(request(named), { identities: lookup([identity('planner')]) })).result, 'patched', 'naming a few of them works');
});

test('validate: refusals carry 403 and the rule\'s message', async () => {
  const out = await validate(request(agentPod('planner', { serviceAccountName: 'other' })), lookups([identity('planner')]));
  assert.equal(out.result, 'denied');
  assert.equal(out.reason, 'ServiceAccountMismatch');
  assert.equal(out.response.allowed, false);
  assert.equal(out.response.status?.code, 403);
  assert.match(out.response.status!.message, /runs as ServiceAccount "other", but AgentIdentity "planner" belongs to ServiceAccount "planner"/);
});

test('validate: an unrelated pod is allowed without listing anything', async () => {
  const l = lookups([identity('planner')]);
  const out = await validate(request(pod({ spec: { volumes: [{ name: 'c', configMap: { name: 'x' } }] } })), l);
  assert.equal(out.response.allowed, true);
  assert.deepEqual(l.calls, []);
});

test('validate: a failed identity read refuses the pod (fail closed)', async () => {
  const out = await validate(request(pod({ spec: { volumes: [{ name: 's', secret: { secretName: 'x' } }] } })), { identities: failing, secretMetadata: absent, configMapMetadata: absent, trustDomain: absent });
  assert.equal(out.response.allowed, false);
  assert.equal(out.response.status!.message, 'could not read the AgentIdentities in namespace "agents" that the pod names: the API server did not answer in time; the pod was not admitted, retry shortly');
});

test('anything that is not a Pod is allowed untouched', async () => {
  const req = { uid: 'u-2', kind: { group: 'apps', version: 'v1', kind: 'Deployment' }, namespace: 'agents', object: { metadata: { labels: { 'agentidentity.dev/agent': 'x' } }, spec: {} } };
  for (const handler of [mutate, validate]) {
    const out = await handler(req, { identities: failing, secretMetadata: async () => { throw new Error('not read'); }, configMapMetadata: async () => { throw new Error('not read'); }, trustDomain: async () => { throw new Error('not read'); } });
    assert.deepEqual(out.response, { uid: 'u-2', allowed: true });
  }
});

test('validate: the owner of each referenced Secret is read (metadata only), once per name, then only the identities they and the pod name', async () => {
  const ids = [identity('alpha'), identity('zzz-shadow', 'other', { secretName: 'alpha-identity' })];
  const l = lookups(ids, [ownedSecret({ name: 'alpha', uid: 'uid-alpha' })]);
  const thief = pod({ serviceAccountName: 'other', spec: {
    volumes: [{ name: 'v', secret: { secretName: 'alpha-identity' } }],
    containers: [{ name: 'app', envFrom: [{ secretRef: { name: 'alpha-identity' } }, { secretRef: { name: 'settings' } }] }],
  } });
  const out = await validate(request(thief), l);
  assert.equal(out.reason, 'IdentitySecretOfAnotherServiceAccount');
  assert.match(out.response.status!.message, /AgentIdentity "alpha", which only pods running as ServiceAccount "alpha" may use$/);
  assert.deepEqual(l.calls.sort(), ['claimants agents/settings', 'get agents/alpha', 'secret agents/alpha-identity', 'secret agents/settings']);
  const owner = await validate(request(pod({ serviceAccountName: 'alpha', spec: { volumes: [{ name: 'v', secret: { secretName: 'alpha-identity' } }] } })), l);
  assert.equal(owner.result, 'allowed');
});

test('validate: a labelled pod\'s policy ConfigMap is read (metadata only) beside its identity, and for a pod-certificate identity one it does not control refuses the pod', async () => {
  const squatted = { name: 'planner-identity-policy', namespace: 'agents' };
  const podCertificates = (i: AgentIdentity): AgentIdentity => ({ ...i, spec: { ...i.spec, delivery: 'PodCertificate' } });
  const l = lookups([podCertificates(identity('planner'))], [], [squatted]);
  const out = await validate(request(agentPod('planner')), l);
  assert.equal(out.result, 'denied');
  assert.equal(out.reason, 'PolicyConfigMapConflict');
  assert.equal(out.response.status!.message, 'ConfigMap agents/planner-identity-policy is not the operator\'s policy for AgentIdentity planner (it is not controlled by it); delete it — the operator will write the real one');
  assert.ok(l.calls.includes('configmap agents/planner-identity-policy') && l.calls.includes('get agents/planner'), l.calls.join(', '));
  const ours = { ...squatted, ownerReferences: [{ apiVersion: 'agentidentity.dev/v1alpha1', kind: 'AgentIdentity', name: 'planner', uid: 'uid-planner', controller: true }] };
  assert.equal((await validate(request(agentPod('planner')), lookups([podCertificates(identity('planner'))], [], [ours]))).result, 'allowed');
  assert.equal((await validate(request(agentPod('planner')), lookups([podCertificates(identity('planner'))]))).result, 'allowed', 'not written yet: the kubelet waits for it');
  // Secret delivery projects policy.json from the identity Secret: a ConfigMap of that name is no pod's policy, and is not read.
  const secretDelivered = lookups([identity('planner')], [], [squatted]);
  assert.equal((await validate(request(agentPod('planner')), secretDelivered)).result, 'allowed');
  assert.deepEqual(secretDelivered.calls, ['get agents/planner']);
});

test('validate: a failed policy ConfigMap read (pod-certificate delivery) refuses the pod and names the ConfigMap', async () => {
  const podCertificates = { ...identity('planner'), spec: { ...identity('planner').spec, delivery: 'PodCertificate' as const } };
  const out = await validate(request(agentPod('planner')), {
    ...lookups([podCertificates]),
    configMapMetadata: async (_ns: string, name: string) => {
      if (name === 'planner-identity-policy') throw new KubeError(403, 'Forbidden', 'configmaps "planner-identity-policy" is forbidden');
      return undefined;
    },
  });
  assert.equal(out.result, 'error');
  assert.equal(out.response.status!.message, 'could not read ConfigMap "planner-identity-policy" in namespace "agents": the webhook is not allowed to read it (HTTP 403); check its RBAC; the pod was not admitted, retry shortly');
});

test('validate: a failed Secret read refuses the pod in our words and names the Secret; the API server\'s go to the log', async () => {
  const out = await validate(request(pod({ spec: { volumes: [{ name: 's', secret: { secretName: 'alpha-identity' } }] } })), {
    identities: lookup([]),
    secretMetadata: async () => { throw new KubeError(403, 'Forbidden', 'secrets "alpha-identity" is forbidden: User "x" cannot get resource "secrets"'); },
    configMapMetadata: absent,
    trustDomain: absent,
  });
  assert.equal(out.result, 'error');
  assert.equal(out.response.status!.message, 'could not read Secret "alpha-identity" in namespace "agents": the webhook is not allowed to read it (HTTP 403); check its RBAC; the pod was not admitted, retry shortly');
  assert.match(out.error!, /cannot get resource "secrets"/);
});

test('validate: at most 8 Secret reads at once, and none after one failed', async () => {
  let inFlight = 0;
  let peak = 0;
  const read: string[] = [];
  const secretMetadata = async (_ns: string, name: string) => {
    read.push(name);
    inFlight++;
    peak = Math.max(peak, inFlight);
    await new Promise((r) => setImmediate(r));
    inFlight--;
    if (name === 's20') throw new KubeError(0, 'NetworkError', 'timeout');
    return undefined;
  };
  const many = pod({ spec: { volumes: Array.from({ length: 100 }, (_, i) => ({ name: `v${i}`, secret: { secretName: `s${i}` } })) } });
  const out = await validate(request(many), { identities: lookup([]), secretMetadata, configMapMetadata: absent, trustDomain: absent });
  assert.equal(peak, 8);
  assert.equal(out.result, 'error');
  assert.match(out.response.status!.message, /^could not read Secret "s20" in namespace "agents": the API server did not answer in time/);
  assert.ok(read.length < 30, `${read.length} reads started; the failure stopped the rest`);
});

test('validate: a pod referencing more Secrets than the webhook reads is refused before any lookup', async () => {
  const l = lookups([]);
  const many = pod({ spec: { volumes: Array.from({ length: 101 }, (_, i) => ({ name: `v${i}`, secret: { secretName: `s${i}` } })) } });
  const out = await validate(request(many), l);
  assert.equal(out.reason, 'TooManySecrets');
  assert.deepEqual(l.calls, []);
});

test('validate: a pod-certificate pod is refused when the trust bundle ConfigMap in its namespace is not its TrustDomain\'s', async () => {
  const podCertificate: AgentIdentity = { ...identity('planner'), spec: { ...identity('planner').spec, delivery: 'PodCertificate' } };
  const trustDomain = { apiVersion: 'agentidentity.dev/v1alpha1', kind: 'TrustDomain', metadata: { name: 'default', uid: 'td-uid' }, spec: { trustDomain: 'cluster.local', ca: { selfSigned: {} } } } as TrustDomain;
  const policy: ObjectMeta = { name: 'planner-identity-policy', ownerReferences: [{ apiVersion: 'agentidentity.dev/v1alpha1', kind: 'AgentIdentity', name: 'planner', uid: podCertificate.metadata.uid!, controller: true }] };
  const ours: ObjectMeta = { name: 'trust-bundle-default', ownerReferences: [{ apiVersion: 'agentidentity.dev/v1alpha1', kind: 'TrustDomain', name: 'default', uid: 'td-uid', controller: true }] };
  const squatted: ObjectMeta = { name: 'trust-bundle-default' };

  const refused = lookups([podCertificate], [], [policy, squatted], [trustDomain]);
  const out = await validate(request(agentPod('planner')), refused);
  assert.equal(out.response.allowed, false);
  assert.equal(out.reason, 'BundleConfigMapConflict');
  assert.match(out.response.status!.message!, /ConfigMap agents\/trust-bundle-default is not the operator's trust bundle/);
  assert.deepEqual(refused.calls.filter((c) => c.startsWith('trustdomain') || c.includes('trust-bundle')), ['configmap agents/trust-bundle-default', 'trustdomain default']);

  for (const configMaps of [[policy, ours], [policy]]) {
    const out2 = await validate(request(agentPod('planner')), lookups([podCertificate], [], configMaps, [trustDomain]));
    assert.equal(out2.response.allowed, true, `with ${configMaps.map((c) => c.name).join(', ')}`);
  }
  // A Secret-delivered identity mounts its Secret's ca.crt: the namespace's bundle copy is not read.
  const secretPod = lookups([identity('planner')], [], [policy, squatted], [trustDomain]);
  await validate(request(agentPod('planner')), secretPod);
  assert.equal(secretPod.calls.some((c) => c.includes('trust-bundle') || c.startsWith('trustdomain')), false);
});
