// zlint, the linter public CAs run before they issue, over every kind of
// certificate the operator issues: Secret Leaves for each key type (with and
// without DNS names), a pod-certificate Leaf for a kubelet's key, the webhook's
// serving Leaf, and the Root and Intermediate above them. Only the lints of the
// RFCs apply (RFC 5280, 5480, 5891, 8813): the CA/Browser Forum and browser
// root-program lints are for the public web PKI (they demand certificate
// policies, AIA, CRLs and a country in every CA name, and forbid URI SANs,
// .svc names and Ed25519), and a private SPIFFE CA follows none of them.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createIntermediate, createRoot, loadCA } from '../../src/pki/ca.ts';
import { x509 } from '../../src/pki/crypto.ts';
import { parseCertificateRequest } from '../../src/pki/csr.ts';
import { generateKeyPair } from '../../src/pki/keys.ts';
import { issueLeaf, issueServingLeaf } from '../../src/pki/leaf.ts';
import { certificatePemBlocks } from '../../src/pki/pem.ts';
import { SpiffeID } from '../../src/pki/spiffeid.ts';
import { stubRequest } from '../unit/pki/fixtures.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const SOURCES = 'RFC5280,RFC5480,RFC5891,RFC8813';
const DAY = 86_400_000;
const now = new Date();
const spiffeID = SpiffeID.parse('spiffe://cluster.local/ns/agents/agent/planner');

let zlint: string;
let dir: string;
before(() => {
  zlint = execFileSync('bash', [join(ROOT, 'scripts', 'zlint.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  dir = mkdtempSync(join(tmpdir(), 'aio-zlint-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** zlint's findings on one certificate: every lint whose result is not pass, NA (not applicable) or NE (not effective). */
function lint(name: string, pem: string): { findings: string[]; passed: number } {
  const file = join(dir, `${name.replace(/\W+/g, '-')}.pem`);
  writeFileSync(file, certificatePemBlocks(pem)[0]!);
  const results = JSON.parse(execFileSync(zlint, ['-includeSources', SOURCES, file], { encoding: 'utf8' })) as Record<string, { result: string; details?: string }>;
  const all = Object.entries(results);
  return {
    findings: all.filter(([, r]) => !['pass', 'NA', 'NE'].includes(r.result)).map(([lintName, r]) => `${lintName}: ${r.result} ${r.details ?? ''}`.trim()),
    passed: all.filter(([, r]) => r.result === 'pass').length,
  };
}

function assertClean(name: string, pem: string) {
  const { findings, passed } = lint(name, pem);
  assert.deepEqual(findings, [], `${name}: zlint findings`);
  assert.ok(passed >= 30, `${name}: only ${passed} lints passed; did zlint run the RFC lints?`);
}

describe('zlint (RFC lints) over every certificate the operator issues', () => {
  it('the Root, the Intermediate, and Secret Leaves of every key type', async () => {
    const rootPem = await createRoot({ trustDomain: 'cluster.local', algorithm: 'ECDSA', validityMs: 365 * DAY, now });
    const intPem = await createIntermediate(await loadCA(rootPem.certificatePem, rootPem.privateKeyPem), { trustDomain: 'cluster.local', algorithm: 'ECDSA', validityMs: 90 * DAY, now });
    assertClean('root', rootPem.certificatePem);
    assertClean('intermediate', intPem.certificatePem);
    const ca = await loadCA(intPem.certificatePem, intPem.privateKeyPem);
    for (const [algorithm, size] of [['ECDSA', 256], ['ECDSA', 384], ['RSA', 2048], ['Ed25519', 0]] as const) {
      const key = await generateKeyPair(algorithm, size);
      for (const dnsNames of [[], ['planner.agents.svc', 'planner']]) {
        const leaf = await issueLeaf(ca, { spiffeID, dnsNames, publicKey: key.publicKey, durationMs: DAY, now });
        assertClean(`${algorithm}-${size} leaf, ${dnsNames.length} DNS names`, leaf.certificatePem);
      }
    }
  });

  it("a pod-certificate Leaf for a kubelet's key, and the webhook's serving Leaf", async () => {
    const rootPem = await createRoot({ trustDomain: 'cluster.local', algorithm: 'ECDSA', validityMs: 365 * DAY, now });
    const ca = await loadCA(rootPem.certificatePem, rootPem.privateKeyPem);
    const parsed = await parseCertificateRequest((await stubRequest({ name: 'ECDSA', namedCurve: 'P-256' }, 'SHA-256')).der);
    assert.ok(parsed.ok && parsed.publicKey);
    assertClean('pod certificate', (await issueLeaf(ca, { spiffeID, dnsNames: [], publicKey: parsed.publicKey, durationMs: DAY, now })).certificatePem);

    const webhookPem = await createRoot({ purpose: 'webhook', algorithm: 'ECDSA', size: 256, validityMs: 365 * DAY, now });
    assertClean('webhook root', webhookPem.certificatePem);
    const key = await generateKeyPair('ECDSA', 256);
    const serving = await issueServingLeaf(await loadCA(webhookPem.certificatePem, webhookPem.privateKeyPem), {
      commonName: 'agent-identity-operator-webhook.system.svc', dnsNames: ['agent-identity-operator-webhook.system.svc'], ipAddresses: ['127.0.0.1', '::1'],
      publicKey: key.publicKey, durationMs: 30 * DAY, now,
    });
    assertClean('serving leaf', serving.certificatePem);
  });

  it('reports what it should: a CA certificate without a SubjectKeyIdentifier is flagged', async () => {
    const keys = await generateKeyPair('ECDSA', 256);
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      name: 'CN=no SKI', keys, notBefore: now, notAfter: new Date(now.getTime() + DAY), signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
    });
    const { findings } = lint('no-ski', cert.toString('pem'));
    assert.ok(findings.some((f) => f.startsWith('e_ext_subject_key_identifier_missing_ca')), findings.join('\n'));
  });
});
