// certificateFields reads issuer, subject, SANs, BasicConstraints and
// KeyUsage from the DER of certificates OpenSSL parsed: it must say what
// @peculiar/x509's full parse says, for every kind of certificate we issue,
// and refuse what RFC 5280 forbids and OpenSSL lets through.
import assert from 'node:assert/strict';
import { X509Certificate as NodeX509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { certificateFields } from '../../../src/pki/certificate-fields.ts';
import { x509, type X509Certificate } from '../../../src/pki/index.ts';
import * as der from '../../../src/pki/der.ts';
import { generateKeyPair } from '../../../src/pki/keys.ts';
import { issueServingLeaf } from '../../../src/pki/leaf.ts';
import { parseCertificates, sanValues } from '../../../src/pki/parse.ts';
import { SpiffeID } from '../../../src/pki/spiffeid.ts';
import { DAY, NOW, hierarchy, leafFrom } from './fixtures.ts';

const fixtures = JSON.parse(readFileSync(new URL('./leaf-der.fixtures.json', import.meta.url), 'utf8')) as { cas: Record<string, string> };

function asPeculiarSays(cert: X509Certificate) {
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  return {
    issuer: Buffer.from(cert.issuerName.toArrayBuffer()), subject: Buffer.from(cert.subjectName.toArrayBuffer()),
    uris: sanValues(cert, 'url'), dnsNames: sanValues(cert, 'dns'), ca: bc?.ca === true,
    ...(bc?.pathLength !== undefined ? { pathLength: bc.pathLength } : {}),
    ...(ku ? { keyCertSign: (ku.usages & x509.KeyUsageFlags.keyCertSign) !== 0 } : {}),
  };
}

const fieldsOf = (cert: X509Certificate) => certificateFields(new NodeX509Certificate(Buffer.from(cert.rawData)));

test('every recorded CA: the same fields as the full parse', () => {
  for (const [name, pem] of Object.entries(fixtures.cas)) {
    for (const cert of parseCertificates(pem)) assert.deepEqual(fieldsOf(cert), asPeculiarSays(cert), name);
  }
});

test('Leaves: SPIFFE ID and DNS names in order, many of them (multi-byte lengths), and a serving Leaf with IP SANs', async () => {
  const { root, intermediate } = await hierarchy();
  const dnsNames = Array.from({ length: 40 }, (_, i) => `host-${i}.agents.svc.cluster.local`);
  const { leaf } = await leafFrom(intermediate, { dnsNames, spiffeID: SpiffeID.parse(`spiffe://cluster.local/ns/agents/agent/${'x'.repeat(200)}`) });
  const fields = fieldsOf(leaf);
  assert.deepEqual(fields, asPeculiarSays(leaf));
  assert.deepEqual(fields.dnsNames, dnsNames);
  assert.equal(fields.ca, false);
  const serving = await issueServingLeaf(root, { commonName: 'svc', dnsNames: ['a.svc'], ipAddresses: ['10.0.0.1'], publicKey: (await generateKeyPair('ECDSA', 256)).publicKey, durationMs: DAY, now: NOW });
  const parsed = parseCertificates(serving.certificatePem)[0]!;
  assert.deepEqual(fieldsOf(parsed), asPeculiarSays(parsed));
  assert.deepEqual(fieldsOf(parsed).dnsNames, ['a.svc']);
});

test('a certificate with its SubjectAltName twice is refused, though OpenSSL parses it (and shows only the first)', async () => {
  const { intermediate } = await hierarchy();
  const { leaf } = await leafFrom(intermediate);
  const [tbs, algorithm, signature] = der.elementsOf(Buffer.from(leaf.rawData));
  const parts = der.elementsOf(tbs!);
  const at = parts.findIndex((p) => p[0] === 0xa3);
  const extensions = der.elementsOf(der.elementsOf(parts[at]!)[0]!);
  const san = extensions.find((e) => der.elementsOf(e)[0]!.equals(der.oid('2.5.29.17')))!;
  const otherSan = der.sequence(der.oid('2.5.29.17'), der.tlv(0x04, der.sequence(der.tlv(0x86, Buffer.from('spiffe://cluster.local/ns/agents/agent/admin')))));
  parts[at] = der.tlv(0xa3, der.sequence(...extensions.filter((e) => e !== san), san, otherSan));
  const forged = new NodeX509Certificate(der.sequence(der.sequence(...parts), algorithm!, signature!));
  assert.match(forged.subjectAltName ?? '', /planner/);
  assert.throws(() => certificateFields(forged), /duplicate extension/);
});
