// The pod-certificate signer against the real API server: PodCertificateRequests
// created as cluster-admin (this control plane runs without the Node
// authorizer; the NodeRestriction path is tested with the test kubelet), each
// answered once, Issued with a go-spiffe-shaped SVID for the CSR's key, or
// Denied with its reason; a restarted operator writes nothing to them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { KeyObject, type webcrypto } from 'node:crypto';
import type { TestEnv } from '../support/env.ts';
import { setUp, tearDown } from '../support/suite.ts';
import { eventually, runOperator } from '../support/operator.ts';
import { api } from '../support/objects.ts';
import { stubRequest } from '../unit/pki/fixtures.ts';
import type { Operator } from '../../src/operator.ts';
import type { AgentIdentitySpec, PodCertificateRequest } from '../../src/api/types.ts';
import { ANNOTATION_ROOT_FINGERPRINT, FINALIZER_POD_CERTIFICATE, LABEL_IDENTITY, LABEL_TRUST_DOMAIN, SIGNER_NAME } from '../../src/api/group.ts';
import { x509 } from '../../src/pki/crypto.ts';
import { parseCertificates, sanValues } from '../../src/pki/parse.ts';
import { verifyChain } from '../../src/pki/verify.ts';

let env: TestEnv;
let op: Operator;
let a: ReturnType<typeof api>;
let ns: string;
let node: { name: string; uid: string };
const PCR = { group: 'certificates.k8s.io', version: 'v1', plural: 'podcertificaterequests' };
const P256 = { name: 'ECDSA', namedCurve: 'P-256' } as webcrypto.EcKeyGenParams;
const P521 = { name: 'ECDSA', namedCurve: 'P-521' } as webcrypto.EcKeyGenParams;

before(async () => {
  ({ env, op, a } = await setUp());
  ns = await env.namespace('signer');
  const n = await a.core.createNode({ body: { metadata: { name: 'n1' } } });
  node = { name: 'n1', uid: n.metadata!.uid! };
});
after(() => tearDown({ env, op }));

async function identity(name: string, spec: Partial<AgentIdentitySpec> = {}): Promise<void> {
  await a.createIdentity(ns, name, { delivery: 'PodCertificate', duration: '24h', dnsNames: [`${name}.${ns}.svc`], ...spec });
}

/** A pod bound to n1 with a podCertificate volume naming the signer, running as `serviceAccount`. */
async function pod(name: string, serviceAccount: string): Promise<{ uid: string; saUID: string }> {
  await a.core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: serviceAccount } } }).catch((e: { code?: number }) => { if (e.code !== 409) throw e; });
  const sa = await a.core.readNamespacedServiceAccount({ namespace: ns, name: serviceAccount });
  const p = await a.core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: { name },
      spec: {
        nodeName: node.name, serviceAccountName: serviceAccount,
        containers: [{ name: 'agent', image: 'registry.invalid/agent', volumeMounts: [{ name: 'identity', mountPath: '/var/run/agent-identity' }] }],
        volumes: [{ name: 'identity', projected: { sources: [{ podCertificate: { signerName: SIGNER_NAME, keyType: 'ECDSAP256', credentialBundlePath: 'credential-bundle.pem' } } as never] } }],
      },
    },
  });
  return { uid: p.metadata!.uid!, saUID: sa.metadata!.uid! };
}

/** What the kubelet sends: a fresh key's stub CSR, naming the identity in userAnnotations. */
async function request(name: string, o: { pod: string; serviceAccount: string; annotations?: Record<string, string>; key?: webcrypto.EcKeyGenParams; hash?: string }) {
  const p = await pod(o.pod, o.serviceAccount);
  const csr = await stubRequest(o.key ?? P256, o.hash ?? 'SHA-256');
  const body: PodCertificateRequest = {
    apiVersion: 'certificates.k8s.io/v1', kind: 'PodCertificateRequest', metadata: { name, namespace: ns },
    spec: {
      signerName: SIGNER_NAME, podName: o.pod, podUID: p.uid, serviceAccountName: o.serviceAccount, serviceAccountUID: p.saUID,
      nodeName: node.name, nodeUID: node.uid, maxExpirationSeconds: 86_400, stubPKCS10Request: csr.der,
      unverifiedUserAnnotations: o.annotations ?? { 'agentidentity.dev/agent': o.serviceAccount },
    },
  };
  const created = Date.now();
  await a.custom.createNamespacedCustomObject({ ...PCR, namespace: ns, body });
  return { csr, created };
}

const getPCR = (name: string) => a.custom.getNamespacedCustomObject({ ...PCR, namespace: ns, name }) as Promise<PodCertificateRequest>;
const answerOf = (p: PodCertificateRequest) => p.status?.conditions?.find((c) => c.status === 'True');
const answered = (name: string) => eventually(async () => { const p = await getPCR(name); return answerOf(p) && p; }, { what: `${name} answered` });

test('a pod running as the identity\'s ServiceAccount gets an X.509-SVID for its own key, chaining to the published bundle', async (t) => {
  await identity('planner');
  const { csr, created } = await request('planner-1', { pod: 'planner-0', serviceAccount: 'planner' });
  const pcr = await answered('planner-1');
  t.diagnostic(`create → Issued: ${Date.now() - created} ms (upper bound, polled every 100 ms)`);
  assert.equal(answerOf(pcr)!.type, 'Issued', answerOf(pcr)!.message);

  const chain = parseCertificates(pcr.status!.certificateChain!);
  const leaf = chain[0]!;
  assert.deepEqual(sanValues(leaf, 'url'), [`spiffe://cluster.local/ns/${ns}/agent/planner`], 'exactly one URI SAN: the SPIFFE ID');
  assert.deepEqual(sanValues(leaf, 'dns'), [`planner.${ns}.svc`]);
  assert.equal(leaf.getExtension(x509.BasicConstraintsExtension)?.ca, false);
  const ku = leaf.getExtension(x509.KeyUsagesExtension)!;
  assert.ok(ku.critical && (ku.usages & x509.KeyUsageFlags.digitalSignature) !== 0, 'KU digitalSignature, critical');
  assert.deepEqual([...leaf.getExtension(x509.ExtendedKeyUsageExtension)!.usages].sort(), [x509.ExtendedKeyUsage.clientAuth, x509.ExtendedKeyUsage.serverAuth].sort());
  const leafKey = KeyObject.from(await leaf.publicKey.export());
  assert.ok(leafKey.equals(KeyObject.from(csr.keys.publicKey)), 'the CSR\'s public key');
  assert.equal(Date.parse(pcr.status!.notAfter!) - Date.parse(pcr.status!.notBefore!), 86_400_000);

  // The bundle copy follows the identity (the trust reconciler's coalesced pass), not the answer: wait for it.
  const bundleCM = await eventually(() => a.core.readNamespacedConfigMap({ namespace: ns, name: 'trust-bundle-default' }), { what: `the bundle copy in ${ns}` });
  const result = await verifyChain(chain, parseCertificates(bundleCM.data!['ca.crt']!), new Date());
  assert.equal(result.ok, true, JSON.stringify(result));

  // The ledger: finalizer, labels, the root it chains to.
  assert.ok(pcr.metadata.finalizers?.includes(FINALIZER_POD_CERTIFICATE));
  assert.equal(pcr.metadata.labels?.[LABEL_IDENTITY], 'planner');
  assert.equal(pcr.metadata.labels?.[LABEL_TRUST_DOMAIN], 'default');
  assert.match(pcr.metadata.annotations?.[ANNOTATION_ROOT_FINGERPRINT] ?? '', /^sha256:[0-9a-f]{64}$/);

  // No private key in the API for this identity.
  const secrets = (await a.core.listNamespacedSecret({ namespace: ns })).items;
  assert.deepEqual(secrets.filter((s) => s.data?.['tls.key'] || s.metadata?.labels?.[LABEL_IDENTITY] === 'planner').map((s) => s.metadata?.name), []);
  const ai = await a.getIdentity(ns, 'planner');
  assert.equal(ai.status?.conditions?.find((c) => c.type === 'Ready')?.reason, 'PodCertificates');
});

test('requests that must be refused are Denied, each with its reason', async () => {
  await identity('coder');
  await identity('sleeper', { suspended: true });
  await a.createIdentity(ns, 'secreted', {});
  const cases: Array<[string, Parameters<typeof request>[1], string]> = [
    ['wrong-sa', { pod: 'wrong-sa-0', serviceAccount: 'intruder', annotations: { 'agentidentity.dev/agent': 'coder' } }, 'ServiceAccountMismatch'],
    ['no-identity', { pod: 'no-identity-0', serviceAccount: 'ghost' }, 'IdentityNotFound'],
    ['suspended', { pod: 'suspended-0', serviceAccount: 'sleeper' }, 'IdentitySuspended'],
    ['not-opted-in', { pod: 'not-opted-in-0', serviceAccount: 'secreted' }, 'PodCertificateNotEnabled'],
    ['p521', { pod: 'p521-0', serviceAccount: 'coder', key: P521, hash: 'SHA-512' }, 'UnsupportedKeyType'],
    ['unknown-annotation', { pod: 'unknown-annotation-0', serviceAccount: 'coder', annotations: { 'agentidentity.dev/agent': 'coder', 'example.com/team': 'x' } }, 'InvalidUnverifiedUserAnnotations'],
  ];
  for (const [name, o] of cases) await request(name, o);
  for (const [name, , reason] of cases) {
    const answer = answerOf(await answered(name))!;
    assert.equal(answer.type, 'Denied', `${name}: ${answer.message}`);
    assert.equal(answer.reason, reason, name);
    assert.ok(answer.message.length > 20, 'a message a person can act on');
  }
  assert.match(answerOf(await answered('p521'))!.message, /ECDSAP256/, 'UnsupportedKeyType names a key type the signer supports');
  const metrics = await op.metrics.text();
  assert.match(metrics, /agentidentity_pod_certificates_total\{trust_domain="default",result="denied",reason="UnsupportedKeyType"\} 1/);
  // Each refusal of an existing identity's request is a Warning event on that AgentIdentity too (written in the background).
  const expected = [['coder', 'ServiceAccountMismatch'], ['sleeper', 'IdentitySuspended'], ['secreted', 'PodCertificateNotEnabled'], ['coder', 'UnsupportedKeyType']];
  const missing = async () => {
    const events = (await a.core.listNamespacedEvent({ namespace: ns })).items;
    return expected.filter(([identityName, reason]) => !events.some((e) => e.type === 'Warning' && e.reason === reason && e.involvedObject.kind === 'AgentIdentity' && e.involvedObject.name === identityName));
  };
  await eventually(async () => (await missing()).length === 0, { what: 'a Warning event on each refused identity' }).catch(async () => assert.deepEqual(await missing(), [], 'Warning events missing'));
});

test('a restarted operator writes nothing to requests it already answered', async () => {
  const before = new Map(((await a.custom.listNamespacedCustomObject({ ...PCR, namespace: ns })) as { items: PodCertificateRequest[] }).items
    .map((p) => [p.metadata.name!, p.metadata.resourceVersion!]));
  assert.ok(before.size >= 7);
  await op.stop();
  op = await runOperator(env.kc);
  // runOperator returns once the caches synced and every request is queued; idle() once the
  // queues drained, so each request was reconciled by now: a write would already show.
  await op.idle();
  const after = ((await a.custom.listNamespacedCustomObject({ ...PCR, namespace: ns })) as { items: PodCertificateRequest[] }).items;
  assert.deepEqual(new Map(after.map((p) => [p.metadata.name!, p.metadata.resourceVersion!])), before);
});
