// Issue 9, hole 4 (no tenancy) and the admission half of hole 2: a namespace
// tenant (a ServiceAccount with a namespaced Role, reached by impersonation)
// must not get a certificate from a TrustDomain that does not admit its
// namespace, for DNS names outside its namespace, for a ServiceAccount that
// does not exist, or into another identity's Secret. Refused at admission by
// the AgentIdentity webhook; where no webhook runs, never issued by the
// operator.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiException, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { TestEnv } from '../support/env.ts';
import { setUp, tearDown } from '../support/suite.ts';
import { eventually } from '../support/operator.ts';
import { api, isReady } from '../support/objects.ts';
import { makeTenant, type Tenant } from '../support/tenant.ts';
import { startShippedWebhook, type ShippedWebhook } from '../support/webhook.ts';
import { AGENT_IDENTITY, GROUP, VERSION } from '../../src/api/group.ts';
import type { AgentIdentity, AgentIdentitySpec } from '../../src/api/types.ts';
import type { Operator } from '../../src/operator.ts';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

let env: TestEnv;
let op: Operator;
let a: ReturnType<typeof api>;

before(async () => {
  ({ env, op, a } = await setUp());
  // Team A's own trust domain: only namespaces labelled team=a may have its identities.
  await a.createTrustDomain('team-a', { trustDomain: 'team-a.example', ca: { selfSigned: {} }, namespaceSelector: { matchLabels: { team: 'a' } } });
  await eventually(async () => isReady(await a.getTrustDomain('team-a')), { what: 'TrustDomain team-a Ready' });
});
after(() => tearDown({ env, op }));

const reasonOf = (i: AgentIdentity) => i.status?.conditions?.find((c) => c.type === 'Ready');
const waitReason = (ns: string, name: string, reason: string) =>
  eventually(async () => { const i = await a.getIdentity(ns, name); return reasonOf(i)?.status === 'False' && reasonOf(i)?.reason === reason && i; }, { what: `${ns}/${name} ${reason}` });
const waitReady = (ns: string, name: string) =>
  eventually(async () => { const i = await a.getIdentity(ns, name); return isReady(i) && i; }, { what: `${ns}/${name} Ready` });
const secretExists = (ns: string, name: string) => a.getSecret(ns, name).then(() => true, (e: { code?: number }) => { if (e.code === 404) return false; throw e; });
const labelNamespace = (ns: string, labels: Record<string, string | null>) => a.core.patchNamespace({ name: ns, body: { metadata: { labels } } }, mergePatch);

/** Creates an AgentIdentity as `kc` without creating its ServiceAccount; the API server's refusal, or undefined. */
async function create(kc: Tenant['kc'], ns: string, name: string, spec: Partial<AgentIdentitySpec>): Promise<{ code: number; message: string } | undefined> {
  try {
    await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group: GROUP, version: VERSION, plural: AGENT_IDENTITY.plural, namespace: ns,
      body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'AgentIdentity', metadata: { name }, spec: { serviceAccountName: name, ...spec } },
    });
    return undefined;
  } catch (err) {
    return refusal(err);
  }
}

/** What the API server answered, from client-node's ApiException. */
function refusal(err: unknown): { code: number; message: string } {
  if (!(err instanceof ApiException)) throw err;
  const body = (typeof err.body === 'string' ? JSON.parse(err.body) : err.body) as { message?: string };
  return { code: err.code, message: body?.message ?? '' };
}

describe('with no webhook running, the operator refuses to issue', () => {
  let tenant: Tenant;
  let ns: string;
  before(async () => {
    ns = await env.namespace('intruder');
    tenant = await makeTenant(env.kc, ns);
  });

  test('an identity of a TrustDomain whose namespaceSelector does not pick the namespace: NamespaceNotAllowed, no Secret; labelling the namespace issues it', async () => {
    await api(tenant.kc).createIdentity(ns, 'borrower', { trustDomain: 'team-a' });
    const refused = await waitReason(ns, 'borrower', 'NamespaceNotAllowed');
    assert.match(reasonOf(refused)!.message, new RegExp(`TrustDomain "team-a" issues identities only in namespaces matching "team=a" .*namespace "${ns}" does not match`));
    assert.equal(await secretExists(ns, 'borrower-identity'), false, 'no Secret was issued');
    assert.equal(refused.status?.serialNumber, undefined);

    // The admin admits the namespace: the namespace's change alone brings the identity to Ready, from team A's CA.
    await labelNamespace(ns, { team: 'a' });
    const issued = await waitReady(ns, 'borrower');
    assert.equal(issued.status!.spiffeID, `spiffe://team-a.example/ns/${ns}/agent/borrower`);
    await labelNamespace(ns, { team: null });
  });

  test('dnsNames outside the namespace: kubernetes.default.svc and *.svc.cluster.local get DNSNameNotAllowed and no Secret; <x>.<ns>.svc is issued', async () => {
    const t = api(tenant.kc);
    await t.createIdentity(ns, 'apiserver', { dnsNames: ['kubernetes.default.svc'] });
    await t.createIdentity(ns, 'everything', { dnsNames: ['*.svc.cluster.local'] });
    await t.createIdentity(ns, 'own', { dnsNames: [`own.${ns}.svc`, `own.${ns}.svc.cluster.local`] });
    const apiserver = await waitReason(ns, 'apiserver', 'DNSNameNotAllowed');
    assert.match(reasonOf(apiserver)!.message, new RegExp(`dnsNames entry "kubernetes.default.svc" is not allowed: in namespace "${ns}", TrustDomain "default" allows only names matching "\\*\\.${ns}\\.svc", "\\*\\.${ns}\\.svc\\.cluster\\.local"`));
    const everything = await waitReason(ns, 'everything', 'DNSNameNotAllowed');
    assert.match(reasonOf(everything)!.message, /"\*\.svc\.cluster\.local" is a wildcard/);
    await waitReady(ns, 'own');
    assert.equal(await secretExists(ns, 'apiserver-identity'), false);
    assert.equal(await secretExists(ns, 'everything-identity'), false);
    assert.equal(await secretExists(ns, 'own-identity'), true);
  });

  test('an identity for a ServiceAccount that does not exist: ServiceAccountNotFound and no Secret; creating the ServiceAccount issues it', async () => {
    assert.equal(await create(tenant.kc, ns, 'ghost', { serviceAccountName: 'ghost' }), undefined);
    const refused = await waitReason(ns, 'ghost', 'ServiceAccountNotFound');
    assert.match(reasonOf(refused)!.message, new RegExp(`ServiceAccount "ghost" does not exist in namespace "${ns}"`));
    assert.equal(await secretExists(ns, 'ghost-identity'), false);

    await a.core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'ghost' } } });
    await waitReady(ns, 'ghost');
  });
});

describe('at admission, the AgentIdentity webhook refuses', () => {
  let webhook: ShippedWebhook;
  let tenant: Tenant;
  let ns: string;
  let teamA: string;

  before(async () => {
    webhook = await startShippedWebhook(env);

    ns = await env.namespace('tenant');
    tenant = await makeTenant(env.kc, ns);
    teamA = await env.namespace('team-a');
    await labelNamespace(teamA, { team: 'a' });
    // The API server picks up the configuration and its caBundle from its own watch: wait until it calls us.
    await eventually(async () => (await create(tenant.kc, ns, `probe-${Date.now()}`, { trustDomain: 'team-a' }))?.code === 403,
      { what: 'the API server calls the AgentIdentity webhook', timeoutMs: 30_000, intervalMs: 250 });
  });
  after(async () => {
    await webhook?.stop();
  });

  test('an identity of a TrustDomain whose namespaceSelector does not pick the namespace, with a message that says why', async () => {
    const r = await create(tenant.kc, ns, 'borrower', { trustDomain: 'team-a' });
    assert.equal(r?.code, 403);
    assert.match(r!.message, new RegExp(`^admission webhook "identity.agentidentity.dev" denied the request: TrustDomain "team-a" issues identities only in namespaces matching "team=a" \\(its spec.namespaceSelector\\), and namespace "${ns}" does not match; use another trust domain in spec.trustDomain, or ask a cluster admin to admit this namespace$`));
    await assert.rejects(a.getIdentity(ns, 'borrower'), (e: { code?: number }) => e.code === 404, 'nothing was stored');
  });

  test('dnsNames kubernetes.default.svc and *.svc.cluster.local; <x>.<ns>.svc is admitted and issued', async () => {
    const apiserver = await create(tenant.kc, ns, 'apiserver', { dnsNames: ['kubernetes.default.svc'] });
    assert.equal(apiserver?.code, 403);
    assert.match(apiserver!.message, new RegExp(`dnsNames entry "kubernetes.default.svc" is not allowed: in namespace "${ns}", TrustDomain "default" allows only names matching`));
    const everything = await create(tenant.kc, ns, 'everything', { dnsNames: ['*.svc.cluster.local'] });
    assert.equal(everything?.code, 403);
    assert.match(everything!.message, /dnsNames entry "\*\.svc\.cluster\.local" is a wildcard, and TrustDomain "default" does not allow wildcard DNS names/);

    await api(tenant.kc).createIdentity(ns, 'own', { dnsNames: [`own.${ns}.svc`] });
    await waitReady(ns, 'own');
    // Changing the spec is judged too: an UPDATE to another namespace's name is refused.
    const update = await api(tenant.kc).patchIdentity(ns, 'own', { spec: { dnsNames: ['kubernetes.default.svc'] } }).then(() => undefined, refusal);
    assert.equal(update?.code, 403);
    assert.match(update!.message, /dnsNames entry "kubernetes.default.svc" is not allowed/);
  });

  test("a second identity naming another identity's Secret, or a Secret something else owns", async () => {
    const t = api(tenant.kc);
    await t.createIdentity(ns, 'alpha');
    const r = await create(tenant.kc, ns, 'copycat', { secretName: 'alpha-identity' });
    assert.equal(r?.code, 403);
    assert.match(r!.message, new RegExp(`Secret "alpha-identity" is the Secret of AgentIdentity "alpha" in namespace "${ns}"; two identities cannot share a Secret, so set spec.secretName to another name$`));
    // The other way round: an identity whose default Secret name another already claims.
    await t.createIdentity(ns, 'beta', { secretName: 'gamma-identity' });
    const gamma = await create(tenant.kc, ns, 'gamma', {});
    assert.equal(gamma?.code, 403);
    assert.match(gamma!.message, /Secret "gamma-identity" is the Secret of AgentIdentity "beta"/);

    // A Secret the admin's tooling owns (here: a ConfigMap's), which no AgentIdentity names.
    const owner = await a.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'db' } } });
    await a.core.createNamespacedSecret({ namespace: ns, body: {
      metadata: { name: 'db-credentials', ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'db', uid: owner.metadata!.uid!, controller: true }] },
      stringData: { password: 'not-for-tenants' },
    } });
    const taken = await create(tenant.kc, ns, 'db', { secretName: 'db-credentials' });
    assert.equal(taken?.code, 403);
    assert.match(taken!.message, new RegExp(`Secret "db-credentials" in namespace "${ns}" belongs to ConfigMap "db"; set spec.secretName to another name$`));
  });

  test('an identity in a namespace its TrustDomain admits is admitted; once the namespace is no longer admitted its deletion still completes', async () => {
    await api(env.kc).createIdentity(teamA, 'planner', { trustDomain: 'team-a' });
    const ready = await waitReady(teamA, 'planner');
    assert.ok(ready.metadata.finalizers?.includes('agentidentity.dev/revoke'), 'the operator added its finalizer');
    await labelNamespace(teamA, { team: null });
    await a.deleteIdentity(teamA, 'planner');
    // Removing the finalizer is a metadata-only update: the webhook never sees it.
    await eventually(async () => a.getIdentity(teamA, 'planner').then(() => false, (e: { code?: number }) => e.code === 404), { what: 'planner deleted' });
  });
});
