import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type CA, createRoot, loadCA } from '../../../src/pki/ca.ts';
import { x509 } from '../../../src/pki/crypto.ts';
import { certificatesToPem } from '../../../src/pki/pem.ts';
import { verifyChain } from '../../../src/pki/verify.ts';
import { DAY, epochSeconds, hierarchy, leafFrom, NOW, openssl, rawNames, TD, withTempDir } from './fixtures.ts';
import { containsPem } from '../../support/pem.ts';

async function newRoot(now = NOW, validityMs = 365 * DAY): Promise<CA> {
  const pem = await createRoot({ trustDomain: TD, algorithm: 'ECDSA', validityMs, now });
  return loadCA(pem.certificatePem, pem.privateKeyPem);
}

function assertFails(result: { ok: boolean; reason?: string }, reason: RegExp) {
  assert.equal(result.ok, false);
  assert.match((result as { reason: string }).reason, reason);
}

describe('verifyChain', () => {
  it('accepts Root → Intermediate → Leaf', async () => {
    const { root, intermediate } = await hierarchy();
    const { certs } = await leafFrom(intermediate);
    assert.deepEqual(await verifyChain(certs, [root.certificate], NOW), { ok: true });
  });

  it('accepts a Leaf straight under the Root, and a chain that includes the Root', async () => {
    const { root, intermediate } = await hierarchy();
    const { leaf } = await leafFrom(root);
    assert.deepEqual(await verifyChain([leaf], [root.certificate], NOW), { ok: true });
    const { certs } = await leafFrom(intermediate);
    assert.deepEqual(await verifyChain([...certs, root.certificate], [root.certificate], NOW), { ok: true });
  });

  it('picks the right root out of several', async () => {
    const { root, intermediate } = await hierarchy();
    const { certs } = await leafFrom(intermediate);
    const other = await newRoot();
    assert.deepEqual(await verifyChain(certs, [other.certificate, root.certificate], NOW), { ok: true });
  });

  it('rejects a Leaf from another Root, saying its issuer is not in the bundle', async () => {
    const { root } = await hierarchy();
    const stranger = await newRoot();
    const { certs } = await leafFrom(stranger);
    assertFails(await verifyChain(certs, [root.certificate], NOW), /issued by "O=agent-identity-operator, CN=cluster\.local Root CA [0-9a-f]+", which is not a root in the bundle/);
  });

  it('rejects a Root impostor with the same subject but another key', async () => {
    const { root, intermediate } = await hierarchy();
    const { certs } = await leafFrom(intermediate);
    const key = await globalThis.crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
    const impostor = await x509.X509CertificateGenerator.createSelfSigned({
      name: root.certificate.subjectName,
      keys: key,
      notBefore: root.certificate.notBefore,
      notAfter: root.certificate.notAfter,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [new x509.BasicConstraintsExtension(true, 1, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
    });
    assertFails(await verifyChain(certs, [impostor], NOW), /not a root in the bundle/);
  });

  it('rejects an expired Leaf, and one not yet valid', async () => {
    const { root, intermediate } = await hierarchy();
    const { certs, leaf } = await leafFrom(intermediate, { durationMs: DAY });
    assertFails(await verifyChain(certs, [root.certificate], new Date(leaf.notAfter.getTime() + 1000)), /^certificate "spiffe:\/\/cluster\.local\/ns\/agents\/agent\/planner" expired at 2030-06-02T12:00:00\.000Z$/);
    assertFails(await verifyChain(certs, [root.certificate], new Date(NOW.getTime() - DAY)), /is not valid before/);
  });

  it('rejects an expired Root', async () => {
    const shortRoot = await newRoot(NOW, DAY);
    const { leaf } = await leafFrom(shortRoot, { durationMs: DAY / 2 });
    const rootExpired = new Date(shortRoot.certificate.notAfter.getTime() + 1000);
    assertFails(await verifyChain([leaf], [shortRoot.certificate], rootExpired), /expired/);
  });

  it('rejects a chain missing its Intermediate, or in the wrong order', async () => {
    const { root, intermediate } = await hierarchy();
    const { leaf } = await leafFrom(intermediate);
    assertFails(await verifyChain([leaf], [root.certificate], NOW), /not a root in the bundle/);
    assertFails(await verifyChain([intermediate.certificate, leaf], [root.certificate], NOW), /not signed by the next certificate/);
    assertFails(await verifyChain([], [root.certificate], NOW), /empty/);
  });

  it('rejects an issuer that is not a CA', async () => {
    const { root } = await hierarchy();
    const { leaf: notACA, key } = await leafFrom(root);
    // Bypass loadCA's checks to sign with a Leaf, as an attacker holding a Leaf key might.
    const fake: CA = { certificate: notACA, key, chain: [notACA] };
    const { leaf } = await leafFrom(fake);
    assertFails(await verifyChain([leaf, notACA], [root.certificate], NOW), /is not a CA/);
  });

  it('enforces pathLen: no CA below an Intermediate with pathLen 0', async () => {
    const { root, intermediate } = await hierarchy();
    // Sign a CA certificate below the pathLen-0 Intermediate directly: createIntermediate refuses to.
    const subKey = await globalThis.crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
    const sub = await x509.X509CertificateGenerator.create({
      subject: 'CN=too deep',
      issuer: intermediate.certificate.subjectName,
      notBefore: NOW,
      notAfter: new Date(NOW.getTime() + DAY),
      publicKey: subKey.publicKey,
      signingKey: intermediate.key.privateKey,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
    });
    const subCA: CA = { certificate: sub, key: { ...intermediate.key, privateKey: subKey.privateKey, publicKey: subKey.publicKey }, chain: [sub] };
    const { leaf } = await leafFrom(subCA, { now: new Date(NOW.getTime() + 1000) });
    assertFails(await verifyChain([leaf, sub, intermediate.certificate], [root.certificate], new Date(NOW.getTime() + 60_000)), /allows 0 intermediate\(s\) below it, the chain has 1/);
  });
});

describe('the same chains through openssl verify', () => {
  it('passes -x509_strict for Root → Intermediate → Leaf, for both TLS client and server use', async () => {
    const { root, intermediate } = await hierarchy();
    const { leaf } = await leafFrom(intermediate);
    for (const purpose of ['sslclient', 'sslserver']) {
      const { status, output } = await openssl(
        ['verify', '-x509_strict', '-purpose', purpose, '-attime', epochSeconds(NOW), '-CAfile', 'root.pem', '-untrusted', 'intermediate.pem', 'leaf.pem'],
        {
          'root.pem': certificatesToPem([root.certificate]),
          'intermediate.pem': certificatesToPem([intermediate.certificate]),
          'leaf.pem': certificatesToPem([leaf]),
        },
      );
      assert.equal(status, 0, output);
      assert.match(output, /leaf\.pem: OK/);
    }
  });

  it('fails, like verifyChain, for a Leaf of another Root and after expiry', async () => {
    const { root, intermediate } = await hierarchy();
    const stranger = await newRoot();
    const { leaf: foreign } = await leafFrom(stranger);
    const { leaf } = await leafFrom(intermediate, { durationMs: DAY });
    const files = {
      'root.pem': certificatesToPem([root.certificate]),
      'intermediate.pem': certificatesToPem([intermediate.certificate]),
      'foreign.pem': certificatesToPem([foreign]),
      'leaf.pem': certificatesToPem([leaf]),
    };
    const common = ['verify', '-CAfile', 'root.pem', '-untrusted', 'intermediate.pem'];
    const foreignResult = await openssl([...common, '-attime', epochSeconds(NOW), 'foreign.pem'], files);
    assert.notEqual(foreignResult.status, 0);
    assert.match(foreignResult.output, /unable to get local issuer certificate/);
    const expiredResult = await openssl([...common, '-attime', epochSeconds(new Date(NOW.getTime() + 2 * DAY)), 'leaf.pem'], files);
    assert.notEqual(expiredResult.status, 0);
    assert.match(expiredResult.output, /certificate has expired/);
  });

  it('issues from a CA that openssl made (RSA, BMPString and multi-valued names), byte-exact issuer, verifiable', async () => {
    const [certPem, keyPem] = await withTempDir((dir) => {
      const config = join(dir, 'req.cnf');
      execFileSync('sh', ['-c', `printf '[req]\\ndistinguished_name=dn\\nstring_mask=default\\n[dn]\\n' > ${config}`]);
      execFileSync(
        'openssl',
        ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '30', '-utf8', '-multivalue-rdn', '-config', config,
          '-subj', '/C=DE/O=Grüße GmbH+OU=Platform/CN=Brought CA',
          '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-addext', 'subjectKeyIdentifier=hash'],
        { cwd: dir, stdio: 'pipe' },
      );
      return ['ca.pem', 'ca.key'].map((f) => readFileSync(join(dir, f), 'utf8'));
    });
    assert.match(keyPem!, containsPem('PRIVATE KEY'));
    const now = new Date(); // after openssl stamped the CA's notBefore
    const ca = await loadCA(certPem!, keyPem!);
    const { leaf } = await leafFrom(ca, { now });
    assert.ok(rawNames(leaf.rawData).issuer.equals(rawNames(ca.certificate.rawData).subject), 'issuer name copied byte for byte');
    assert.deepEqual(await verifyChain([leaf], [ca.certificate], now), { ok: true });
    const { status, output } = await openssl(['verify', '-x509_strict', '-CAfile', 'ca.pem', 'leaf.pem'], {
      'ca.pem': certPem!,
      'leaf.pem': certificatesToPem([leaf]),
    });
    assert.equal(status, 0, output);
  });
});
