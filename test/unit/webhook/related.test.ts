// A pod review reads only the identities the pod and its Secrets name
// (related.ts), not the namespace: validatePod must decide every pod exactly
// as it does over the whole namespace. The fake lookup honours what the API
// server's field selectors select (spec.secretName, status.secretName: exact).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { POD_CERTIFICATE_AGENT_ANNOTATION, SIGNER_NAME } from '../../../src/api/group.ts';
import type { AgentIdentity, ObjectMeta } from '../../../src/api/types.ts';
import type { IdentityLookup } from '../../../src/webhook/admission.ts';
import type { Pod } from '../../../src/webhook/pod.ts';
import { claimantsOf, identitiesForPod } from '../../../src/webhook/related.ts';
import { secretsToRead, validatePod } from '../../../src/webhook/validate.ts';
import { identity, ownedSecret, pod } from './fixtures.ts';

const withSpec = (i: AgentIdentity, spec: Partial<AgentIdentity['spec']>): AgentIdentity => ({ ...i, spec: { ...i.spec, ...spec } });
const namespace: AgentIdentity[] = [
  identity('alpha'),
  identity('beta', 'beta', { secretName: 'shared' }),
  identity('gamma', 'gamma', { secretName: 'gamma-new', statusSecretName: 'old-gamma' }),
  withSpec(identity('delta'), { proxy: { port: 8443, appPort: 8080 } }),
  withSpec(identity('epsilon'), { delivery: 'PodCertificate' }),
  withSpec(identity('zeta'), {}),
  ...Array.from({ length: 200 }, (_, i) => identity(`bystander-${i}`, `sa-${i % 7}`)),
];
namespace.find((i) => i.metadata.name === 'zeta')!.metadata.uid = 'uid-zeta-recreated';
const secrets: ObjectMeta[] = [
  ownedSecret({ name: 'alpha', uid: 'uid-alpha' }),
  { name: 'shared', namespace: 'agents' },
  { ...ownedSecret({ name: 'gamma', uid: 'uid-gamma' }), name: 'gamma-new' },
  ownedSecret({ name: 'delta', uid: 'uid-delta' }),
  ownedSecret({ name: 'orphan', uid: 'uid-orphan' }),
  ownedSecret({ name: 'zeta', uid: 'uid-zeta' }),
  { name: 'settings', namespace: 'agents', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: 'uid-web', controller: true }] },
  // An owner reference whoever wrote the Secret made up: no object has that name, so it is never read.
  { ...ownedSecret({ name: 'forged', uid: 'uid-forged' }), ownerReferences: [{ apiVersion: 'agentidentity.dev/v1alpha1', kind: 'AgentIdentity', name: 'alpha/status', uid: 'uid-forged', controller: true }] },
];
const secretNames = ['alpha-identity', 'shared', 'gamma-new', 'old-gamma', 'delta-identity', 'orphan-identity', 'zeta-identity', 'settings', 'beta-identity', 'never-made', 'forged-identity'];

function lookup(): Pick<IdentityLookup, 'get' | 'claimants'> & { reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    get: async (_ns, name) => { reads.push(`get ${name}`); return namespace.find((i) => i.metadata.name === name); },
    claimants: async (_ns, s) => { reads.push(`claimants ${s}`); return namespace.filter((i) => i.spec.secretName === s || i.status?.secretName === s); },
  };
}

function* pods(): Generator<Pod> {
  const labels = [undefined, 'alpha', 'delta', 'epsilon', 'ghost', 'beta'];
  const accounts = ['alpha', 'beta', 'gamma', 'delta', 'zeta', 'other'];
  const certAgents = [undefined, 'epsilon', 'delta', 'alpha'];
  for (const [n, secretName] of secretNames.entries()) {
    for (const label of labels) {
      for (const serviceAccountName of accounts) {
        const agent = certAgents[n % certAgents.length];
        const second = secretNames[(n + 3) % secretNames.length]!;
        yield pod({
          serviceAccountName, ...(label ? { labels: { 'agentidentity.dev/agent': label } } : {}),
          spec: {
            volumes: [
              { name: 'v', secret: { secretName } },
              ...(agent ? [{ name: 'pc', projected: { sources: [{ podCertificate: { signerName: SIGNER_NAME, keyType: 'ECDSAP256', credentialBundlePath: 'c.pem', userAnnotations: { [POD_CERTIFICATE_AGENT_ANNOTATION]: agent } } }] } }] : []),
            ],
            containers: [{ name: 'app', image: 'agent:1', envFrom: [{ secretRef: { name: second } }] }],
          },
        });
      }
    }
  }
}

test('every pod is judged over the identities it names exactly as over the whole namespace, reading a handful of them', async () => {
  const byName = new Map(secrets.map((m) => [m.name!, m]));
  const reasons = new Set<string>();
  let judged = 0;
  for (const p of pods()) {
    const { names } = secretsToRead(p) as { names: string[] };
    const present = new Map(names.filter((n) => byName.has(n)).map((n) => [n, byName.get(n)!]));
    const l = lookup();
    const related = await identitiesForPod(l, 'agents', p, names, present);
    const over = (identities: AgentIdentity[]) => validatePod({ pod: p, namespace: 'agents', identities, secrets: present });
    const full = over(namespace);
    assert.deepEqual(over(related), full, JSON.stringify(p.spec.volumes));
    assert.ok(related.length <= 6 && l.reads.length <= 10, `${related.length} identities, ${l.reads.length} reads`);
    assert.ok(!l.reads.includes('get alpha/status'));
    reasons.add(full.allowed ? 'allowed' : full.reason);
    judged++;
  }
  assert.equal(judged, 396);
  // Not a vacuous agreement: the pods meet most of the checks.
  assert.ok(reasons.size >= 5, [...reasons].join(', '));
});

test('claimantsOf: spec.secretName, status.secretName and the default name, each once', async () => {
  const l = lookup();
  assert.deepEqual((await claimantsOf(l, 'agents', 'shared')).map((i) => i.metadata.name), ['beta']);
  assert.deepEqual((await claimantsOf(l, 'agents', 'old-gamma')).map((i) => i.metadata.name), ['gamma']);
  assert.deepEqual((await claimantsOf(l, 'agents', 'alpha-identity')).map((i) => i.metadata.name), ['alpha']);
  assert.deepEqual((await claimantsOf(l, 'agents', 'settings')).map((i) => i.metadata.name), []);
  assert.deepEqual(l.reads, ['claimants shared', 'claimants old-gamma', 'claimants alpha-identity', 'get alpha', 'claimants settings']);
});

test('a Secret whose owner reference names one identity and carries another\'s UID (only a forged one can) is refused even to that UID\'s ServiceAccount', async () => {
  const forged = { ...ownedSecret({ name: 'alpha', uid: 'uid-alpha' }), name: 'mixed', ownerReferences: [{ apiVersion: 'agentidentity.dev/v1alpha1', kind: 'AgentIdentity', name: 'beta', uid: 'uid-alpha', controller: true }] };
  const p = pod({ serviceAccountName: 'alpha', spec: { volumes: [{ name: 'v', secret: { secretName: 'mixed' } }] } });
  const related = await identitiesForPod(lookup(), 'agents', p, ['mixed'], new Map([['mixed', forged]]));
  const verdict = validatePod({ pod: p, namespace: 'agents', identities: related, secrets: new Map([['mixed', forged]]) });
  assert.equal(verdict.allowed ? 'allowed' : verdict.reason, 'IdentitySecretReserved');
});
