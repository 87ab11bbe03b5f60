import assert from 'node:assert/strict';
import { X509Certificate as NodeX509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { type CA, createRoot, loadCA } from '../../../src/pki/ca.ts';
import { subtle, x509 } from '../../../src/pki/crypto.ts';
import { PkiError } from '../../../src/pki/errors.ts';
import { generateKeyPair } from '../../../src/pki/keys.ts';
import { issueLeaf } from '../../../src/pki/leaf.ts';
import { parseCertificates } from '../../../src/pki/parse.ts';
import { agentID, DAY, HOUR, hierarchy, leafFrom, NOW, serialIntegerBytes, TD } from './fixtures.ts';

const OID = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  subjectAltName: '2.5.29.17',
};

const ext = <T extends x509.Extension>(cert: x509.X509Certificate, type: new (raw: ArrayBuffer) => T): T => {
  const found = cert.getExtension(type);
  assert.ok(found, `missing ${type.name}`);
  return found;
};

async function rejectsWith(fn: () => Promise<unknown>, reason: string) {
  await assert.rejects(fn, (err: unknown) => err instanceof PkiError && err.reason === reason);
}

async function rootCA(algorithm: 'ECDSA' | 'RSA' | 'Ed25519', size?: number, validityMs = 365 * DAY): Promise<CA> {
  const pem = await createRoot({ trustDomain: TD, algorithm, ...(size ? { size } : {}), validityMs, now: NOW });
  return loadCA(pem.certificatePem, pem.privateKeyPem);
}

describe('issueLeaf: the X.509-SVID profile', () => {
  it('has exactly the specified extensions, criticality and values', async () => {
    const { intermediate } = await hierarchy();
    const { leaf, issued } = await leafFrom(intermediate, { dnsNames: ['planner.agents.svc', 'planner', 'planner.agents.svc'] });

    assert.deepEqual([...leaf.extensions].map((e) => e.type).sort(), Object.values(OID).sort(), 'no other extensions');
    assert.equal(leaf.subject, '', 'empty subject');
    assert.deepEqual(new Uint8Array(leaf.subjectName.toArrayBuffer()), new Uint8Array([0x30, 0x00]));
    assert.equal(leaf.issuer, intermediate.certificate.subject);

    const bc = ext(leaf, x509.BasicConstraintsExtension);
    assert.deepEqual([bc.critical, bc.ca, bc.pathLength], [true, false, undefined]);

    const ku = ext(leaf, x509.KeyUsagesExtension);
    assert.equal(ku.critical, true);
    assert.equal(ku.usages, x509.KeyUsageFlags.digitalSignature, 'ECDSA leaf: digitalSignature only');

    const eku = ext(leaf, x509.ExtendedKeyUsageExtension);
    assert.equal(eku.critical, false);
    assert.deepEqual([...eku.usages], [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]);

    const san = ext(leaf, x509.SubjectAlternativeNameExtension);
    assert.equal(san.critical, true, 'empty subject makes SAN critical (RFC 5280 4.2.1.6)');
    const names = san.names.toJSON();
    assert.deepEqual(names.filter((n) => n.type === 'url'), [{ type: 'url', value: agentID.toString() }], 'exactly one URI SAN');
    assert.deepEqual(names.filter((n) => n.type === 'dns').map((n) => n.value), ['planner.agents.svc', 'planner'], 'DNS SANs, deduplicated');
    assert.equal(names.length, 3);

    const ski = ext(leaf, x509.SubjectKeyIdentifierExtension);
    assert.equal(ski.critical, false);
    const aki = ext(leaf, x509.AuthorityKeyIdentifierExtension);
    assert.equal(aki.keyId, ext(intermediate.certificate, x509.SubjectKeyIdentifierExtension).keyId, "AKI is the issuer's SKI");
    assert.notEqual(ski.keyId, aki.keyId);

    assert.equal(issued.serialNumber, leaf.serialNumber.toLowerCase());
    assert.ok(await leaf.verify({ publicKey: intermediate.certificate.publicKey, signatureOnly: true }));
  });

  it("names a CA without a SubjectKeyIdentifier by the SHA-1 of its public key (RFC 5280 4.2.1.2)", async () => {
    const keys = await generateKeyPair('ECDSA', 256);
    const caCert = await x509.X509CertificateGenerator.createSelfSigned({
      name: 'CN=brought without SKI', keys, notBefore: new Date(NOW.getTime() - DAY), notAfter: new Date(NOW.getTime() + 30 * DAY),
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
    });
    const ca: CA = { certificate: caCert, key: keys, chain: [caCert] };
    const { leaf } = await leafFrom(ca);
    const expected = await x509.SubjectKeyIdentifierExtension.create(keys.publicKey);
    assert.equal(ext(leaf, x509.AuthorityKeyIdentifierExtension).keyId, expected.keyId);
    assert.ok(await leaf.verify({ publicKey: caCert.publicKey, signatureOnly: true }));
  });

  it('uses a positive serial number of at least 64 bits, different every time', async () => {
    const { intermediate } = await hierarchy();
    const serials = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const { leaf, issued } = await leafFrom(intermediate);
      const raw = serialIntegerBytes(leaf.rawData);
      assert.equal(raw[0]! & 0x80, 0, 'DER INTEGER is positive');
      const magnitude = BigInt(`0x${Buffer.from(raw).toString('hex')}`);
      assert.ok(magnitude > 0n);
      assert.ok(magnitude.toString(2).length >= 64, `serial has ${magnitude.toString(2).length} bits`);
      assert.ok(raw.length <= 20, 'RFC 5280 caps serials at 20 octets');
      assert.match(issued.serialNumber, /^[1-9a-f][0-9a-f]*$/, 'lowercase hex without leading zeros');
      serials.add(issued.serialNumber);
    }
    assert.equal(serials.size, 5);
  });

  it('adds keyEncipherment only for an RSA leaf key', async () => {
    const { intermediate } = await hierarchy();
    const rsa = await generateKeyPair('RSA', 2048);
    const { leaf } = await leafFrom(intermediate, {}, rsa);
    assert.equal(ext(leaf, x509.KeyUsagesExtension).usages, x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment);
    const { leaf: edLeaf } = await leafFrom(intermediate, {}, await generateKeyPair('Ed25519', 0));
    assert.equal(ext(edLeaf, x509.KeyUsagesExtension).usages, x509.KeyUsageFlags.digitalSignature);
  });

  it('returns the Leaf followed by the CA chain', async () => {
    const { intermediate } = await hierarchy();
    const { certs, leaf } = await leafFrom(intermediate);
    assert.equal(certs.length, 2);
    assert.equal(certs[1]!.serialNumber, intermediate.certificate.serialNumber);
    // node:crypto reads it too, and agrees on who issued it.
    assert.ok(new NodeX509Certificate(Buffer.from(leaf.rawData)).checkIssued(new NodeX509Certificate(Buffer.from(certs[1]!.rawData))));
  });

  it('never sends the root: a leaf signed by a root carries no chain', async () => {
    const ca = await rootCA('ECDSA', 256);
    const { certs } = await leafFrom(ca);
    assert.equal(certs.length, 1);
  });

  for (const [algorithm, size, expected] of [
    ['ECDSA', 384, 'ECDSA SHA-384'],
    ['RSA', 2048, 'RSASSA-PKCS1-v1_5 SHA-256'],
    ['Ed25519', undefined, 'Ed25519'],
  ] as const) {
    it(`signs with the CA key's algorithm: ${algorithm}${size ? `-${size}` : ''} → ${expected}`, async () => {
      const ca = await rootCA(algorithm, size);
      const { leaf } = await leafFrom(ca);
      const alg = leaf.signatureAlgorithm as unknown as { name: string; hash?: { name: string } };
      assert.equal([alg.name, alg.hash?.name].filter(Boolean).join(' '), expected);
      assert.ok(await leaf.verify({ publicKey: ca.certificate.publicKey, signatureOnly: true }));
    });
  }
});

describe('issueLeaf: validity window', () => {
  it('backdates notBefore by 30 s and ends at now + duration', async () => {
    const { intermediate } = await hierarchy();
    const { leaf, issued } = await leafFrom(intermediate, { durationMs: DAY });
    assert.equal(leaf.notBefore.getTime(), NOW.getTime() - 30_000);
    assert.equal(leaf.notAfter.getTime(), NOW.getTime() + DAY);
    assert.deepEqual([issued.notBefore, issued.notAfter], [leaf.notBefore, leaf.notAfter]);
  });

  it('honours a custom backdate and rounds to whole seconds like X.509 does', async () => {
    const { intermediate } = await hierarchy();
    const now = new Date(NOW.getTime() + 1_750);
    const { issued } = await leafFrom(intermediate, { now, backdateMs: 0, durationMs: HOUR });
    assert.equal(issued.notBefore.getTime(), NOW.getTime() + 1_000);
    assert.equal(issued.notAfter.getTime(), NOW.getTime() + HOUR + 1_000);
  });

  it("clamps notAfter to the CA's notAfter", async () => {
    const { intermediate } = await hierarchy();
    const { issued } = await leafFrom(intermediate, { durationMs: 1000 * DAY });
    assert.equal(issued.notAfter.getTime(), intermediate.certificate.notAfter.getTime());
  });

  it('clamps notAfter to the earliest notAfter anywhere in the chain', async () => {
    const { intermediate } = await hierarchy();
    const shortLived = await rootCA('ECDSA', 256, 2 * DAY);
    const ca: CA = { ...intermediate, chain: [intermediate.certificate, shortLived.certificate] };
    const { issued } = await leafFrom(ca, { durationMs: 30 * DAY });
    assert.equal(issued.notAfter.getTime(), shortLived.certificate.notAfter.getTime());
  });

  it('refuses to issue from an expired CA, or for a non-positive duration', async () => {
    const { intermediate } = await hierarchy();
    await rejectsWith(() => leafFrom(intermediate, { now: new Date(intermediate.certificate.notAfter.getTime() + 1) }), 'CAExpired');
    await rejectsWith(() => leafFrom(intermediate, { durationMs: 0 }), 'InvalidValidity');
    await rejectsWith(() => leafFrom(intermediate, { backdateMs: -1 }), 'InvalidValidity');
  });
});

describe('issueLeaf: request checks', () => {
  it('rejects invalid DNS names', async () => {
    const { intermediate } = await hierarchy();
    for (const bad of ['', 'under_score.svc', '-lead.svc', 'a..b', 'space .svc', `${'a'.repeat(64)}.svc`, 'x.*.svc']) {
      await rejectsWith(() => leafFrom(intermediate, { dnsNames: [bad] }), 'InvalidDNSName');
    }
  });

  it('accepts a leading wildcard label', async () => {
    const { intermediate } = await hierarchy();
    const { leaf } = await leafFrom(intermediate, { dnsNames: ['*.agents.svc'] });
    assert.deepEqual(parseCertificates(leaf.toString('pem'))[0]!.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON()[1], {
      type: 'dns',
      value: '*.agents.svc',
    });
  });

  it('rejects a leaf key too weak to certify', async () => {
    const { intermediate } = await hierarchy();
    const weak = await subtle.generateKey(
      { name: 'RSASSA-PKCS1-v1_5', modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
      true,
      ['sign', 'verify'],
    );
    await rejectsWith(
      () => issueLeaf(intermediate, { spiffeID: agentID, dnsNames: [], publicKey: weak.publicKey, durationMs: DAY, now: NOW }),
      'KeyUnsupported',
    );
  });

  it('refuses a private key where the public key belongs', async () => {
    const { intermediate } = await hierarchy();
    const key = await generateKeyPair('ECDSA', 256);
    await rejectsWith(
      () => issueLeaf(intermediate, { spiffeID: agentID, dnsNames: [], publicKey: key.privateKey, durationMs: DAY, now: NOW }),
      'KeyUnsupported',
    );
  });
});
