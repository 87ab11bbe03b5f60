import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { inspect } from 'node:util';
import type { KeyAlgorithm } from '../../../src/api/types.ts';
import { subtle } from '../../../src/pki/crypto.ts';
import { PkiError } from '../../../src/pki/errors.ts';
import {
  describeKey,
  generateKeyPair,
  type KeyPair,
  keyMatchesCertificate,
  privateKeyFromPem,
  privateKeyToPem,
  signingAlgorithmOf,
} from '../../../src/pki/keys.ts';
import { parseCertificates } from '../../../src/pki/parse.ts';
import { hierarchy, withTempDir } from './fixtures.ts';
import { begin, end, startsWithPem, wholePem } from '../../support/pem.ts';

const spki = async (k: KeyPair) => Buffer.from(await subtle.exportKey('spki', k.publicKey));

/** Signs with one pair's private key and verifies with another's public key. */
async function signsFor(signer: KeyPair, verifier: KeyPair): Promise<boolean> {
  const data = new TextEncoder().encode('agent-identity');
  const sig = await subtle.sign(signingAlgorithmOf(signer), signer.privateKey, data);
  return subtle.verify(signingAlgorithmOf(verifier), verifier.publicKey, sig, data);
}

function assertPkiError(fn: () => Promise<unknown>, reason: string) {
  return assert.rejects(fn, (err: unknown) => {
    assert.ok(err instanceof PkiError, `expected PkiError, got ${String(err)}`);
    assert.equal(err.reason, reason);
    return true;
  });
}

describe('generateKeyPair and PKCS#8 PEM round trip', () => {
  const cases: [KeyAlgorithm, number, string][] = [
    ['ECDSA', 256, 'ECDSA-256'],
    ['ECDSA', 384, 'ECDSA-384'],
    ['Ed25519', 0, 'Ed25519'],
    ['RSA', 2048, 'RSA-2048'],
  ];
  for (const [algorithm, size, label] of cases) {
    it(`${label} survives privateKeyToPem → privateKeyFromPem`, async () => {
      const kp = await generateKeyPair(algorithm, size);
      assert.equal(describeKey(kp), label);
      const pem = await privateKeyToPem(kp);
      assert.match(pem, wholePem('PRIVATE KEY'));
      const loaded = await privateKeyFromPem(pem);
      assert.equal(loaded.algorithm, algorithm);
      assert.equal(loaded.size, size);
      assert.deepEqual(await spki(loaded), await spki(kp), 'derived public key equals the generated one');
      assert.ok(await signsFor(loaded, kp), 'loaded private key signs for the original public key');
      assert.equal(await privateKeyToPem(loaded), pem, 'export is stable');
    });
  }

  it('uses SHA-384 with P-384 and SHA-256 with P-256', async () => {
    assert.deepEqual(signingAlgorithmOf(await generateKeyPair('ECDSA', 384)), { name: 'ECDSA', hash: 'SHA-384' });
    assert.deepEqual(signingAlgorithmOf(await generateKeyPair('ECDSA', 256)), { name: 'ECDSA', hash: 'SHA-256' });
  });

  it('ignores size for Ed25519, as the CRD documents', async () => {
    assert.equal((await generateKeyPair('Ed25519', 256)).size, 0);
  });

  for (const [algorithm, size] of [['ECDSA', 521], ['ECDSA', 0], ['RSA', 1024], ['RSA', 2047], ['DSA', 2048]] as const) {
    it(`rejects ${algorithm} ${size} with KeyUnsupported`, async () => {
      await assertPkiError(() => generateKeyPair(algorithm as KeyAlgorithm, size), 'KeyUnsupported');
    });
  }
});

describe('privateKeyFromPem with keys made elsewhere', () => {
  it('reads PKCS#1 "RSA PRIVATE KEY" and reports the modulus size', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 3072 });
    const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }) as string;
    assert.match(pem, startsWithPem('RSA PRIVATE KEY'));
    const kp = await privateKeyFromPem(pem);
    assert.equal(kp.algorithm, 'RSA');
    assert.equal(kp.size, 3072);
    assert.ok(KeyObject.from(kp.publicKey).equals(publicKey));
    assert.match(await privateKeyToPem(kp), startsWithPem('PRIVATE KEY'), 're-exported as PKCS#8');
  });

  for (const [curve, size] of [['prime256v1', 256], ['secp384r1', 384]] as const) {
    it(`reads SEC1 "EC PRIVATE KEY" on ${curve}`, async () => {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
      const kp = await privateKeyFromPem(privateKey.export({ type: 'sec1', format: 'pem' }) as string);
      assert.equal(kp.algorithm, 'ECDSA');
      assert.equal(kp.size, size);
      assert.ok(KeyObject.from(kp.publicKey).equals(publicKey));
      assert.ok(await signsFor(kp, kp));
    });
  }

  it('reads `openssl ecparam -genkey` output, which puts EC PARAMETERS before the key', async () => {
    const pem = execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey'], { encoding: 'utf8' });
    assert.match(pem, new RegExp(`${begin('EC PARAMETERS')}[\\s\\S]*${begin('EC PRIVATE KEY')}`));
    const kp = await privateKeyFromPem(pem);
    assert.equal(describeKey(kp), 'ECDSA-256');
  });

  it('rejects keys it cannot use with KeyUnsupported', async () => {
    const p521 = generateKeyPairSync('ec', { namedCurve: 'secp521r1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const ed448 = generateKeyPairSync('ed448').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const encrypted = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
      cipher: 'aes-256-cbc',
      passphrase: 'secret',
    }) as string;
    const legacyEncrypted = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({
      type: 'sec1',
      format: 'pem',
      cipher: 'aes-128-cbc',
      passphrase: 'secret',
    }) as string;
    assert.match(legacyEncrypted, /Proc-Type: 4,ENCRYPTED/);
    for (const pem of [p521, rsa1024, ed448, encrypted, legacyEncrypted]) await assertPkiError(() => privateKeyFromPem(pem), 'KeyUnsupported');
  });
});

describe('errors about corrupt keys never carry key material', () => {
  // A real key to corrupt, so that the fragments we search for are genuine key bytes.
  const der = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'der' });
  const body = der.toString('base64');
  const armour = (label: string, b64: string) => `${begin(label)}\n${b64.replace(/.{64}/g, '$&\n')}\n${end(label)}\n`;
  const flipped = Buffer.from(der);
  flipped.set(flipped.subarray(8, 24).reverse(), 8);
  const corrupt: Record<string, string> = {
    'truncated body': armour('PRIVATE KEY', der.subarray(0, der.length - 20).toString('base64')),
    'flipped bytes': armour('PRIVATE KEY', flipped.toString('base64')),
    'not base64': armour('PRIVATE KEY', `${body.slice(0, 40)}!!!!${body.slice(44)}`),
    'RSA label on an EC key': armour('RSA PRIVATE KEY', body),
    'no PEM armour': body,
    'a certificate instead': armour('CERTIFICATE', body),
    empty: '',
  };
  for (const [name, pem] of Object.entries(corrupt)) {
    it(`${name}: KeyUnparsable with a safe message`, async () => {
      const err = await privateKeyFromPem(pem).then(
        () => assert.fail('corrupt key was accepted'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof PkiError);
      assert.equal(err.reason, 'KeyUnparsable');
      assert.equal(err.cause, undefined, 'no lower-layer error is attached');
      // Everything a logger might print: message, stack and own properties.
      const printed = `${err.message}\n${inspect(err)}\n${JSON.stringify(err)}`;
      assert.doesNotMatch(printed, /PRIVATE KEY/);
      for (let i = 0; i + 12 <= body.length; i += 4) {
        assert.ok(!printed.includes(body.slice(i, i + 12)), `message leaks key bytes at offset ${i}`);
      }
    });
  }

  it('rejects a non-string without throwing a TypeError', async () => {
    await assertPkiError(() => privateKeyFromPem(undefined as unknown as string), 'KeyUnparsable');
  });
});

describe('keyMatchesCertificate', () => {
  it('is true for the CA key and its certificate, false for another key', async () => {
    const { root, intermediate } = await hierarchy();
    assert.equal(await keyMatchesCertificate(root.key, root.certificate), true);
    assert.equal(await keyMatchesCertificate(intermediate.key, root.certificate), false);
    assert.equal(await keyMatchesCertificate(await generateKeyPair('Ed25519', 0), root.certificate), false);
  });

  it('leaves node:crypto usable after comparing keys of different types', async () => {
    // Regression: KeyObject.equals across key types leaves an OpenSSL error queued that broke the next key parse.
    const { root } = await hierarchy();
    const ed = await generateKeyPair('Ed25519', 0);
    assert.equal(await keyMatchesCertificate(ed, root.certificate), false);
    const sec1 = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'sec1', format: 'pem' }) as string;
    assert.equal((await privateKeyFromPem(sec1)).algorithm, 'ECDSA');
  });

  it('compares key material, not encodings: a certificate with a compressed EC point matches', async () => {
    const [keyPem, certPem] = await withTempDir((dir) => {
      const sh = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
      sh('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'plain.pem');
      sh('ec', '-in', 'plain.pem', '-conv_form', 'compressed', '-out', 'key.pem');
      sh('req', '-x509', '-new', '-key', 'key.pem', '-subj', '/CN=compressed', '-days', '1', '-out', 'cert.pem');
      return ['key.pem', 'cert.pem'].map((f) => readFileSync(join(dir, f), 'utf8'));
    });
    const kp = await privateKeyFromPem(keyPem!);
    const cert = parseCertificates(certPem!)[0]!;
    assert.notDeepEqual(Buffer.from(cert.publicKey.rawData), await spki(kp), 'the encodings really differ');
    assert.equal(await keyMatchesCertificate(kp, cert), true);
  });
});
