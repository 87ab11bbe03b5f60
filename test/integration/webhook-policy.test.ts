// Issue 9, hole 3 (the mount half), through a real API server that calls the
// webhook: a namespace tenant who may create ConfigMaps pre-creates
// gamma-identity-policy with their own policy.json. Only pod-certificate
// delivery mounts that ConfigMap (Secret delivery projects policy.json from
// the identity Secret, whose owner the Secret checks decide). The operator refuses to
// adopt it (PolicyConfigMapConflict on the identity); the pod webhook must
// also refuse gamma's pods, which would mount it, until the tenant deletes it
// and the operator writes its own. The webhook runs with the RBAC of
// config/webhook/rbac.yaml.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setUp, tearDown, type Suite } from '../support/suite.ts';
import { eventually } from '../support/operator.ts';
import { api } from '../support/objects.ts';
import { makeTenant, type Tenant } from '../support/tenant.ts';
import { createPod, podManifest, startShippedWebhook, type ShippedWebhook, untilWebhookAnswers } from '../support/webhook.ts';
import type { ReviewRecord } from '../../src/webhook/server.ts';

let s: Suite;
let webhook: ShippedWebhook;
let ns: string;
let tenant: Tenant;
const reviews: ReviewRecord[] = [];

before(async () => {
  s = await setUp();
  ns = await s.env.namespace('squat');
  tenant = await makeTenant(s.env.kc, ns);
  webhook = await startShippedWebhook(s.env, { onReview: (r) => reviews.push(r) });
  await untilWebhookAnswers(s.env.kc, ns);
});

after(async () => {
  await webhook?.stop();
  await tearDown(s ?? {});
});

const conditionReason = async (name: string) => (await s.a.getIdentity(ns, name)).status?.conditions?.find((c) => c.type === 'Ready')?.reason;

test('a squatted policy ConfigMap refuses gamma\'s pods (PolicyConfigMapConflict); once the tenant deletes it and the operator writes its own, the same pod is admitted', async () => {
  const attacker = api(tenant.kc);
  await attacker.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'gamma-identity-policy' }, data: { 'policy.json': '{"allow":"everyone"}' } } });
  await attacker.createIdentity(ns, 'gamma', { delivery: 'PodCertificate' });
  await eventually(async () => (await conditionReason('gamma')) === 'PolicyConfigMapConflict', { what: 'the operator reports the squatter on gamma' });

  const gammaPod = () => podManifest('gamma-0', { agent: 'gamma', serviceAccountName: 'gamma' });
  const refused = await createPod(tenant.kc, ns, gammaPod());
  assert.equal(refused.admitted, false, 'the pod that would mount the tenant\'s policy.json is refused');
  if (refused.admitted) throw new Error('unreachable');
  assert.equal(refused.code, 403);
  assert.equal(refused.message, `admission webhook "bind.agentidentity.dev" denied the request: ConfigMap ${ns}/gamma-identity-policy is not the operator's policy for AgentIdentity gamma (it is not controlled by it); delete it — the operator will write the real one`);
  assert.equal(reviews.findLast((r) => r.webhook === 'validate' && r.namespace === ns)?.reason, 'PolicyConfigMapConflict');

  await attacker.core.deleteNamespacedConfigMap({ namespace: ns, name: 'gamma-identity-policy' });
  const { metadata: { uid } } = await s.a.getIdentity(ns, 'gamma');
  await eventually(async () => {
    const cm = await s.a.core.readNamespacedConfigMap({ namespace: ns, name: 'gamma-identity-policy' }).catch(() => undefined);
    return cm?.metadata?.ownerReferences?.some((o) => o.controller && o.uid === uid);
  }, { timeoutMs: 45_000, what: 'the operator writes gamma\'s own policy ConfigMap' });

  const admitted = await createPod(tenant.kc, ns, gammaPod());
  assert.ok(admitted.admitted, `the same pod is admitted: ${admitted.admitted ? '' : admitted.message}`);
  const policy = admitted.pod.spec.volumes?.find((v) => v.name === 'agent-identity')?.projected?.sources?.find((src) => src.configMap?.items?.some((i) => i.key === 'policy.json'))?.configMap;
  assert.equal(policy?.name, 'gamma-identity-policy', 'it mounts the operator\'s ConfigMap');
});

test('Secret delivery: a squatted ConfigMap of the policy\'s name refuses nothing, and the pod mounts policy.json from the identity Secret', async () => {
  const attacker = api(tenant.kc);
  await attacker.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'theta-identity-policy' }, data: { 'policy.json': '{"allow":"everyone"}' } } });
  await attacker.createIdentity(ns, 'theta');
  await eventually(async () => (await conditionReason('theta')) === 'Issued', { what: 'theta Ready' });
  const admitted = await createPod(tenant.kc, ns, podManifest('theta-0', { agent: 'theta', serviceAccountName: 'theta' }));
  assert.ok(admitted.admitted, admitted.admitted ? '' : admitted.message);
  const sources = admitted.pod.spec.volumes?.find((v) => v.name === 'agent-identity')?.projected?.sources ?? [];
  // The identity Secret, and the optional partners' Roots (federation) from the trust bundle: never the squatted name.
  assert.deepEqual(sources.map((src) => src.configMap?.name ?? src.secret?.name), ['theta-identity', 'trust-bundle-default'], 'no policy ConfigMap is mounted');
  assert.equal(sources[1]!.configMap!.optional, true);
  assert.ok(sources[0]!.secret!.items!.some((i) => i.key === 'policy.json' && i.path === 'policy.json'));
});
