// The DER Leaf builder against what the @peculiar/x509 builder it replaced
// wrote for the same requests (leaf-der.fixtures.json, recorded from that
// builder, which commit "pki: build the Leaf's TBSCertificate with a lean DER
// writer" compared live): byte for byte, except the random serial number
// (checked by form). Only CA certificates are stored, no private keys: each CA
// signs with a fresh key of its type, which changes nothing in the
// TBSCertificate; signatures are checked in leaf.test.ts.
import assert from 'node:assert/strict';
import { createPublicKey, X509Certificate as NodeX509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { CA } from '../../../src/pki/ca.ts';
import { type CryptoKey, x509 } from '../../../src/pki/crypto.ts';
import { parseCertificateRequest } from '../../../src/pki/csr.ts';
import * as der from '../../../src/pki/der.ts';
import { describeKeyObject, generateKeyPair, publicCryptoKey, publicKeyObjectOf } from '../../../src/pki/keys.ts';
import { issueLeaf, issueServingLeaf } from '../../../src/pki/leaf.ts';
import { certificateBlocks } from '../../../src/pki/pem.ts';
import { parseCertificates } from '../../../src/pki/parse.ts';
import { SpiffeID } from '../../../src/pki/spiffeid.ts';

interface Fixtures {
  cas: Record<string, string>;
  keys: Record<string, string>;
  csrs: Record<string, string>;
  cases: Array<{
    name: string;
    ca: string;
    key?: string;
    csr?: string;
    leaf?: { spiffeID: string; dnsNames: string[]; durationMs: number; now: string; backdateMs?: number };
    serving?: { commonName: string; dnsNames: string[]; ipAddresses: string[]; durationMs: number; now: string };
    expected: { tbsWithoutSerial: string; signatureAlgorithm: string; chain: string[] };
  }>;
}

const fixtures = JSON.parse(readFileSync(new URL('./leaf-der.fixtures.json', import.meta.url), 'utf8')) as Fixtures;

async function caFrom(certificatePem: string): Promise<CA> {
  const certificate = parseCertificates(certificatePem)[0]!;
  const { algorithm, size } = describeKeyObject(publicKeyObjectOf(certificate));
  return { certificate, key: await generateKeyPair(algorithm, size), chain: [certificate] };
}

async function leafKey(c: Fixtures['cases'][number]): Promise<CryptoKey> {
  if (c.key) return publicCryptoKey(createPublicKey(fixtures.keys[c.key]!));
  const parsed = await parseCertificateRequest(fixtures.csrs[c.csr!]!);
  assert.ok(parsed.ok && parsed.publicKey);
  return parsed.publicKey;
}

describe('the DER Leaf builder writes what the @peculiar/x509 builder wrote', () => {
  const cas = new Map<string, Promise<CA>>();
  for (const c of fixtures.cases) {
    it(c.name, async () => {
      const ca = await (cas.get(c.ca) ?? cas.set(c.ca, caFrom(fixtures.cas[c.ca]!)).get(c.ca)!);
      const publicKey = await leafKey(c);
      const issued = c.leaf
        ? await issueLeaf(ca, { ...c.leaf, spiffeID: SpiffeID.parse(c.leaf.spiffeID), now: new Date(c.leaf.now), publicKey })
        : await issueServingLeaf(ca, { ...c.serving!, now: new Date(c.serving!.now), publicKey });

      const [leaf, ...chain] = certificateBlocks(issued.certificatePem) as Uint8Array[];
      assert.deepEqual(chain.map((b) => Buffer.from(b).toString('base64')), c.expected.chain, 'the chain after the Leaf');
      const [tbs, signatureAlgorithm] = der.elementsOf(leaf!);
      const fields = der.elementsOf(tbs!);
      assert.equal(Buffer.concat([fields[0]!, ...fields.slice(2)]).toString('hex'), c.expected.tbsWithoutSerial, 'TBSCertificate');
      assert.equal(signatureAlgorithm!.toString('hex'), c.expected.signatureAlgorithm, 'signatureAlgorithm');
      assert.equal(der.contentsOf(fields[1]!).toString('hex'), `00${issued.serialNumber}`, 'serial: 16 random octets, top bit set, 00 to keep it positive');
      assert.match(issued.serialNumber, /^[89a-f][0-9a-f]{31}$/);
      // Both parsers read it, and agree with what issueLeaf returned.
      const parsed = new x509.X509Certificate(leaf!);
      assert.ok(await parsed.verify({ publicKey: ca.key.publicKey, signatureOnly: true }), 'signed over these TBS bytes by the CA key');
      assert.deepEqual([parsed.notBefore, parsed.notAfter], [issued.notBefore, issued.notAfter]);
      assert.equal(new NodeX509Certificate(Buffer.from(leaf!)).serialNumber.toLowerCase(), issued.serialNumber);
    });
  }
});
