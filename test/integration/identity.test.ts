// AgentIdentity → SPIFFE certificate in a Secret, on a real API server:
// Ready within seconds, a chain openssl accepts, the extensions the SPIFFE
// X.509-SVID spec asks for, and real mutual TLS between two identities.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestEnv } from '../support/env.ts';
import { setUp, tearDown } from '../support/suite.ts';
import { eventually } from '../support/operator.ts';
import { api, isReady, secretText } from '../support/objects.ts';
import { mtlsHandshake, otherCAClient } from '../support/tls.ts';
import type { Operator } from '../../src/operator.ts';
import type { AgentIdentity, Secret } from '../../src/api/types.ts';
import { parseCertificates } from '../../src/pki/parse.ts';
import { startsWithPem } from '../support/pem.ts';

let env: TestEnv;
let op: Operator;
let a: ReturnType<typeof api>;
let ns: string;

before(async () => {
  ({ env, op, a } = await setUp({}));
  ns = await env.namespace('agents');
});
after(() => tearDown({ env, op }));

async function readySecret(name: string): Promise<{ identity: AgentIdentity; secret: Secret }> {
  const identity = await eventually(async () => { const i = await a.getIdentity(ns, name); return isReady(i) && i; }, { what: `${name} Ready` });
  const secret = await a.getSecret(ns, identity.status!.secretName!);
  return { identity, secret };
}

test('an AgentIdentity becomes Ready with a Secret whose chain openssl verifies', async () => {
  const started = Date.now();
  await a.createIdentity(ns, 'planner', { dnsNames: [`planner.${ns}.svc`] });
  const { identity, secret } = await readySecret('planner');
  const elapsed = Date.now() - started;
  assert.ok(elapsed < 15_000, `Ready after ${elapsed} ms`);

  assert.equal(identity.status!.spiffeID, `spiffe://cluster.local/ns/${ns}/agent/planner`);
  assert.equal(identity.status!.secretName, 'planner-identity');
  assert.match(identity.status!.serialNumber!, /^[0-9a-f]+$/);
  assert.equal(identity.status!.lastIssuanceReason, 'SecretDoesNotExist');
  assert.ok(new Date(identity.status!.renewalTime!) < new Date(identity.status!.notAfter!));
  assert.equal(secret.type, 'kubernetes.io/tls');
  assert.equal(secret.metadata.labels?.['app.kubernetes.io/managed-by'], 'agent-identity-operator');
  assert.equal(secret.metadata.annotations?.['agentidentity.dev/spiffe-id'], identity.status!.spiffeID);
  assert.equal(secret.metadata.annotations?.['agentidentity.dev/serial-number'], identity.status!.serialNumber);
  const owner = secret.metadata.ownerReferences?.[0];
  assert.equal(owner?.kind, 'AgentIdentity');
  assert.equal(owner?.uid, identity.metadata.uid);
  assert.equal(owner?.controller, true);
  assert.match(secretText(secret, 'tls.key'), startsWithPem('PRIVATE KEY'), 'tls.key is PKCS#8');

  const dir = mkdtempSync(join(tmpdir(), 'aio-verify-'));
  writeFileSync(join(dir, 'ca.crt'), secretText(secret, 'ca.crt'));
  writeFileSync(join(dir, 'tls.crt'), secretText(secret, 'tls.crt'));
  const verify = execFileSync('openssl', ['verify', '-CAfile', join(dir, 'ca.crt'), '-untrusted', join(dir, 'tls.crt'), join(dir, 'tls.crt')], { encoding: 'utf8' });
  assert.match(verify, /: OK/);
  const chain = parseCertificates(secretText(secret, 'tls.crt'));
  const roots = parseCertificates(secretText(secret, 'ca.crt'));
  assert.equal(chain.length, 2, 'tls.crt holds the leaf and the intermediate that signed it');
  assert.equal(chain[1]!.issuer, roots[0]!.subject, 'the intermediate was issued by the root in ca.crt');
  assert.ok(!chain.some((c) => c.subject === c.issuer), 'no root in tls.crt: peers take roots only from their bundle');

  const text = execFileSync('openssl', ['x509', '-in', join(dir, 'tls.crt'), '-noout', '-text'], { encoding: 'utf8' });
  const dns = `DNS:planner\\.${ns}\\.svc`;
  const uri = `URI:spiffe://cluster\\.local/ns/${ns}/agent/planner`;
  assert.match(text, new RegExp(`X509v3 Subject Alternative Name: critical\\s+(${dns}, ${uri}|${uri}, ${dns})`));
  assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
  assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature\n/);
  assert.match(text, /X509v3 Extended Key Usage: \s*\n\s+TLS Web Server Authentication, TLS Web Client Authentication/);
  assert.match(text, /X509v3 Subject Key Identifier/);
  assert.match(text, /X509v3 Authority Key Identifier/);
  assert.equal((text.match(/URI:/g) ?? []).length, 1, 'exactly one URI SAN');
});

test('two identities complete mutual TLS; strangers are refused', async () => {
  await a.createIdentity(ns, 'orchestrator');
  await a.createIdentity(ns, 'worker');
  const [orch, worker] = await Promise.all([readySecret('orchestrator'), readySecret('worker')]);
  const material = (s: Secret) => ({ cert: secretText(s, 'tls.crt'), key: secretText(s, 'tls.key'), ca: secretText(s, 'ca.crt') });

  const ok = await mtlsHandshake(material(worker.secret), material(orch.secret));
  assert.equal(ok.authorized, true, ok.error);
  assert.equal(ok.peerSpiffeID, orch.identity.status!.spiffeID, 'the server saw the client\'s SPIFFE ID');

  const stranger = await otherCAClient();
  const refused = await mtlsHandshake(material(worker.secret), stranger);
  assert.equal(refused.authorized, false, 'a client from another CA is refused');

  const anonymous = await mtlsHandshake(material(worker.secret), { ca: material(worker.secret).ca });
  assert.equal(anonymous.authorized, false, 'a client with no certificate is refused');
});
