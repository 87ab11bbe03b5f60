// observeSecret parses a Secret version once, yet still answers for the
// `now` and bundle it is asked about, and never trusts a stale parse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SECRET_CERT, SECRET_KEY } from '../../../src/api/group.ts';
import type { Secret } from '../../../src/api/types.ts';
import { existingKeyPair, observeSecret } from '../../../src/identity/observe.ts';
import { generateKeyPair, privateKeyToPem } from '../../../src/pki/keys.ts';
import { fingerprintOf } from '../../../src/pki/parse.ts';
import { certificatesToPem } from '../../../src/pki/pem.ts';
import { DAY, NOW, hierarchy, leafFrom } from '../pki/fixtures.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');

async function identitySecret(): Promise<Secret> {
  const { intermediate } = await hierarchy();
  const { issued, key } = await leafFrom(intermediate);
  return { metadata: { name: 's', namespace: 'agents', uid: 'u', resourceVersion: '1' }, data: { [SECRET_CERT]: b64(issued.certificatePem), [SECRET_KEY]: b64(await privateKeyToPem(key)) } };
}

test('the same Secret version is parsed once: the observed leaf is the same object', async () => {
  const { root } = await hierarchy();
  const bundle = { roots: [root.certificate], pem: certificatesToPem([root.certificate]) };
  const secret = await identitySecret();
  const a = await observeSecret(secret, bundle, NOW);
  const b = await observeSecret(secret, bundle, NOW);
  assert.ok(a.observed.leaf);
  assert.equal(a.observed.leaf, b.observed.leaf);
  assert.equal(a.observed.keyMatchesLeaf, true);
  assert.deepEqual(a.observed.key, { algorithm: 'ECDSA', size: 256 });
  assert.deepEqual(a.observed, b.observed);
  assert.deepEqual(a.observed.trust, { ok: true });
  assert.equal(a.rootFingerprint, await fingerprintOf(root.certificate));
});

test('a cached parse is still checked against the time and bundle asked about', async () => {
  const { root } = await hierarchy();
  const bundle = { roots: [root.certificate], pem: certificatesToPem([root.certificate]) };
  const secret = await identitySecret();
  await observeSecret(secret, bundle, NOW);
  const later = await observeSecret(secret, bundle, new Date(NOW.getTime() + 2 * DAY));
  assert.equal(later.observed.trust?.ok, false);
  assert.match((later.observed.trust as { reason: string }).reason, /expired/);
  const elsewhere = await observeSecret(secret, { roots: [], pem: '' }, NOW);
  assert.equal(elsewhere.observed.trust?.ok, false);
  assert.equal(elsewhere.rootFingerprint, undefined);
});

test('a Secret whose data changed in place is parsed again', async () => {
  const { root } = await hierarchy();
  const bundle = { roots: [root.certificate], pem: certificatesToPem([root.certificate]) };
  const secret = await identitySecret();
  const before = await observeSecret(secret, bundle, NOW);
  assert.equal(before.observed.keyMatchesLeaf, true);
  secret.data![SECRET_KEY] = b64(await privateKeyToPem(await generateKeyPair('ECDSA', 256)));
  const after = await observeSecret(secret, bundle, NOW);
  assert.notEqual(after.observed.leaf, before.observed.leaf);
  assert.equal(after.observed.keyMatchesLeaf, false);
  secret.data![SECRET_CERT] = b64('junk');
  assert.ok((await observeSecret(secret, bundle, NOW)).observed.leafError);
});

test('the key is read only when a re-issue keeps it: existingKeyPair parses the Secret\'s key, or says there is none', async () => {
  const secret = await identitySecret();
  const kp = await existingKeyPair(secret);
  assert.equal(kp?.algorithm, 'ECDSA');
  assert.equal(await privateKeyToPem(kp!), Buffer.from(secret.data![SECRET_KEY]!, 'base64').toString('utf8'));
  assert.equal(await existingKeyPair({ ...secret, data: { ...secret.data, [SECRET_KEY]: b64('junk') } }), undefined);
  assert.equal(await existingKeyPair(undefined), undefined);
});
