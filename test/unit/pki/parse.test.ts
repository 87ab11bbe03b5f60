import assert from 'node:assert/strict';
import { X509Certificate as NodeX509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { PkiError } from '../../../src/pki/errors.ts';
import { generateKeyPair, privateKeyToPem } from '../../../src/pki/keys.ts';
import { describeCertificate, fingerprintOf, parseCertificates } from '../../../src/pki/parse.ts';
import { certificatesToPem } from '../../../src/pki/pem.ts';
import { DAY, hierarchy, leafFrom, NOW } from './fixtures.ts';

function assertUnparsable(pem: string, message: RegExp) {
  assert.throws(
    () => parseCertificates(pem),
    (err: unknown) => err instanceof PkiError && err.reason === 'CertificateUnparsable' && message.test(err.message),
  );
}

describe('parseCertificates', () => {
  it('reads every CERTIFICATE block in order, ignoring other blocks and text', async () => {
    const { root, intermediate } = await hierarchy();
    const pem = `# bundle\n${certificatesToPem([intermediate.certificate])}\n${await privateKeyToPem(intermediate.key)}${certificatesToPem([root.certificate])}`;
    assert.deepEqual(
      parseCertificates(pem).map((c) => c.serialNumber),
      [intermediate.certificate.serialNumber, root.certificate.serialNumber],
    );
  });

  it('accepts CRLF line endings', async () => {
    const { root } = await hierarchy();
    assert.equal(parseCertificates(certificatesToPem([root.certificate]).replaceAll('\n', '\r\n')).length, 1);
  });

  it('rejects input without certificates', () => {
    assertUnparsable('', /no PEM CERTIFICATE block/);
    assertUnparsable('hello', /no PEM CERTIFICATE block/);
    assertUnparsable(undefined as unknown as string, /no PEM CERTIFICATE block/);
  });

  it('rejects a corrupt block, saying which one, without quoting it', async () => {
    const { root } = await hierarchy();
    const good = certificatesToPem([root.certificate]);
    const garbage = '-----BEGIN CERTIFICATE-----\nTUlJQm9ndXM=\n-----END CERTIFICATE-----\n';
    assertUnparsable(good + garbage, /^certificate 2 of 2 could not be parsed$/);
    assertUnparsable('-----BEGIN CERTIFICATE-----\n%%%%\n-----END CERTIFICATE-----\n', /^certificate 1 of 1 could not be parsed$/);
  });
});

describe('describeCertificate', () => {
  it('summarises a Leaf', async () => {
    const { intermediate } = await hierarchy();
    const { leaf, issued } = await leafFrom(intermediate, { dnsNames: ['planner.agents.svc'] });
    const info = await describeCertificate(leaf);
    const node = new NodeX509Certificate(Buffer.from(leaf.rawData));
    assert.deepEqual(info, {
      serialNumber: node.serialNumber.toLowerCase().replace(/^(00)+/, ''),
      notBefore: new Date(NOW.getTime() - 30_000),
      notAfter: new Date(NOW.getTime() + DAY),
      subject: '',
      issuer: intermediate.certificate.subject,
      isCA: false,
      uris: ['spiffe://cluster.local/ns/agents/agent/planner'],
      dnsNames: ['planner.agents.svc'],
      spiffeID: 'spiffe://cluster.local/ns/agents/agent/planner',
      keyAlgorithm: 'ECDSA',
      keySize: 256,
      fingerprint: `sha256:${node.fingerprint256.replaceAll(':', '').toLowerCase()}`,
    });
    assert.equal(info.serialNumber, issued.serialNumber);
    assert.match(info.serialNumber, /^[0-9a-f]{32}$/);
  });

  it('summarises a Root, whose SPIFFE ID is the trust domain', async () => {
    const { root } = await hierarchy();
    const info = await describeCertificate(root.certificate);
    assert.equal(info.isCA, true);
    assert.equal(info.spiffeID, 'spiffe://cluster.local');
    assert.deepEqual(info.dnsNames, []);
    assert.equal(info.fingerprint, await fingerprintOf(root.certificate));
  });

  it('reports RSA and Ed25519 key sizes', async () => {
    const { intermediate } = await hierarchy();
    const rsa = await describeCertificate((await leafFrom(intermediate, {}, await generateKeyPair('RSA', 2048))).leaf);
    assert.deepEqual([rsa.keyAlgorithm, rsa.keySize], ['RSA', 2048]);
    const ed = await describeCertificate((await leafFrom(intermediate, {}, await generateKeyPair('Ed25519', 0))).leaf);
    assert.deepEqual([ed.keyAlgorithm, ed.keySize], ['Ed25519', 0]);
  });
});

describe('parseCertificates keeps what it parsed', () => {
  it('returns the same certificate object for the same bytes, however the PEM is wrapped, and forgets the least recently used past 64', async () => {
    const { intermediate } = await hierarchy();
    const { issued } = await leafFrom(intermediate);
    const first = parseCertificates(issued.certificatePem)[0]!;
    const rewrapped = issued.certificatePem.replace(/\n(?!-----)/g, '\r\n');
    assert.notEqual(rewrapped, issued.certificatePem);
    assert.equal(parseCertificates(rewrapped)[0], first, 'same DER, same object: decoded once');
    // 64 other certificates push it out; one more look parses it again.
    for (let i = 0; i < 64; i++) parseCertificates((await leafFrom(intermediate)).issued.certificatePem);
    const again = parseCertificates(issued.certificatePem)[0]!;
    assert.notEqual(again, first, 'evicted after 64 others');
    assert.equal(Buffer.compare(Buffer.from(again.rawData), Buffer.from(first.rawData)), 0);
  });
});
