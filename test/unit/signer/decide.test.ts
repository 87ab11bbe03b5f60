// The signer's decision for one PodCertificateRequest, table-tested: every
// Deny reason in order, the Fail and Wait cases, nothing for answered or
// foreign requests, and the lifetime and refresh time the API server accepts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyObject, type webcrypto } from 'node:crypto';
import { DEFAULT_SPIFFE_ID_TEMPLATE } from '../../../src/api/defaults.ts';
import type { AgentIdentity, AgentIdentitySpec, PodCertificateRequest, TrustDomain } from '../../../src/api/types.ts';
import { type CA, createIntermediate, createRoot, loadCA } from '../../../src/pki/ca.ts';
import { parseCertificateRequest, type CertificateRequestKey } from '../../../src/pki/csr.ts';
import { beginRefreshAt, decide, leafDurationMs, type Decision, type SignerInput } from '../../../src/signer/decide.ts';
import type { TrustDomainState } from '../../../src/trust/store.ts';
import { issueLeaf } from '../../../src/pki/leaf.ts';
import { SpiffeID } from '../../../src/pki/spiffeid.ts';
import { stubRequest } from '../pki/fixtures.ts';

const NOW = new Date('2030-06-01T12:00:00.000Z');
const DAY = 86_400_000;
const P256 = { name: 'ECDSA', namedCurve: 'P-256' } as webcrypto.EcKeyGenParams;

const TRUST_DOMAIN: TrustDomain = {
  apiVersion: 'agentidentity.dev/v1alpha1', kind: 'TrustDomain', metadata: { name: 'default' },
  spec: { trustDomain: 'cluster.local', ca: { selfSigned: {} } },
};

let signer: CA;
async function trustDomainState(withSigner = true): Promise<TrustDomainState> {
  if (!signer) {
    const opts = { trustDomain: 'cluster.local', algorithm: 'ECDSA' as const, now: NOW };
    const rootPem = await createRoot({ ...opts, validityMs: 365 * DAY });
    const root = await loadCA(rootPem.certificatePem, rootPem.privateKeyPem);
    const intPem = await createIntermediate(root, { ...opts, validityMs: 90 * DAY });
    signer = await loadCA(intPem.certificatePem, intPem.privateKeyPem);
  }
  return {
    name: 'default', trustDomain: 'cluster.local', spiffeIDTemplate: DEFAULT_SPIFFE_ID_TEMPLATE, signer: withSigner ? signer : undefined,
    bundle: [], bundlePem: '', caFingerprint: 'sha256:ca', activeRootFingerprint: 'sha256:root', retiringRootFingerprints: new Set(),
  };
}

function identity(spec: Partial<AgentIdentitySpec> = {}, meta: Partial<AgentIdentity['metadata']> = {}): AgentIdentity {
  return {
    apiVersion: 'agentidentity.dev/v1alpha1', kind: 'AgentIdentity',
    metadata: { name: 'planner', namespace: 'agents', uid: 'uid-planner', ...meta },
    spec: { serviceAccountName: 'planner', delivery: 'PodCertificate', duration: '24h', ...spec },
  };
}

function request(spec: Partial<PodCertificateRequest['spec']> = {}, status?: PodCertificateRequest['status']): PodCertificateRequest {
  return {
    apiVersion: 'certificates.k8s.io/v1', kind: 'PodCertificateRequest', metadata: { name: 'req-1', namespace: 'agents', uid: 'uid-req' },
    spec: {
      signerName: 'agentidentity.dev/svid', podName: 'planner-0', podUID: 'uid-pod', serviceAccountName: 'planner', serviceAccountUID: 'uid-sa',
      nodeName: 'n1', nodeUID: 'uid-n1', maxExpirationSeconds: 86_400, stubPKCS10Request: '', unverifiedUserAnnotations: { 'agentidentity.dev/agent': 'planner' },
      ...spec,
    },
    ...(status ? { status } : {}),
  };
}

let p256Key: CertificateRequestKey;
async function input(over: Partial<SignerInput> = {}): Promise<SignerInput> {
  p256Key ??= await parseCertificateRequest((await stubRequest(P256, 'SHA-256')).der);
  return {
    pcr: request(), identity: identity(), trustDomainObject: TRUST_DOMAIN, trustDomain: await trustDomainState(),
    namespaceLabels: { 'kubernetes.io/metadata.name': 'agents' }, key: p256Key, ...over,
  };
}

const denied = (d: Decision) => (d.kind === 'Deny' ? d.reason : `not denied: ${d.kind}`);

test('each request that must be refused is Denied with its reason, in check order', async () => {
  const p521 = await parseCertificateRequest((await stubRequest({ name: 'ECDSA', namedCurve: 'P-521' } as webcrypto.EcKeyGenParams, 'SHA-512')).der);
  const cases: Array<[string, Partial<SignerInput>, string, RegExp]> = [
    ['an unknown annotation key', { pcr: request({ unverifiedUserAnnotations: { 'agentidentity.dev/agent': 'planner', team: 'x' } }) }, 'InvalidUnverifiedUserAnnotations', /not "team"/],
    ['no agent annotation', { pcr: request({ unverifiedUserAnnotations: {} }) }, 'InvalidUnverifiedUserAnnotations', /must name the AgentIdentity/],
    ['no such identity', { identity: undefined }, 'IdentityNotFound', /AgentIdentity "planner" does not exist in namespace "agents"/],
    ['an identity being deleted', { identity: identity({}, { deletionTimestamp: '2030-06-01T11:00:00Z' }) }, 'IdentityNotFound', /being deleted/],
    ['another ServiceAccount', { pcr: request({ serviceAccountName: 'intruder' }) }, 'ServiceAccountMismatch', /runs as ServiceAccount "intruder".*bound to "planner"/],
    ['a suspended identity', { identity: identity({ suspended: true }) }, 'IdentitySuspended', /suspended/],
    ['an identity on Secret delivery', { identity: identity({ delivery: undefined }) }, 'PodCertificateNotEnabled', /spec.delivery Secret/],
    ['a namespace the TrustDomain does not admit', { trustDomainObject: { ...TRUST_DOMAIN, spec: { ...TRUST_DOMAIN.spec, namespaceSelector: { matchLabels: { team: 'a' } } } } }, 'NamespaceNotAllowed', /agents/],
    ['an unreadable request', { key: { ok: false, problem: 'bad request' } }, 'InvalidCertificateRequest', /bad request/],
    ['a P-521 key', { key: p521 }, 'UnsupportedKeyType', /ECDSAP521 is not supported; use ECDSAP256/],
  ];
  for (const [what, over, reason, message] of cases) {
    const d = decide(await input(over));
    assert.equal(denied(d), reason, what);
    assert.match((d as { message: string }).message, message, what);
  }
});

test('a TrustDomain that cannot sign fails the request (the kubelet asks again); one still loading waits', async () => {
  const cases: Array<[string, Partial<SignerInput>, Decision['kind'], string?]> = [
    ['no such TrustDomain', { trustDomainObject: undefined, trustDomain: undefined }, 'Fail', 'TrustDomainNotReady'],
    ['a broken TrustDomain', { trustDomain: undefined, trustDomainFailure: 'CA Secret unreadable' }, 'Fail', 'TrustDomainNotReady'],
    ['a CA being replaced', { trustDomain: await trustDomainState(false) }, 'Fail', 'CANotReady'],
    ['a TrustDomain still loading', { trustDomain: undefined }, 'Wait'],
  ];
  for (const [what, over, kind, reason] of cases) {
    const d = decide(await input(over));
    assert.equal(d.kind, kind, what);
    if (reason) assert.equal((d as { reason: string }).reason, reason, what);
  }
});

test('answered requests and other signers\' requests are left alone', async () => {
  const answer = (type: string) => ({ conditions: [{ type, status: 'True' as const, reason: 'X', message: '', lastTransitionTime: '2030-06-01T00:00:00Z' }] });
  for (const type of ['Issued', 'Denied', 'Failed']) assert.equal(decide(await input({ pcr: request({}, answer(type)) })).kind, 'Done', type);
  assert.equal(decide(await input({ pcr: request({ signerName: 'example.com/other' }) })).kind, 'Done');
  // Done comes before any check: a foreign request with unknown annotations is not ours to deny.
  assert.equal(decide(await input({ pcr: request({ signerName: 'example.com/other', unverifiedUserAnnotations: { x: 'y' } }) })).kind, 'Done');
});

test('a valid request is issued for the CSR\'s key from the TrustDomain\'s signer', async () => {
  const d = decide(await input());
  assert.equal(d.kind, 'Issue');
  assert.ok(d.kind === 'Issue' && p256Key.ok && KeyObject.from(d.publicKey).equals(KeyObject.from(p256Key.publicKey!)));
});

test('the lifetime is the shorter of the identity\'s and maxExpirationSeconds, exactly, after the back-date', async () => {
  const { signer: ca } = await trustDomainState() as { signer: CA };
  const cases: Array<[string, number, number]> = [['24h', 86_400, 86_400], ['24h', 3600, 3600], ['2h', 86_400, 7200], ['1h', 3600, 3600]];
  for (const [duration, maxExpirationSeconds, want] of cases) {
    const i = identity({ duration });
    const pcr = request({ maxExpirationSeconds });
    const now = new Date(NOW.getTime() + 123); // not on a whole second
    const leaf = await issueLeaf(ca, { spiffeID: SpiffeID.parse('spiffe://cluster.local/ns/agents/agent/planner'), dnsNames: [], publicKey: (p256Key as { publicKey: webcrypto.CryptoKey }).publicKey, durationMs: leafDurationMs(i, pcr), now });
    assert.equal((leaf.notAfter.getTime() - leaf.notBefore.getTime()) / 1000, want, `${duration} / ${maxExpirationSeconds}`);
    assert.ok(Math.abs(leaf.notBefore.getTime() - now.getTime()) < 5 * 60_000);
  }
});

test('beginRefreshAt follows the Secret renewal rule, clamped 10 minutes inside the window', () => {
  const leaf = { notBefore: new Date('2030-06-01T11:59:30Z'), notAfter: new Date('2030-06-02T11:59:30Z'), serialNumber: 'ab' };
  const at = beginRefreshAt(identity(), leaf).getTime();
  // Two thirds through, less at most 5% jitter.
  assert.ok(at <= leaf.notBefore.getTime() + 30_000 + (2 / 3) * (DAY - 30_000) && at >= leaf.notBefore.getTime() + 0.6 * DAY, new Date(at).toISOString());
  const short = { notBefore: new Date('2030-06-01T11:59:30Z'), notAfter: new Date('2030-06-01T12:59:30Z'), serialNumber: 'cd' };
  const late = beginRefreshAt(identity({ duration: '1h', renewBefore: '1m' }), short);
  assert.equal(late.getTime(), short.notAfter.getTime() - 10 * 60_000);
  const early = beginRefreshAt(identity({ duration: '1h', renewBeforePercentage: 99 }), short);
  assert.equal(early.getTime(), short.notBefore.getTime() + 10 * 60_000);
});
