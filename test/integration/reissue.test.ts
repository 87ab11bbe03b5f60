// The re-issue checks, end to end: each trigger makes the operator issue a
// new certificate, and the condition says which check fired.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { TestEnv } from '../support/env.ts';
import { setUp, tearDown } from '../support/suite.ts';
import { eventually } from '../support/operator.ts';
import { api, isReady, secretText } from '../support/objects.ts';
import { parseCertificates, describeCertificate } from '../../src/pki/parse.ts';
import type { Operator } from '../../src/operator.ts';
import { containsPem } from '../support/pem.ts';

let env: TestEnv;
let op: Operator;
let a: ReturnType<typeof api>;
let ns: string;

before(async () => {
  ({ env, op, a } = await setUp({}));
  ns = await env.namespace('reissue');
});
after(() => tearDown({ env, op }));

async function readyWithSerial(name: string, notSerial?: string) {
  return eventually(async () => {
    const i = await a.getIdentity(ns, name);
    return isReady(i) && i.status?.serialNumber !== notSerial && i.status?.serialNumber === (await a.getSecret(ns, `${name}-identity`)).metadata.annotations?.['agentidentity.dev/serial-number'] && i;
  }, { what: `${name} Ready with a new serial` });
}

async function leafOf(name: string) {
  const s = await a.getSecret(ns, `${name}-identity`);
  return describeCertificate(parseCertificates(secretText(s, 'tls.crt'))[0]!);
}

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

test('deleting the Secret re-issues it', async () => {
  await a.createIdentity(ns, 'del');
  const first = await readyWithSerial('del');
  await a.core.deleteNamespacedSecret({ namespace: ns, name: 'del-identity' });
  const second = await readyWithSerial('del', first.status!.serialNumber);
  assert.notEqual(second.status!.serialNumber, first.status!.serialNumber);
  assert.equal(second.status!.lastIssuanceReason, 'SecretDoesNotExist');
});

test('a corrupted tls.key is replaced', async () => {
  await a.createIdentity(ns, 'corrupt');
  const first = await readyWithSerial('corrupt');
  await a.core.patchNamespacedSecret({ namespace: ns, name: 'corrupt-identity', body: { data: { 'tls.key': Buffer.from('not a key').toString('base64') } } }, mergePatch);
  const second = await readyWithSerial('corrupt', first.status!.serialNumber);
  assert.equal(second.status!.lastIssuanceReason, 'SecretKeyUnparsable');
  assert.match(secretText(await a.getSecret(ns, 'corrupt-identity'), 'tls.key'), containsPem('PRIVATE KEY'));
});

test('changing dnsNames re-issues with the new SAN', async () => {
  await a.createIdentity(ns, 'dns', { dnsNames: [`a.${ns}.svc`] });
  const first = await readyWithSerial('dns');
  await a.patchIdentity(ns, 'dns', { spec: { dnsNames: [`a.${ns}.svc`, `b.${ns}.svc`] } });
  const second = await readyWithSerial('dns', first.status!.serialNumber);
  assert.equal(second.status!.lastIssuanceReason, 'DNSNamesMismatch');
  assert.deepEqual((await leafOf('dns')).dnsNames.sort(), [`a.${ns}.svc`, `b.${ns}.svc`]);
});

test('changing the key algorithm re-issues with the new algorithm', async () => {
  await a.createIdentity(ns, 'alg');
  const first = await readyWithSerial('alg');
  assert.equal((await leafOf('alg')).keyAlgorithm, 'ECDSA');
  await a.patchIdentity(ns, 'alg', { spec: { privateKey: { algorithm: 'Ed25519', size: null } } });
  const second = await readyWithSerial('alg', first.status!.serialNumber);
  assert.equal(second.status!.lastIssuanceReason, 'KeyAlgorithmMismatch');
  assert.equal((await leafOf('alg')).keyAlgorithm, 'Ed25519');
});

test('a Secret of the same name that the operator does not manage is never overwritten', async () => {
  await a.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'taken-identity' }, stringData: { note: 'mine' } } });
  await a.createIdentity(ns, 'taken');
  const i = await eventually(async () => {
    const x = await a.getIdentity(ns, 'taken');
    return x.status?.conditions?.find((c) => c.type === 'Ready' && c.status === 'False') && x;
  }, { what: 'taken NotReady' });
  const ready = i.status!.conditions!.find((c) => c.type === 'Ready')!;
  assert.equal(ready.reason, 'SecretConflict');
  assert.match(ready.message, /not managed by agent-identity-operator/);
  assert.equal(secretText(await a.getSecret(ns, 'taken-identity'), 'note'), 'mine');
});
