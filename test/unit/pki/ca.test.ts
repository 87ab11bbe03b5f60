import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type CA, createIntermediate, createRoot, loadCA } from '../../../src/pki/ca.ts';
import { x509 } from '../../../src/pki/crypto.ts';
import { PkiError } from '../../../src/pki/errors.ts';
import { describeKey, generateKeyPair, privateKeyToPem } from '../../../src/pki/keys.ts';
import { parseCertificates } from '../../../src/pki/parse.ts';
import { certificatesToPem } from '../../../src/pki/pem.ts';
import { DAY, hierarchy, leafFrom, NOW, TD } from './fixtures.ts';
import { startsWithPem } from '../../support/pem.ts';

async function rejectsWith(fn: () => Promise<unknown>, reason: string, message?: RegExp) {
  await assert.rejects(fn, (err: unknown) => {
    assert.ok(err instanceof PkiError, `expected PkiError, got ${String(err)}`);
    assert.equal(err.reason, reason);
    if (message) assert.match(err.message, message);
    return true;
  });
}

const ext = <T extends x509.Extension>(cert: x509.X509Certificate, type: new (raw: ArrayBuffer) => T): T => {
  const found = cert.getExtension(type);
  assert.ok(found, `missing ${type.name}`);
  return found;
};

const CA_USAGES = x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature;

describe('createRoot', () => {
  it('makes a self-signed Root with the CA profile', async () => {
    const { root } = await hierarchy();
    const cert = root.certificate;
    assert.match(cert.subject, /^O=agent-identity-operator, CN=cluster\.local Root CA [0-9a-f]{8}$/);
    assert.equal(cert.issuer, cert.subject);
    assert.ok(await cert.verify({ publicKey: cert.publicKey, signatureOnly: true }), 'self-signed');

    const bc = ext(cert, x509.BasicConstraintsExtension);
    assert.deepEqual([bc.critical, bc.ca, bc.pathLength], [true, true, 1]);
    const ku = ext(cert, x509.KeyUsagesExtension);
    assert.deepEqual([ku.critical, ku.usages], [true, CA_USAGES]);
    const ski = ext(cert, x509.SubjectKeyIdentifierExtension);
    assert.equal(ext(cert, x509.AuthorityKeyIdentifierExtension).keyId, ski.keyId);
    const san = ext(cert, x509.SubjectAlternativeNameExtension);
    assert.equal(san.critical, false, 'subject is not empty, so SAN is not critical');
    assert.deepEqual(san.names.toJSON(), [{ type: 'url', value: 'spiffe://cluster.local' }]);

    assert.equal(cert.notBefore.getTime(), NOW.getTime() - 30_000);
    assert.equal(cert.notAfter.getTime(), NOW.getTime() + 365 * DAY);
    assert.equal(root.chain.length, 1);
    assert.equal(root.root, root.certificate);
  });

  it('gives every generation a distinct subject and serial', async () => {
    const opts = { trustDomain: TD, algorithm: 'ECDSA' as const, validityMs: DAY, now: NOW };
    const [a, b] = await Promise.all([createRoot(opts), createRoot(opts)]);
    const [ca, cb] = [parseCertificates(a.certificatePem)[0]!, parseCertificates(b.certificatePem)[0]!];
    assert.notEqual(ca.subject, cb.subject);
    assert.notEqual(ca.serialNumber, cb.serialNumber);
    assert.match(a.privateKeyPem, startsWithPem('PRIVATE KEY'));
  });

  for (const [algorithm, size, sigAlg] of [
    ['ECDSA', 384, 'ECDSA SHA-384'],
    ['Ed25519', undefined, 'Ed25519'],
  ] as const) {
    it(`supports ${algorithm}${size ? ` ${size}` : ''}, signing with ${sigAlg}`, async () => {
      const pem = await createRoot({ trustDomain: TD, algorithm, ...(size ? { size } : {}), validityMs: DAY, now: NOW });
      const ca = await loadCA(pem.certificatePem, pem.privateKeyPem);
      assert.equal(ca.key.algorithm, algorithm);
      const alg = ca.certificate.signatureAlgorithm as unknown as { name: string; hash?: { name: string } };
      assert.equal([alg.name, alg.hash?.name].filter(Boolean).join(' '), sigAlg);
    });
  }

  it('uses the default key size when none is given', async () => {
    const pem = await createRoot({ trustDomain: TD, algorithm: 'ECDSA', validityMs: DAY, now: NOW });
    assert.equal(describeKey((await loadCA(pem.certificatePem, pem.privateKeyPem)).key), 'ECDSA-256');
  });

  it('keeps the common name within 64 characters for a long trust domain', async () => {
    const td = `${'a'.repeat(100)}.example`;
    const pem = await createRoot({ trustDomain: td, algorithm: 'ECDSA', validityMs: DAY, now: NOW });
    const cn = parseCertificates(pem.certificatePem)[0]!.subjectName.getField('CN')[0]!;
    assert.ok(cn.length <= 64, cn);
    assert.match(cn, /^a+ Root CA [0-9a-f]{8}$/);
  });

  it('rejects an invalid trust domain and a non-positive validity', async () => {
    await rejectsWith(() => createRoot({ trustDomain: 'Not Valid', algorithm: 'ECDSA', validityMs: DAY, now: NOW }), 'InvalidTrustDomain');
    await rejectsWith(() => createRoot({ trustDomain: TD, algorithm: 'ECDSA', validityMs: 0, now: NOW }), 'InvalidValidity');
  });
});

describe('createIntermediate', () => {
  it('is signed by the Root, has pathLen 0, and its PEM excludes the Root', async () => {
    const { root, intermediate } = await hierarchy();
    const cert = intermediate.certificate;
    assert.equal(cert.issuer, root.certificate.subject);
    assert.match(cert.subject, /^O=agent-identity-operator, CN=cluster\.local Intermediate CA [0-9a-f]{8}$/);
    assert.ok(await cert.verify({ publicKey: root.certificate.publicKey, signatureOnly: true }));
    const bc = ext(cert, x509.BasicConstraintsExtension);
    assert.deepEqual([bc.critical, bc.ca, bc.pathLength], [true, true, 0]);
    assert.deepEqual([ext(cert, x509.KeyUsagesExtension).critical, ext(cert, x509.KeyUsagesExtension).usages], [true, CA_USAGES]);
    assert.equal(ext(cert, x509.AuthorityKeyIdentifierExtension).keyId, ext(root.certificate, x509.SubjectKeyIdentifierExtension).keyId);
    assert.deepEqual(intermediate.chain.map((c) => c.serialNumber), [cert.serialNumber]);
    assert.equal(intermediate.root, undefined);
    assert.equal(cert.notAfter.getTime(), NOW.getTime() + 90 * DAY);
  });

  it('never outlives the Root', async () => {
    const { root } = await hierarchy();
    const pem = await createIntermediate(root, { trustDomain: TD, algorithm: 'ECDSA', validityMs: 10 * 365 * DAY, now: NOW });
    assert.equal(parseCertificates(pem.certificatePem)[0]!.notAfter.getTime(), root.certificate.notAfter.getTime());
  });

  it('refuses when the Root has expired, or when the issuer allows no intermediate', async () => {
    const { root, intermediate } = await hierarchy();
    const later = new Date(root.certificate.notAfter.getTime() + 1000);
    await rejectsWith(() => createIntermediate(root, { trustDomain: TD, algorithm: 'ECDSA', validityMs: DAY, now: later }), 'CAExpired');
    await rejectsWith(() => createIntermediate(intermediate, { trustDomain: TD, algorithm: 'ECDSA', validityMs: DAY, now: NOW }), 'CANotUsable', /path length/);
  });
});

describe('loadCA', () => {
  it('drops a trailing Root from the chain but remembers it', async () => {
    const { root, intermediate } = await hierarchy();
    const pem = certificatesToPem([intermediate.certificate, root.certificate]);
    const ca = await loadCA(pem, await privateKeyToPem(intermediate.key));
    assert.deepEqual(ca.chain.map((c) => c.subject), [intermediate.certificate.subject]);
    assert.equal(ca.root?.subject, root.certificate.subject);
  });

  it('refuses a certificate that is not a CA', async () => {
    const { intermediate } = await hierarchy();
    const { leaf, key } = await leafFrom(intermediate);
    await rejectsWith(async () => loadCA(certificatesToPem([leaf]), await privateKeyToPem(key)), 'CANotUsable', /not a CA/);
  });

  it('refuses a CA without keyCertSign', async () => {
    const key = await generateKeyPair('ECDSA', 256);
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      name: 'CN=no-keyCertSign',
      keys: { privateKey: key.privateKey, publicKey: key.publicKey },
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)],
    });
    await rejectsWith(async () => loadCA(certificatesToPem([cert]), await privateKeyToPem(key)), 'CANotUsable', /keyCertSign/);
  });

  it('refuses a key that does not match, without mentioning the key', async () => {
    const { root, intermediate } = await hierarchy();
    const err = await loadCA(certificatesToPem([root.certificate]), await privateKeyToPem(intermediate.key)).catch((e: unknown) => e);
    assert.ok(err instanceof PkiError);
    assert.equal(err.reason, 'CANotUsable');
    assert.match(err.message, /does not match/);
    assert.doesNotMatch(err.message, /PRIVATE KEY/);
  });

  it('refuses a chain in the wrong order', async () => {
    const { root, intermediate } = await hierarchy();
    const other: CA = await (async () => {
      const pem = await createRoot({ trustDomain: TD, algorithm: 'ECDSA', validityMs: DAY, now: NOW });
      return loadCA(pem.certificatePem, pem.privateKeyPem);
    })();
    // intermediate followed by an unrelated intermediate-shaped certificate
    const stranger = parseCertificates(
      (await createIntermediate(other, { trustDomain: TD, algorithm: 'ECDSA', validityMs: DAY, now: NOW })).certificatePem,
    )[0]!;
    await rejectsWith(
      async () => loadCA(certificatesToPem([intermediate.certificate, stranger, root.certificate]), await privateKeyToPem(intermediate.key)),
      'CANotUsable',
      /out of order/,
    );
  });
});
