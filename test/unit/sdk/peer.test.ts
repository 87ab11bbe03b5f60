import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { DetailedPeerCertificate } from 'node:tls';
import { x509 } from '../../../src/pki/crypto.ts';
import { parseCertificates } from '../../../src/pki/parse.ts';
import { serialNumberOf } from '../../../src/pki/serial.ts';
import { authorizeAny, authorizeID } from '../../../src/sdk/authorizer.ts';
import { PeerRefusedError } from '../../../src/sdk/errors.ts';
import { checkPeer, peerChainOf } from '../../../src/sdk/peer.ts';
import { denied, type IssuedIdentity, makeTrustDomain, policyFor, type TestTrustDomain } from '../../support/sdk-pki.ts';

let td: TestTrustDomain;
let planner: IssuedIdentity;
let orchestrator: IssuedIdentity;
let chain: x509.X509Certificate[];

before(async () => {
  td = await makeTrustDomain();
  planner = await td.issue('planner');
  orchestrator = await td.issue('orchestrator');
  chain = parseCertificates(orchestrator.certificatePem);
});

function refusal(fn: () => unknown): PeerRefusedError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof PeerRefusedError, `expected PeerRefusedError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a refusal');
}

describe('checkPeer', () => {
  it('admits an authorized peer and reports its ID, rule and serial', () => {
    const peer = checkPeer(chain, policyFor(planner), authorizeAny());
    assert.equal(peer.spiffeID.toString(), orchestrator.spiffeID);
    assert.equal(peer.rule, 'any SPIFFE ID');
    assert.equal(peer.serialNumber, orchestrator.serialNumber);
  });

  it('refuses a deny-listed Leaf by serial, with the entry reason, before asking the Authorizer', () => {
    const err = refusal(() => checkPeer(chain, policyFor(planner, { denyList: [denied(orchestrator, 'Suspended')] }), authorizeAny()));
    assert.equal(err.reason, 'DenyListed');
    assert.equal(err.message, `peer certificate serial ${orchestrator.serialNumber} is on the deny list (Suspended)`);
    assert.equal(err.peerID, orchestrator.spiffeID);
  });

  it('refuses a chain whose intermediate is deny-listed', () => {
    const intermediateSerial = serialNumberOf(td.intermediate.certificate);
    const entry = { ...denied(orchestrator, 'Compromised'), serialNumber: intermediateSerial };
    const err = refusal(() => checkPeer(chain, policyFor(planner, { denyList: [entry] }), authorizeAny()));
    assert.equal(err.reason, 'DenyListed');
    assert.equal(err.message, `peer certificate chain: issuer 1 serial ${intermediateSerial} is on the deny list (Compromised)`);
  });

  it('other serials on the deny list do not matter', () => {
    assert.equal(checkPeer(chain, policyFor(planner, { denyList: [denied(planner)] }), authorizeAny()).serialNumber, orchestrator.serialNumber);
  });

  it('passes the Authorizer refusal through as the message', () => {
    const err = refusal(() => checkPeer(chain, policyFor(planner), authorizeID(planner.spiffeID)));
    assert.equal(err.reason, 'NotAuthorized');
    assert.equal(err.message, `peer ${orchestrator.spiffeID} is not allowed: expected ${planner.spiffeID}`);
  });

  it('refuses a certificate without a SPIFFE ID', async () => {
    const keys = await globalThis.crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
    const plain = await x509.X509CertificateGenerator.createSelfSigned({
      name: 'CN=plain',
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'planner.agents.svc' }])],
    });
    const err = refusal(() => checkPeer([plain], policyFor(planner), authorizeAny()));
    assert.equal(err.reason, 'NoSpiffeID');
    assert.match(err.message, /^peer certificate has no SPIFFE ID/);
  });
});

describe('peerChainOf', () => {
  it("follows node's issuerCertificate links and stops at the self-linked root", () => {
    const [leaf, intermediate] = chain;
    const root = { raw: Buffer.from(td.root.certificate.rawData) } as DetailedPeerCertificate;
    root.issuerCertificate = root;
    const mid = { raw: Buffer.from(intermediate!.rawData), issuerCertificate: root } as DetailedPeerCertificate;
    const top = { raw: Buffer.from(leaf!.rawData), issuerCertificate: mid } as DetailedPeerCertificate;
    assert.deepEqual(peerChainOf(top).map((c) => c.serialNumber), [leaf!.serialNumber, intermediate!.serialNumber, td.root.certificate.serialNumber]);
  });
});
