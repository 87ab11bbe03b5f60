// Issue 9, items 2 and 7, through a real API server that calls the webhook:
// which pods may use an identity Secret is decided by the Secret's controller
// owner reference (the AgentIdentity that holds the key), and before a Secret
// exists by every claim on its name, including the name pattern
// <name>-identity; a claim in a spec never grants a Secret. The attacker is a
// namespace tenant (a Role for identities and pods, none for Secrets). The
// operator issues the identities; the webhook runs with the RBAC of
// config/webhook/rbac.yaml.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { AdmissionregistrationV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { GROUP, VERSION } from '../../src/api/group.ts';
import { setUp, tearDown, type Suite } from '../support/suite.ts';
import { eventually } from '../support/operator.ts';
import { api } from '../support/objects.ts';
import { makeTenant, type Tenant } from '../support/tenant.ts';
import { createPod, createServiceAccounts, podManifest, startShippedWebhook, webhookConfigurationsFor, type ShippedWebhook, untilWebhookAnswers } from '../support/webhook.ts';
import type { Pod } from '../../src/webhook/pod.ts';

let s: Suite;
let webhook: ShippedWebhook;
let ns: string;
let tenant: Tenant;

/**
 * The shipped pod webhooks only. Whatever refuses a second claim on a Secret
 * when an AgentIdentity is created is a separate line of defence; this file
 * tests what the pod webhook decides when such an identity exists anyway
 * (created while that webhook was down, or before it was installed).
 */
async function installPodWebhooks(kc: KubeConfig, port: number): Promise<void> {
  const admission = kc.makeApiClient(AdmissionregistrationV1Api);
  for (const doc of webhookConfigurationsFor(port)) {
    const rulesOf = (w: unknown) => (w as { rules?: { resources: string[] }[] }).rules ?? [];
    doc.webhooks = doc.webhooks.filter((w) => rulesOf(w).some((r) => r.resources.some((res) => res === 'pods' || res.startsWith('pods/'))));
    if (doc.kind === 'MutatingWebhookConfiguration') await admission.createMutatingWebhookConfiguration({ body: doc as never });
    else await admission.createValidatingWebhookConfiguration({ body: doc as never });
  }
}

/** Waits until the operator has issued the identity's Secret, with the identity as its controller. */
async function issued(name: string): Promise<void> {
  const { metadata: { uid } } = await s.a.getIdentity(ns, name);
  await eventually(async () => {
    const secret = await s.a.getSecret(ns, `${name}-identity`).catch(() => undefined);
    return secret?.metadata.ownerReferences?.some((o) => o.controller && o.uid === uid);
  }, { what: `Secret ${name}-identity issued to AgentIdentity ${name}` });
}

const mounting = (name: string, serviceAccountName: string, secretName: string): Pod =>
  podManifest(name, { serviceAccountName, spec: { volumes: [{ name: 'loot', secret: { secretName } }] } });

const viaEnv = (name: string, serviceAccountName: string, secretName: string): Pod => podManifest(name, {
  serviceAccountName,
  spec: { containers: [{ name: 'app', image: 'registry.invalid/agent:1', env: [{ name: 'KEY', valueFrom: { secretKeyRef: { name: secretName, key: 'tls.key' } } }] }] },
});

function refused(r: Awaited<ReturnType<typeof createPod>>): string {
  assert.equal(r.admitted, false, 'the API server refused the pod');
  if (r.admitted) throw new Error('unreachable');
  assert.equal(r.code, 403);
  return r.message;
}

before(async () => {
  s = await setUp();
  ns = await s.env.namespace('agents');
  await createServiceAccounts(s.env.kc, ns, ['alpha', 'beta', 'other']);
  tenant = await makeTenant(s.env.kc, ns);
  webhook = await startShippedWebhook(s.env, { install: installPodWebhooks });

  await s.a.createIdentity(ns, 'alpha', { serviceAccountName: 'alpha' });
  await issued('alpha');
  await untilWebhookAnswers(s.env.kc, ns, async () => (await createPod(s.env.kc, ns, mounting(`warmup-${Date.now()}`, 'alpha', 'alpha-identity'))).admitted);
});

after(async () => {
  await webhook?.stop();
  await tearDown(s ?? {});
});

test('a shadow claim on alpha\'s Secret does not let a pod running as "other" mount it, nor keep it from alpha\'s own pods', async () => {
  const attacker = api(tenant.kc);
  await attacker.createIdentity(ns, 'zzz-shadow', { serviceAccountName: 'other', secretName: 'alpha-identity' });
  const before = webhook.server.reviews().validate;

  const message = refused(await createPod(tenant.kc, ns, mounting('shadow-thief', 'other', 'alpha-identity')));
  assert.equal(message, 'admission webhook "bind.agentidentity.dev" denied the request: pod "shadow-thief" runs as ServiceAccount "other" but uses Secret "alpha-identity" (volume "loot"); that Secret holds the private key of AgentIdentity "alpha", which only pods running as ServiceAccount "alpha" may use');

  const rightful = await createPod(s.env.kc, ns, mounting('alpha-0', 'alpha', 'alpha-identity'));
  assert.ok(rightful.admitted, 'the Secret\'s owner decides: alpha\'s pod is admitted despite the later claim');
  assert.equal(webhook.server.reviews().validate, before + 2, 'both answers came from the webhook');

  const secret = await s.a.getSecret(ns, 'alpha-identity');
  const { metadata: { uid } } = await s.a.getIdentity(ns, 'alpha');
  assert.equal(secret.metadata.ownerReferences?.find((o) => o.controller)?.uid, uid, 'the shadow claim did not take the Secret over');
});

test('a pod naming beta\'s Secret before AgentIdentity beta exists is refused, and still refused once beta is issued; beta\'s own pod is admitted', async () => {
  const early = refused(await createPod(tenant.kc, ns, viaEnv('early-thief', 'other', 'beta-identity')));
  assert.equal(early, `admission webhook "bind.agentidentity.dev" denied the request: pod "early-thief" runs as ServiceAccount "other" but uses Secret "beta-identity" (env KEY of container "app"); that name is reserved for the identity Secret of AgentIdentity "beta" (the default spec.secretName), which no AgentIdentity in namespace "${ns}" holds yet, and only pods running as the ServiceAccount of the identity that gets it may use it; create AgentIdentity "beta" first, or give the Secret another name`);

  await api(tenant.kc).createIdentity(ns, 'beta', { serviceAccountName: 'beta' });
  await issued('beta');
  const late = refused(await createPod(tenant.kc, ns, viaEnv('late-thief', 'other', 'beta-identity')));
  assert.match(late, /pod "late-thief" runs as ServiceAccount "other" but uses Secret "beta-identity" \(env KEY of container "app"\); that Secret holds the private key of AgentIdentity "beta", which only pods running as ServiceAccount "beta" may use$/);

  const own = await createPod(tenant.kc, ns, viaEnv('beta-0', 'beta', 'beta-identity'));
  assert.ok(own.admitted, 'the identity\'s own ServiceAccount may');
});

test('a Secret claimed only by another identity\'s spec.secretName is refused to other ServiceAccounts: found by field selector, and with a CRD from before that field was selectable, by listing the namespace', async () => {
  // Suspended: the operator writes no Secret, so the claim in the spec is all there is.
  await api(tenant.kc).createIdentity(ns, 'claimer', { serviceAccountName: 'beta', secretName: 'claimed-secret', suspended: true });
  assert.equal(await s.a.getSecret(ns, 'claimed-secret').then(() => 'exists', () => 'absent'), 'absent');
  const expected = /pod "(selector|listed)-thief" runs as ServiceAccount "other" but uses Secret "claimed-secret" \(volume "loot"\); .*AgentIdentity "claimer"/;
  assert.match(refused(await createPod(tenant.kc, ns, mounting('selector-thief', 'other', 'claimed-secret'))), expected);

  const crd = 'agentidentities.agentidentity.dev';
  const selectable = (fields: string[]) => JSON.stringify([{ op: 'replace', path: '/spec/versions/0/selectableFields', value: fields.map((jsonPath) => ({ jsonPath })) }]);
  const patched = await s.env.kubectl(['patch', 'crd', crd, '--type=json', '-p', selectable(['.spec.trustDomain', '.spec.serviceAccountName'])]);
  assert.equal(patched.code, 0, patched.stderr);
  try {
    const custom = s.env.kc.makeApiClient(CustomObjectsApi);
    const bySecretName = () => custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: 'agentidentities', namespace: ns, fieldSelector: 'spec.secretName=claimed-secret' });
    // The API server swaps its handler for the CRD a little after the first request sees the change: wait for a settled answer.
    let refusedInARow = 0;
    await eventually(async () => {
      refusedInARow = (await bySecretName().then(() => 0, (e: { code?: number }) => e.code)) === 400 ? refusedInARow + 1 : 0;
      return refusedInARow >= 10;
    }, { what: 'the API server to refuse the spec.secretName field selector 10 times in a row' });
    assert.match(refused(await createPod(tenant.kc, ns, mounting('listed-thief', 'other', 'claimed-secret'))), expected);
  } finally {
    const restored = await s.env.kubectl(['patch', 'crd', crd, '--type=json', '-p', selectable(['.spec.trustDomain', '.spec.serviceAccountName', '.spec.secretName', '.status.secretName'])]);
    assert.equal(restored.code, 0, restored.stderr);
  }
});
