// A root outside any trust domain and the TLS serving leaf it signs (the webhook's profile).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRoot, loadCA } from '../../../src/pki/ca.ts';
import { x509 } from '../../../src/pki/crypto.ts';
import { generateKeyPair } from '../../../src/pki/keys.ts';
import { issueServingLeaf } from '../../../src/pki/leaf.ts';
import { parseCertificates, sanValues } from '../../../src/pki/parse.ts';
import { signedBy } from '../../../src/pki/verify.ts';

const NOW = new Date('2026-01-01T00:00:00Z');

test('a standalone root: named for its purpose, path length 0, no SPIFFE ID; its serving leaf: CN, DNS and IP SANs (not critical), serverAuth only', async () => {
  const material = await createRoot({ purpose: 'webhook', algorithm: 'ECDSA', size: 256, validityMs: 3_600_000, now: NOW });
  const ca = await loadCA(material.certificatePem, material.privateKeyPem);
  const root = ca.certificate;
  assert.match(root.subject, /^O=agent-identity-operator, CN=agent-identity-operator webhook CA [0-9a-f]{8}$/);
  const bc = root.getExtension(x509.BasicConstraintsExtension)!;
  assert.deepEqual([bc.critical, bc.ca, bc.pathLength], [true, true, 0]);
  assert.equal(root.getExtension(x509.SubjectAlternativeNameExtension), null);

  const key = await generateKeyPair('ECDSA', 256);
  const issued = await issueServingLeaf(ca, { commonName: 'svc.ns.svc', dnsNames: ['svc.ns.svc'], ipAddresses: ['127.0.0.1'], publicKey: key.publicKey, durationMs: 60_000, now: NOW });
  const [leaf, ...rest] = parseCertificates(issued.certificatePem);
  assert.equal(rest.length, 0, 'a root-signed leaf travels alone');
  assert.equal(leaf!.subject, 'CN=svc.ns.svc');
  assert.deepEqual([sanValues(leaf!, 'dns'), sanValues(leaf!, 'ip')], [['svc.ns.svc'], ['127.0.0.1']]);
  assert.equal(leaf!.getExtension(x509.SubjectAlternativeNameExtension)!.critical, false);
  assert.deepEqual([...leaf!.getExtension(x509.ExtendedKeyUsageExtension)!.usages.map(String)], ['1.3.6.1.5.5.7.3.1']);
  assert.ok(await signedBy(leaf!, root));
});
