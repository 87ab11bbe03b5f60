// Bring your own CA: the TrustDomain points at a CA Secret the admin's issuer
// owns. When that Secret's contents change to a new CA, the operator runs the
// same overlap as a root rotation, and two agents keep completing mutual TLS
// throughout. The phases that ran are read from the operator's Events, not
// sampled from status (a poll misses a phase shorter than its interval).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { TestEnv } from '../support/env.ts';
import { setUp, tearDown } from '../support/suite.ts';
import { eventually } from '../support/operator.ts';
import { api, isReady, secretText, ROTATION_EVENTS } from '../support/objects.ts';
import { mtlsHandshake, type Material } from '../support/tls.ts';
import { createRoot } from '../../src/pki/ca.ts';
import { parseCertificates, fingerprintOf } from '../../src/pki/parse.ts';
import { verifyChain } from '../../src/pki/verify.ts';
import type { Operator } from '../../src/operator.ts';

let env: TestEnv;
let op: Operator;
let a: ReturnType<typeof api>;

before(async () => {
  ({ env, op, a } = await setUp({ trustDomain: null, operator: { externalCAPollMs: 500, propagationDelayMs: 1500, reissueWindowMs: 2000, rotationGraceMs: 1500, rotationPollMs: 300 } }));
});
after(() => tearDown({ env, op }));

async function externalCA() {
  const root = await createRoot({ trustDomain: 'byo.example', algorithm: 'ECDSA', validityMs: 30 * 24 * 3600_000, now: new Date() });
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return { pem: root.certificatePem, data: { 'tls.crt': b64(root.certificatePem), 'tls.key': b64(root.privateKeyPem), 'ca.crt': b64(root.certificatePem) } };
}

test('replacing the brought-in CA overlaps old and new roots with zero failed handshakes', async (t) => {
  const caNs = await env.namespace('issuer');
  const first = await externalCA();
  await a.core.createNamespacedSecret({ namespace: caNs, body: { metadata: { name: 'agents-ca' }, type: 'kubernetes.io/tls', data: first.data } });
  await a.createTrustDomain('byo', { trustDomain: 'byo.example', ca: { secretRef: { namespace: caNs, name: 'agents-ca' } } });
  const ns = await env.namespace('byo');
  await a.createIdentity(ns, 'server', { trustDomain: 'byo', duration: '1h' });
  await a.createIdentity(ns, 'client', { trustDomain: 'byo', duration: '1h' });
  await eventually(async () => isReady(await a.getIdentity(ns, 'server')) && isReady(await a.getIdentity(ns, 'client')), { what: 'both Ready' });
  const firstFp = await fingerprintOf(parseCertificates(first.pem)[0]!);
  assert.deepEqual((await a.getTrustDomain('byo')).status!.roots!.map((r) => r.fingerprint), [firstFp]);

  const material = async (name: string): Promise<Material> => {
    const s = await a.getSecret(ns, `${name}-identity`);
    return { cert: secretText(s, 'tls.crt'), key: secretText(s, 'tls.key'), ca: secretText(s, 'ca.crt') };
  };
  let ok = 0;
  const failures: string[] = [];
  let running = true;
  const traffic = (async () => {
    while (running) {
      const r = await mtlsHandshake(...(await Promise.all([material('server'), material('client')])));
      if (r.authorized) ok++; else failures.push(r.error ?? 'refused');
      await new Promise((res) => setTimeout(res, 100));
    }
  })();

  // The issuer replaces its CA (a new key and root), as a cert-manager CA renewal with rotationPolicy Always would.
  const second = await externalCA();
  await a.core.replaceNamespacedSecret({ namespace: caNs, name: 'agents-ca', body: { metadata: { name: 'agents-ca' }, type: 'kubernetes.io/tls', data: second.data } });
  const secondFp = await fingerprintOf(parseCertificates(second.pem)[0]!);
  await eventually(async () => {
    const td = await a.getTrustDomain('byo');
    const fps = td.status?.roots?.map((r) => r.fingerprint) ?? [];
    return !td.status?.rotation && fps.length === 1 && fps[0] === secondFp;
  }, { timeoutMs: 60_000, what: 'the overlap to finish on the new CA' });
  // Traffic goes on after the old root left the bundle, however slow each handshake is here.
  const okAtDone = ok;
  await eventually(async () => ok >= okAtDone + 3, { what: 'handshakes after the overlap' });
  running = false;
  await traffic;

  const steps = (await a.trustDomainEvents('byo')).filter((e) => ROTATION_EVENTS.includes(e.reason ?? ''));
  t.diagnostic(`${okAtDone} handshakes while the brought-in CA changed, ${failures.length} failed; events: ${steps.map((e) => e.reason).join(', ')}`);
  assert.deepEqual(failures, []);
  assert.ok(okAtDone >= 5, `traffic ran: ${okAtDone}`);
  assert.deepEqual(steps.map((e) => e.reason).sort(), [...ROTATION_EVENTS].sort(), 'every phase transition was recorded once: leaves were moved under the new CA');
  for (const e of steps) assert.ok(e.message!.includes(secondFp), `${e.reason} names the new signer: ${e.message}`);
  const newRoot = parseCertificates(second.pem);
  for (const name of ['server', 'client']) {
    const s = await a.getSecret(ns, `${name}-identity`);
    assert.deepEqual(await verifyChain(parseCertificates(secretText(s, 'tls.crt')), newRoot, new Date()), { ok: true }, `${name} is signed by the new CA`);
    assert.equal(secretText(s, 'ca.crt'), second.pem.endsWith('\n') ? second.pem : `${second.pem}\n`, `${name}'s bundle holds only the new root`);
  }
});
