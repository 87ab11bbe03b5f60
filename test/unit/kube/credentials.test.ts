import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentialsOf, impersonationHeaders } from '../../../src/kube/credentials.ts';

test('impersonation: one header per group and extra value; extra keys %-escaped as client-go does; nothing without as', () => {
  assert.deepEqual(impersonationHeaders({ impersonateUser: 'alice', impersonateUid: '42', impersonateGroups: ['a', 'b'], impersonateExtra: { 'example.com/scope': ['x', 'y'] } }), {
    'impersonate-user': 'alice', 'impersonate-uid': '42', 'impersonate-group': ['a', 'b'], 'impersonate-extra-example.com%2Fscope': ['x', 'y'],
  });
  assert.deepEqual(impersonationHeaders({ token: 't' }), {});
});

test("an expired plugin credential is fetched again per request; a new token alone keeps the TLS settings (so the pool), a new certificate does not", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'aio-cred-'));
  const runs = join(dir, 'runs');
  writeFileSync(runs, '');
  // Prints run-N; from the second run on, with a certificate that changes each run.
  writeFileSync(join(dir, 'plugin.mjs'), `import { appendFileSync, readFileSync } from 'node:fs';
appendFileSync(${JSON.stringify(runs)}, 'x');
const n = readFileSync(${JSON.stringify(runs)}, 'utf8').length;
const status = { token: 'run-' + n, expirationTimestamp: '2000-01-01T00:00:00Z' };
if (n >= 3) Object.assign(status, { clientCertificateData: 'cert-' + n, clientKeyData: 'key-' + n });
process.stdout.write(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status }));`);
  const creds = credentialsOf({ server: 'https://k:1' }, { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: [join(dir, 'plugin.mjs')], interactiveMode: 'Never' } });
  const [one, two, three] = [await creds.current(), await creds.current(), await creds.current()];
  assert.deepEqual([one, two, three].map((c) => c.headers.authorization), ['Bearer run-1', 'Bearer run-2', 'Bearer run-3']);
  assert.equal(two.tls, one.tls, 'a new token, the same connections');
  assert.notEqual(three.tls, two.tls);
  assert.equal(three.tls.cert?.toString(), 'cert-3');
});
