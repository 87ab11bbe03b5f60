// The DER Leaf builder against the @peculiar/x509 builder it replaced: the
// same request gives the same certificate, byte for byte, except the random
// serial number (compared by form) and the ECDSA signature (random, so verified).
import assert from 'node:assert/strict';
import { createECDH, createPublicKey, X509Certificate as NodeX509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { type CA, createRoot, loadCA } from '../../../src/pki/ca.ts';
import { parseCertificateRequest } from '../../../src/pki/csr.ts';
import * as der from '../../../src/pki/der.ts';
import { generateKeyPair, publicCryptoKey } from '../../../src/pki/keys.ts';
import { issueLeaf, issueServingLeaf, type LeafRequest, type ServingLeafRequest } from '../../../src/pki/leaf.ts';
import { certificateBlocks } from '../../../src/pki/pem.ts';
import { SpiffeID } from '../../../src/pki/spiffeid.ts';
import { certificatePem } from '../../../src/pki/tbs.ts';
import { agentID, DAY, hierarchy, NOW, stubRequest, TD } from './fixtures.ts';
import * as legacy from './legacy-leaf.ts';

async function rootCA(algorithm: 'ECDSA' | 'RSA' | 'Ed25519', size: number | undefined, now = NOW, validityMs = 365 * DAY): Promise<CA> {
  const pem = await createRoot({ trustDomain: TD, algorithm, ...(size ? { size } : {}), validityMs, now });
  return loadCA(pem.certificatePem, pem.privateKeyPem);
}

/** The Certificate's three parts, with the TBSCertificate's serialNumber cut out. */
function parts(leafDer: Uint8Array) {
  const [tbs, algorithm, signature] = der.elementsOf(leafDer);
  const fields = der.elementsOf(tbs!);
  return { tbsWithoutSerial: Buffer.concat([fields[0]!, ...fields.slice(2)]), serial: fields[1]!, algorithm: algorithm!, signature: signature! };
}

function assertSameLeaf(ours: string, theirs: string, ca: CA) {
  const [a, ...chainA] = certificateBlocks(ours) as Uint8Array[];
  const [b, ...chainB] = certificateBlocks(theirs) as Uint8Array[];
  assert.deepEqual(chainA, chainB, 'the same chain follows the Leaf');
  const [pa, pb] = [parts(a!), parts(b!)];
  assert.equal(pa.tbsWithoutSerial.toString('hex'), pb.tbsWithoutSerial.toString('hex'), 'TBSCertificate');
  assert.deepEqual(pa.algorithm, pb.algorithm, 'signatureAlgorithm');
  assert.equal(pa.serial.length, pb.serial.length, 'serial number length');
  assert.equal(certificatePem(Buffer.from(b!)), theirs.slice(0, certificatePem(Buffer.from(b!)).length), 'PEM framing');
  assert.ok(new NodeX509Certificate(Buffer.from(a!)).verify(new NodeX509Certificate(Buffer.from(ca.certificate.rawData)).publicKey), 'signature verifies');
}

async function compareLeaf(ca: CA, req: LeafRequest) {
  const [ours, theirs] = [await issueLeaf(ca, req), await legacy.issueLeaf(ca, req)];
  assertSameLeaf(ours.certificatePem, theirs.certificatePem, ca);
  assert.deepEqual([ours.notBefore, ours.notAfter], [theirs.notBefore, theirs.notAfter]);
  assert.match(ours.serialNumber, /^[89a-f][0-9a-f]{31}$/);
}

const longID = SpiffeID.parse(`spiffe://${TD}/ns/${'n'.repeat(63)}/agent/${'a'.repeat(63)}`);
const manyNames = Array.from({ length: 12 }, (_, i) => `agent-${i}.a-rather-long-namespace-name.svc.cluster.local`);

describe('the DER Leaf builder is byte-compatible with the @peculiar/x509 one', () => {
  const leafKeys = [['ECDSA', 256], ['ECDSA', 384], ['RSA', 2048], ['Ed25519', 0]] as const;
  const issuers: Array<[string, () => Promise<CA>]> = [
    ['ECDSA P-256 Intermediate', async () => (await hierarchy()).intermediate],
    ['ECDSA P-384 Root', () => rootCA('ECDSA', 384)],
    ['RSA-2048 Root', () => rootCA('RSA', 2048)],
    ['Ed25519 Root', () => rootCA('Ed25519', undefined)],
  ];
  for (const [label, makeCA] of issuers) {
    it(`Secret Leaves from a ${label}, for every key type, with and without DNS names`, async () => {
      const ca = await makeCA();
      for (const [algorithm, size] of leafKeys) {
        const key = await generateKeyPair(algorithm, size);
        for (const [spiffeID, dnsNames] of [[agentID, []], [agentID, ['planner.agents.svc', 'planner', 'planner.agents.svc']], [longID, manyNames], [agentID, ['*.agents.svc']]] as const) {
          await compareLeaf(ca, { spiffeID, dnsNames: [...dnsNames], publicKey: key.publicKey, durationMs: DAY, now: NOW });
        }
      }
    });
  }

  it('pod-certificate Leaves for the public key of a kubelet request', async () => {
    const { intermediate } = await hierarchy();
    for (const alg of [{ name: 'ECDSA', namedCurve: 'P-256' }, { name: 'ECDSA', namedCurve: 'P-384' }, { name: 'Ed25519' }]) {
      const { der } = await stubRequest(alg, alg.name === 'ECDSA' ? 'SHA-256' : '');
      const parsed = await parseCertificateRequest(der);
      assert.ok(parsed.ok && parsed.publicKey);
      await compareLeaf(intermediate, { spiffeID: agentID, dnsNames: ['planner.agents.svc'], publicKey: parsed.publicKey, durationMs: DAY / 2, now: NOW, backdateMs: 0 });
    }
  });

  it('GeneralizedTime from 2050, UTCTime before, and a window clamped by the CA', async () => {
    const now = new Date('2049-12-31T23:00:00.000Z');
    const ca = await rootCA('ECDSA', 256, now, 10 * DAY);
    const key = await generateKeyPair('ECDSA', 256);
    for (const durationMs of [1000, DAY, 30 * DAY]) await compareLeaf(ca, { spiffeID: agentID, dnsNames: [], publicKey: key.publicKey, durationMs, now });
  });

  it('serving Leaves: a commonName, DNS and IP SANs, serverAuth only', async () => {
    const ca = await rootCA('ECDSA', 256);
    const key = await generateKeyPair('ECDSA', 256);
    const requests: ServingLeafRequest[] = [
      { commonName: 'agent-identity-operator-webhook.system.svc', dnsNames: ['agent-identity-operator-webhook.system.svc', 'x.svc.cluster.local'], ipAddresses: ['127.0.0.1', '::1', 'fd00::1:2'], publicKey: key.publicKey, durationMs: 30 * DAY, now: NOW },
      { commonName: '*.wild.svc', dnsNames: ['*.wild.svc'], ipAddresses: [], publicKey: key.publicKey, durationMs: DAY, now: NOW },
      { commonName: '10.0.0.1', dnsNames: [], ipAddresses: ['10.0.0.1'], publicKey: key.publicKey, durationMs: DAY, now: NOW },
    ];
    for (const req of requests) {
      const [ours, theirs] = [await issueServingLeaf(ca, req), await legacy.issueServingLeaf(ca, req)];
      assertSameLeaf(ours.certificatePem, theirs.certificatePem, ca);
    }
  });

  it('a leaf key whose SPKI carries a compressed EC point', async () => {
    const { intermediate } = await hierarchy();
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const ecPublicKey = der.sequence(der.oid('1.2.840.10045.2.1'), der.oid('1.2.840.10045.3.1.7'));
    const spki = der.sequence(ecPublicKey, der.bitString(ecdh.getPublicKey(undefined, 'compressed')));
    const publicKey = publicCryptoKey(createPublicKey({ key: spki, format: 'der', type: 'spki' }));
    await compareLeaf(intermediate, { spiffeID: agentID, dnsNames: [], publicKey, durationMs: DAY, now: NOW });
  });
});
