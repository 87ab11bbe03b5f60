// Pod-certificate delivery: the kubelet's credential bundle (key, then chain,
// one file) is read instead of tls.crt/tls.key, checked the same way, and
// followed through the same `..data` swaps.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { splitCredentialBundle } from '../../../src/sdk/credential-bundle.ts';
import { IdentityError } from '../../../src/sdk/errors.ts';
import { identityFilesWithCredentialBundle } from '../../../src/sdk/files.ts';
import { type Identity, loadIdentity } from '../../../src/sdk/identity.ts';
import {
  fileSet,
  type IssuedIdentity,
  makeTrustDomain,
  podCertificateFileSet,
  type PodCertificateFileSet,
  policyFor,
  keyBody,
  rejectsSafely,
  swapMountedDir,
  type TestTrustDomain,
  writeMountedDir,
  writePlainDir,
} from '../../support/sdk-pki.ts';

let base: string;
let td: TestTrustDomain;
let planner: IssuedIdentity;
let renewed: IssuedIdentity;
let other: IssuedIdentity;
let good: PodCertificateFileSet;
let dirs = 0;

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'sdk-credential-bundle-'));
  td = await makeTrustDomain();
  planner = await td.issue('planner');
  renewed = await td.issue('planner');
  other = await td.issue('other');
  good = podCertificateFileSet(planner, td.bundlePem, policyFor(planner));
});
after(() => rm(base, { recursive: true, force: true }));

const newDir = () => join(base, `d${++dirs}`);

const rejectsSafelyFor = (p: Promise<unknown>, message: RegExp) => rejectsSafely(p, message, [planner, other]);

describe('splitCredentialBundle', () => {
  it('takes the one key block and leaves the chain', () => {
    const split = splitCredentialBundle(good['credential-bundle.pem'], 'x');
    assert.equal(split.privateKey.trim(), planner.privateKeyPem.trim());
    assert.equal(split.certificate, planner.certificatePem);
  });

  it('refuses no key block and two, naming the file only', () => {
    assert.throws(() => splitCredentialBundle(planner.certificatePem, '/d/credential-bundle.pem'), /^IdentityError: \/d\/credential-bundle\.pem: expected one PEM private key block \(PKCS#8\) before the certificates, found 0$/);
    const two = `${planner.privateKeyPem}${other.privateKeyPem}${planner.certificatePem}`;
    assert.throws(() => splitCredentialBundle(two, 'b'), (err: Error) => /found 2$/.test(err.message) && !err.message.includes(keyBody(planner.privateKeyPem)));
  });
});

describe('identityFilesWithCredentialBundle', () => {
  it('puts credential-bundle.pem beside the others, or takes AGENT_IDENTITY_CREDENTIAL_BUNDLE_FILE', () => {
    assert.equal(identityFilesWithCredentialBundle('/x', { AGENT_IDENTITY_CREDENTIAL_BUNDLE_FILE: '/e/b.pem' }).credentialBundle, '/x/credential-bundle.pem');
    assert.equal(identityFilesWithCredentialBundle(undefined, { AGENT_IDENTITY_DIR: '/m' }).credentialBundle, '/m/credential-bundle.pem');
    assert.equal(identityFilesWithCredentialBundle(undefined, { AGENT_IDENTITY_CREDENTIAL_BUNDLE_FILE: '/e/b.pem' }).credentialBundle, '/e/b.pem');
    assert.equal(identityFilesWithCredentialBundle(undefined, {}).credentialBundle, '/var/run/agentidentity/credential-bundle.pem');
  });
});

describe('loading a pod certificate', () => {
  it('reads key and chain from the credential bundle, with no tls.crt or tls.key', async () => {
    const dir = newDir();
    await writeMountedDir(dir, good);
    const identity = await loadIdentity({ dir, watch: false });
    assert.equal(identity.spiffeID, planner.spiffeID);
    assert.equal(identity.svid.serialNumber, planner.serialNumber);
    assert.equal(identity.svid.certificates.length, 2, 'Leaf and Intermediate');
    assert.equal(identity.svid.certificatesPem, planner.certificatePem, 'the chain alone: the key is not in what the SVID shows');
  });

  it('prefers the credential bundle when tls.crt and tls.key are there too', async () => {
    const dir = newDir();
    await writePlainDir(dir, { ...fileSet(other, td.bundlePem, policyFor(planner)), ...good });
    const identity = await loadIdentity({ dir, watch: false });
    assert.equal(identity.svid.serialNumber, planner.serialNumber);
  });

  it('refuses a bundle that does not hold together, naming credential-bundle.pem, never the key', async () => {
    const stranger = await (await makeTrustDomain()).issue('planner');
    const cases: [string, RegExp][] = [
      [planner.certificatePem, /credential-bundle\.pem: expected one PEM private key block/],
      [`${other.privateKeyPem}${planner.certificatePem}`, /credential-bundle\.pem: the private key does not match the certificate in .*credential-bundle\.pem/],
      [`${planner.privateKeyPem}garbage`, /credential-bundle\.pem: no PEM CERTIFICATE block found/],
      [`${stranger.privateKeyPem}${stranger.certificatePem}`, /credential-bundle\.pem: the certificate does not chain to .*ca\.crt/],
    ];
    for (const [bundle, message] of cases) {
      const dir = newDir();
      await writeMountedDir(dir, { ...good, 'credential-bundle.pem': bundle });
      await rejectsSafelyFor(loadIdentity({ dir, watch: false }), message);
    }
  });

  it('without either, the error is today\'s: tls.crt is missing', async () => {
    const dir = newDir();
    await writePlainDir(dir, { 'ca.crt': good['ca.crt'], 'policy.json': good['policy.json'] });
    await rejectsSafelyFor(loadIdentity({ dir, watch: false }), /cannot read tls\.crt at .*tls\.crt: ENOENT/);
  });
});

describe('watching a pod certificate volume', () => {
  let identity: Identity | undefined;
  after(() => identity?.close());

  it('follows the kubelet\'s refresh (new key, new chain, one ..data swap), keeps the last good set on a bad one, and recovers', async () => {
    const dir = newDir();
    await writeMountedDir(dir, good);
    identity = await loadIdentity({ dir, pollIntervalMs: 60_000 });

    const updated = once(identity, 'update');
    await swapMountedDir(dir, podCertificateFileSet(renewed, td.bundlePem, policyFor(renewed)));
    await updated;
    assert.equal(identity.svid.serialNumber, renewed.serialNumber);

    const failed = once(identity, 'reloadError');
    await swapMountedDir(dir, { ...good, 'credential-bundle.pem': `${other.privateKeyPem}${planner.certificatePem}` });
    const [err] = (await failed) as [IdentityError];
    assert.match(err.message, /credential-bundle\.pem: the private key does not match/);
    assert.equal(identity.svid.serialNumber, renewed.serialNumber, 'still serving the last good SVID');

    const recovered = once(identity, 'update');
    await swapMountedDir(dir, good);
    await recovered;
    assert.equal(identity.svid.serialNumber, planner.serialNumber);
  });

  it('a Secret-layout volume that gains a credential bundle switches to it', async () => {
    const dir = newDir();
    await writeMountedDir(dir, fileSet(planner, td.bundlePem, policyFor(planner)));
    identity?.close();
    identity = await loadIdentity({ dir, pollIntervalMs: 60_000 });
    const updated = once(identity, 'update');
    await swapMountedDir(dir, { ...fileSet(planner, td.bundlePem, policyFor(renewed)), ...podCertificateFileSet(renewed, td.bundlePem, policyFor(renewed)) });
    await updated;
    assert.equal(identity.svid.serialNumber, renewed.serialNumber);
  });
});
