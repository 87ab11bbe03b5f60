// The node's side of pod certificates against a real API server with the Node
// authorizer and NodeRestriction on, without the operator: the pod the webhook
// injects is accepted; only the node the pod is bound to may ask for its
// certificate, and only through a podCertificate projection naming our
// signer; the stand-in kubelet (test/support/pod-kubelet.ts) makes the request
// the API server expects, writes what an answer holds so the SDK loads it, and
// refreshes early when told to. The signer's part is played here by the test
// (admin writes the status) only to drive the stand-in; the operator's signer
// has its own tests.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { ApiException, CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { SIGNER_NAME } from '../../src/api/group.ts';
import type { AgentIdentity, PodCertificateRequest } from '../../src/api/types.ts';
import { issueLeaf } from '../../src/pki/leaf.ts';
import { SpiffeID } from '../../src/pki/spiffeid.ts';
import { loadIdentity } from '../../src/sdk/identity.ts';
import { injectIdentity } from '../../src/webhook/mutate.ts';
import type { Pod } from '../../src/webhook/pod.ts';
import { createNode, startTestEnv, type TestEnv, type TestNode } from '../support/env.ts';
import { eventually } from '../support/eventually.ts';
import { createPodCertificateRequest, podCertificateVolumeOf, startPodKubelet, type PodKubelet } from '../support/pod-kubelet.ts';
import { agentID, makeTrustDomain, policyFor, type TestTrustDomain } from '../support/sdk-pki.ts';
import { applyPatch } from '../unit/webhook/fixtures.ts';

const PCR = { group: 'certificates.k8s.io', version: 'v1', plural: 'podcertificaterequests' } as const;
const HOUR = 3_600_000;

let env: TestEnv;
let core: CoreV1Api;
let custom: CustomObjectsApi;
let ns: string;
let n1: TestNode;
let n2: TestNode;
let td: TestTrustDomain;
let base: string;

const planner = (namespace: string): AgentIdentity => ({
  apiVersion: 'agentidentity.dev/v1alpha1', kind: 'AgentIdentity',
  metadata: { name: 'planner', namespace, uid: 'uid-planner' },
  spec: { serviceAccountName: 'planner', delivery: 'PodCertificate', trustDomain: 'default', duration: '24h' },
});

/** A pod bound to `node`, as the webhook injects it for a pod-certificate identity (or bare, for the refusal cases). */
function agentPod(name: string, node: string, inject = true): Pod {
  const pod: Pod = {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace: ns, labels: { 'agentidentity.dev/agent': 'planner' } },
    spec: { serviceAccountName: 'planner', nodeName: node, automountServiceAccountToken: false, containers: [{ name: 'app', image: 'agent:1' }] },
  };
  if (!inject) return pod;
  const { patch, refusal } = injectIdentity(pod, planner(ns));
  assert.equal(refusal, undefined);
  return applyPatch(pod, patch);
}

const createPod = (pod: Pod) => core.createNamespacedPod({ namespace: ns, body: pod as V1Pod });

/** The API server's refusal: its code and message. */
async function refusal(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ApiException, `expected the API server's answer, got ${String(err)}`);
    return { code: err.code, message: (JSON.parse(err.body as string) as { message: string }).message };
  }
  assert.fail('the API server accepted it');
}

async function uids(pod: V1Pod) {
  const sa = await core.readNamespacedServiceAccount({ namespace: ns, name: 'planner' });
  return { serviceAccountUID: sa.metadata!.uid!, nodeUID: n1.node.metadata!.uid!, pod };
}

before(async () => {
  env = await startTestEnv({ nodeAuthorizer: true });
  core = env.kc.makeApiClient(CoreV1Api);
  custom = env.kc.makeApiClient(CustomObjectsApi);
  ns = await env.namespace('pod-cert');
  n1 = await createNode(env, 'n1');
  n2 = await createNode(env, 'n2');
  td = await makeTrustDomain();
  base = await mkdtemp(join(tmpdir(), 'pod-kubelet-'));
  await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'planner' } } });
  // What the trust reconciler and the identity reconciler publish; written here, since no operator runs.
  const spiffeID = agentID('planner', ns);
  await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'trust-bundle-default' }, data: { 'ca.crt': td.bundlePem } } });
  const policy = policyFor({ spiffeID, certificatePem: '', privateKeyPem: '', serialNumber: '' });
  await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'planner-identity-policy' }, data: { 'policy.json': JSON.stringify(policy) } } });
});

after(async () => {
  await env?.stop();
  if (base) await rm(base, { recursive: true, force: true });
});

describe('the API server and the node', () => {
  let pod: V1Pod;
  before(async () => {
    pod = await createPod(agentPod('agent', 'n1'));
  });

  it('accepts the pod the webhook injects for pod-certificate delivery, projection intact', () => {
    const found = podCertificateVolumeOf(pod);
    assert.ok(found, 'the podCertificate source survived validation and defaulting');
    assert.deepEqual({ ...found.source }, {
      signerName: SIGNER_NAME, keyType: 'ECDSAP256', maxExpirationSeconds: 86_400,
      credentialBundlePath: 'credential-bundle.pem', userAnnotations: { 'agentidentity.dev/agent': 'planner' },
    });
  });

  it('refuses a request from a node the pod is not bound to', async () => {
    const source = podCertificateVolumeOf(pod)!.source;
    // n2 asks in n1's name, as the pod's spec says.
    const asN1 = await refusal(createPodCertificateRequest(n2.kc, { ...(await uids(pod)), source }));
    assert.equal(asN1.code, 403);
    assert.match(asN1.message, /is forbidden: PodCertificateRequest\.Spec\.NodeName="n1", which is not the requesting node "n2"$/);
    // n2 asks in its own name, for a pod that is not bound to it.
    const asN2 = await refusal(createPodCertificateRequest(n2.kc, { pod: { ...pod, spec: { ...pod.spec!, nodeName: 'n2' } }, serviceAccountUID: (await uids(pod)).serviceAccountUID, nodeUID: n2.node.metadata!.uid!, source }));
    assert.equal(asN2.code, 403);
    assert.match(asN2.message, new RegExp(`is forbidden: pod "${ns}/agent" is not running on node "n2" named in the PodCertificateRequest$`));
  });

  it('accepts the request of the node the pod is bound to, with the spec it sent', async () => {
    const source = podCertificateVolumeOf(pod)!.source;
    const created = await createPodCertificateRequest(n1.kc, { ...(await uids(pod)), source });
    const stored = await custom.getNamespacedCustomObject({ ...PCR, namespace: ns, name: created.request.metadata.name! }) as PodCertificateRequest;
    assert.equal(stored.spec.nodeName, 'n1');
    assert.equal(stored.spec.podUID, pod.metadata!.uid);
    assert.equal(stored.spec.signerName, SIGNER_NAME);
    assert.equal(stored.spec.maxExpirationSeconds, 86_400);
    assert.deepEqual(stored.spec.unverifiedUserAnnotations, { 'agentidentity.dev/agent': 'planner' });
    const csr = new x509.Pkcs10CertificateRequest(Buffer.from(stored.spec.stubPKCS10Request, 'base64'));
    assert.equal(csr.subject, '', 'the stub request has an empty subject');
    assert.equal(Buffer.from(csr.publicKey.rawData).toString('base64'), created.publicKeySpki, 'it carries the new key');
    assert.equal(stored.status?.conditions, undefined, 'nobody answered it');
  });

  it('refuses a request for a pod without a podCertificate projection naming the signer', async () => {
    const bare = await createPod(agentPod('bare', 'n1', false));
    const source = { signerName: SIGNER_NAME, keyType: 'ECDSAP256' as const };
    const none = await refusal(createPodCertificateRequest(n1.kc, { ...(await uids(bare)), source }));
    assert.equal(none.code, 403);
    assert.match(none.message, new RegExp(`is forbidden: pod "${ns}/bare" does not mount a podCertificate projected volume for signer "agentidentity\\.dev/svid"$`));
    // A projection for another signer does not let the node ask ours.
    const other = agentPod('other-signer', 'n1');
    const v = other.spec.volumes!.find((x) => x.name === 'agent-identity')!;
    (v.projected!.sources![0]!.podCertificate as { signerName: string }).signerName = 'example.com/other';
    const otherPod = await createPod(other);
    const wrong = await refusal(createPodCertificateRequest(n1.kc, { ...(await uids(otherPod)), source }));
    assert.equal(wrong.code, 403);
    assert.match(wrong.message, new RegExp(`is forbidden: pod "${ns}/other-signer" does not mount a podCertificate projected volume for signer "agentidentity\\.dev/svid"$`));
  });
});

/** The test answers as the signer would (admin may write any status): an SVID for the request's key, or Denied. */
async function answer(kc: KubeConfig, pcr: PodCertificateRequest, how: 'Issued' | 'Denied'): Promise<void> {
  const now = new Date();
  const condition = (type: string, reason: string, message: string) => ({ type, status: 'True', reason, message, lastTransitionTime: now.toISOString() });
  let status: Record<string, unknown>;
  if (how === 'Denied') {
    status = { conditions: [condition('Denied', 'IdentitySuspended', 'test')] };
  } else {
    const csr = new x509.Pkcs10CertificateRequest(Buffer.from(pcr.spec.stubPKCS10Request, 'base64'));
    const leaf = await issueLeaf(td.intermediate, { spiffeID: SpiffeID.parse(agentID('planner', ns)), dnsNames: [], publicKey: await csr.publicKey.export(), durationMs: 2 * HOUR, now, backdateMs: 0 });
    status = {
      conditions: [condition('Issued', 'Issued', 'test')], certificateChain: leaf.certificatePem,
      notBefore: leaf.notBefore.toISOString(), beginRefreshAt: new Date(leaf.notBefore.getTime() + HOUR).toISOString(), notAfter: leaf.notAfter.toISOString(),
    };
  }
  await kc.makeApiClient(CustomObjectsApi).replaceNamespacedCustomObjectStatus({ ...PCR, namespace: ns, name: pcr.metadata.name!, body: { ...pcr, status } });
}

describe('the stand-in kubelet', () => {
  let kubelet: PodKubelet | undefined;
  after(() => kubelet?.stop());

  it('asks as the node, writes the answer so the SDK loads it, and refreshes when told', async () => {
    const pod = await createPod(agentPod('kubelet', 'n1'));
    const dir = join(base, 'kubelet');
    let refreshes = 0;
    // Refresh at once the first time (the API's floor is 1 h); the hook sees the real beginRefreshAt.
    kubelet = await startPodKubelet({ kc: n1.kc, namespace: ns, pod: pod.metadata!.name!, dir, pollMs: 100, refreshAt: (at, issued) => {
      assert.equal(at.getTime(), issued.notBefore.getTime() + HOUR);
      return refreshes++ === 0 ? new Date() : at;
    } });
    const waitFor = (n: number) => eventually(async () => {
      if (kubelet!.error) throw kubelet!.error;
      return kubelet!.requests.length >= n;
    }, { intervalMs: 50, what: `the kubelet's request ${n}` });

    await waitFor(1);
    const first = kubelet.requests[0]!;
    assert.equal(first.spec.podUID, pod.metadata!.uid);
    assert.equal(first.spec.nodeUID, n1.node.metadata!.uid);
    await answer(env.kc, first, 'Issued');
    const issued = await kubelet.outcome();
    assert.equal(issued.type, 'Issued');

    const identity = await loadIdentity({ dir, watch: false });
    assert.equal(identity.spiffeID, agentID('planner', ns));
    assert.equal(identity.svid.certificatesPem, issued.type === 'Issued' ? issued.certificateChain : '');
    assert.equal(Buffer.from(identity.svid.leaf.publicKey.rawData).toString('base64'), issued.type === 'Issued' ? issued.publicKeySpki : '');
    assert.match(await readlink(join(dir, 'credential-bundle.pem')), /^\.\.data\//, 'written the kubelet\'s way');

    await waitFor(2);
    const second = kubelet.requests[1]!;
    assert.notEqual(second.spec.stubPKCS10Request, first.spec.stubPKCS10Request, 'a refresh is a new key');
    await answer(env.kc, second, 'Issued');
    const renewed = await kubelet.outcome();
    assert.equal(renewed.type, 'Issued');
    assert.equal(await identity.reload(), true, 'the SDK takes the refreshed files');
    assert.equal(Buffer.from(identity.svid.leaf.publicKey.rawData).toString('base64'), renewed.type === 'Issued' ? renewed.publicKeySpki : '', 'with the new key');
    assert.notEqual(renewed.type === 'Issued' && renewed.publicKeySpki, issued.type === 'Issued' && issued.publicKeySpki);

    // The second refresh waits for beginRefreshAt (an hour away): nothing new is asked meanwhile.
    // A window, not a wait: five of the kubelet's 100 ms polls, any of which would ask again if it ignored beginRefreshAt.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(kubelet.requests.length, 2);
    await kubelet.stop();
    kubelet = undefined;
    identity.close();
  });

  it('reports Denied with its reason and stops asking', async () => {
    const pod = await createPod(agentPod('denied', 'n1'));
    kubelet = await startPodKubelet({ kc: n1.kc, namespace: ns, pod: pod.metadata!.name!, dir: join(base, 'denied'), pollMs: 100 });
    await eventually(async () => kubelet!.requests.length >= 1, { intervalMs: 50, what: 'the kubelet\'s request' });
    await answer(env.kc, kubelet.requests[0]!, 'Denied');
    const outcome = await kubelet.outcome();
    assert.equal(outcome.type, 'Denied');
    assert.equal(outcome.type === 'Denied' && outcome.reason, 'IdentitySuspended');
    await assert.rejects(kubelet.outcome(), /stopped after 1 answers/);
    assert.equal(kubelet.requests.length, 1);
  });
});
