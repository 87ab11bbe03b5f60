// The stub PKCS#10 request a kubelet sends in a PodCertificateRequest: its key
// type mapped to the kubelet's names, its public key read only once its
// signature verifies, and garbage refused in our own words.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyObject, type webcrypto } from 'node:crypto';
import { parseCertificateRequest } from '../../../src/pki/csr.ts';
import { stubRequest } from './fixtures.ts';

const KEYS: Array<[string, webcrypto.RsaHashedKeyGenParams | webcrypto.EcKeyGenParams | webcrypto.Algorithm, string, boolean]> = [
  ['ECDSAP256', { name: 'ECDSA', namedCurve: 'P-256' }, 'SHA-256', true],
  ['ECDSAP384', { name: 'ECDSA', namedCurve: 'P-384' }, 'SHA-384', true],
  ['ECDSAP521', { name: 'ECDSA', namedCurve: 'P-521' }, 'SHA-512', false],
  ['ED25519', { name: 'Ed25519' }, '', true],
  ['RSA3072', { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', modulusLength: 3072, publicExponent: new Uint8Array([1, 0, 1]) } as webcrypto.RsaHashedKeyGenParams, '', true],
  ['RSA-2048', { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) } as webcrypto.RsaHashedKeyGenParams, '', false],
];

for (const [keyType, alg, hash, supported] of KEYS) {
  test(`a ${keyType} request is read as ${keyType}${supported ? ' with its public key' : ', and no key to issue for'}`, async () => {
    const { der, keys } = await stubRequest(alg, hash);
    const got = await parseCertificateRequest(der);
    assert.ok(got.ok);
    assert.equal(got.keyType, keyType);
    assert.equal(got.publicKey !== undefined, supported);
    if (got.publicKey) assert.ok(KeyObject.from(got.publicKey).equals(KeyObject.from(keys.publicKey)));
  });
}

test('a request whose signature does not verify with its own key is refused', async () => {
  const { der } = await stubRequest(KEYS[0]![1], 'SHA-256');
  const bytes = Buffer.from(der, 'base64');
  bytes[bytes.length - 5]! ^= 0xff; // inside the signature
  const got = await parseCertificateRequest(bytes.toString('base64'));
  assert.deepEqual(got, { ok: false, problem: "stubPKCS10Request's signature does not verify with its own public key" });
});

test('bytes that are not a request are refused without quoting them', async () => {
  const got = await parseCertificateRequest(Buffer.from('not a certificate request: secret').toString('base64'));
  assert.equal(got.ok, false);
  assert.ok(!got.ok && !got.problem.includes('secret'));
});
