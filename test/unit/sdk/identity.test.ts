// Loading the mounted identity and keeping it current: a set that does not
// hold together never replaces the last good one.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { inspect } from 'node:util';
import { IdentityError } from '../../../src/sdk/errors.ts';
import { identityFiles } from '../../../src/sdk/files.ts';
import { type Identity, loadIdentity } from '../../../src/sdk/identity.ts';
import {
  fileSet,
  type IdentityFileSet,
  type IssuedIdentity,
  makeTrustDomain,
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
let good: IdentityFileSet;
let dirs = 0;

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'sdk-identity-'));
  td = await makeTrustDomain();
  planner = await td.issue('planner');
  renewed = await td.issue('planner');
  good = fileSet(planner, td.bundlePem, policyFor(planner));
});
after(() => rm(base, { recursive: true, force: true }));

const newDir = () => join(base, `d${++dirs}`);

const rejectsSafelyFor = (p: Promise<unknown>, message: RegExp) => rejectsSafely(p, message, [planner]);

describe('identityFiles', () => {
  it('takes an explicit dir, then per-file env, then AGENT_IDENTITY_DIR, then the default', () => {
    assert.deepEqual(identityFiles('/x', { AGENT_IDENTITY_CERT_FILE: '/elsewhere/c' }), { certificate: '/x/tls.crt', privateKey: '/x/tls.key', bundle: '/x/ca.crt', policy: '/x/policy.json', federatedBundles: '/x/federated-bundles.json' });
    assert.deepEqual(identityFiles(undefined, { AGENT_IDENTITY_DIR: '/m', AGENT_IDENTITY_POLICY_FILE: '/p/policy.json' }), {
      certificate: '/m/tls.crt',
      privateKey: '/m/tls.key',
      bundle: '/m/ca.crt',
      policy: '/p/policy.json',
      federatedBundles: '/m/federated-bundles.json',
    });
    assert.equal(identityFiles(undefined, {}).certificate, '/var/run/agentidentity/tls.crt');
  });
});

describe('loadIdentity', () => {
  it('reads plain files: SVID, Bundle and policy', async () => {
    const dir = newDir();
    await writePlainDir(dir, good);
    const identity = await loadIdentity({ dir, watch: false });
    assert.equal(identity.spiffeID, planner.spiffeID);
    assert.equal(identity.svid.serialNumber, planner.serialNumber);
    assert.equal(identity.svid.certificates.length, 2, 'Leaf and Intermediate');
    assert.equal(identity.bundle.roots.length, 1);
    assert.equal(identity.policy.mode, 'TrustDomain');
  });

  it('never shows the private key through properties, JSON or inspect', async () => {
    const dir = newDir();
    await writePlainDir(dir, good);
    const identity = await loadIdentity({ dir, watch: false });
    for (const text of [JSON.stringify(identity.svid), inspect(identity.svid, { depth: 5 }), inspect(identity, { depth: 3 })]) {
      assert.ok(!text.includes(keyBody(planner.privateKeyPem)));
      assert.doesNotMatch(text, /PRIVATE KEY/);
    }
  });

  it('refuses a first load that does not hold together, without quoting the key', async () => {
    const other = await td.issue('other');
    const stranger = await (await makeTrustDomain()).issue('planner');
    const cases: [Partial<IdentityFileSet>, RegExp][] = [
      [{ 'tls.crt': 'garbage' }, /tls\.crt: no PEM CERTIFICATE block found/],
      [{ 'tls.key': `${planner.privateKeyPem.slice(0, 120)}` }, /tls\.key: no PEM private key block found/],
      [{ 'tls.key': other.privateKeyPem }, /tls\.key: the private key does not match the certificate/],
      [{ 'tls.crt': stranger.certificatePem, 'tls.key': stranger.privateKeyPem }, /does not chain to .*ca\.crt: .*not a root in the bundle/],
      [{ 'policy.json': '{' }, /policy\.json: not valid JSON/],
      [{ 'policy.json': JSON.stringify(policyFor(other)) }, /policy protects .*\/other, but the certificate is .*\/planner/],
      [{ 'tls.crt': td.bundlePem }, /the first certificate is a CA/],
    ];
    for (const [change, message] of cases) {
      const dir = newDir();
      await writePlainDir(dir, { ...good, ...change });
      await rejectsSafelyFor(loadIdentity({ dir, watch: false }), message);
    }
    await rejectsSafelyFor(loadIdentity({ dir: join(base, 'missing'), watch: false }), /cannot read tls\.crt at .*missing\/tls\.crt: ENOENT/);
  });

  it('refuses an SVID for another SPIFFE ID than expected', async () => {
    const dir = newDir();
    await writePlainDir(dir, good);
    await rejectsSafelyFor(loadIdentity({ dir, watch: false, spiffeID: 'spiffe://cluster.local/ns/agents/agent/auditor' }), /the certificate is .*planner, expected .*auditor/);
  });
});

describe('Identity.reload', () => {
  it('reports no change for identical content, and takes new content', async () => {
    const dir = newDir();
    await writePlainDir(dir, good);
    const identity = await loadIdentity({ dir, watch: false });
    assert.equal(await identity.reload(), false);
    const updates: string[] = [];
    identity.on('update', (i) => updates.push(i.svid.serialNumber));
    await writePlainDir(dir, fileSet(renewed, td.bundlePem, policyFor(renewed)));
    assert.equal(await identity.reload(), true);
    assert.deepEqual(updates, [renewed.serialNumber]);
  });

  it('keeps the last good material when the files become invalid, and recovers when they are fixed', async () => {
    const dir = newDir();
    await writePlainDir(dir, good);
    const identity = await loadIdentity({ dir, watch: false });
    const before = identity.svid;
    // A renewal caught half-written: the new certificate is there, its key not yet.
    await writeFile(join(dir, 'tls.crt'), renewed.certificatePem);
    await rejectsSafelyFor(identity.reload(), /tls\.key: the private key does not match/);
    assert.equal(identity.svid, before);
    await writeFile(join(dir, 'tls.crt'), renewed.certificatePem.slice(0, 200));
    await rejectsSafelyFor(identity.reload(), /tls\.crt: no PEM CERTIFICATE block found/);
    assert.equal(identity.svid.serialNumber, planner.serialNumber);
    await writeFile(join(dir, 'tls.key'), renewed.privateKeyPem);
    await writeFile(join(dir, 'tls.crt'), renewed.certificatePem);
    assert.equal(await identity.reload(), true);
    assert.equal(identity.svid.serialNumber, renewed.serialNumber);
  });
});

describe('watching a Kubernetes volume', () => {
  let identity: Identity | undefined;
  after(() => identity?.close());

  it('follows an atomic ..data swap, keeps the last good set on an invalid swap, and recovers', async () => {
    const dir = newDir();
    await writeMountedDir(dir, good);
    // A long poll: the directory watch alone must notice the swaps.
    identity = await loadIdentity({ dir, pollIntervalMs: 60_000 });
    assert.equal(identity.svid.serialNumber, planner.serialNumber);

    const updated = once(identity, 'update');
    await swapMountedDir(dir, fileSet(renewed, td.bundlePem, policyFor(renewed)));
    await updated;
    assert.equal(identity.svid.serialNumber, renewed.serialNumber);

    const failed = once(identity, 'reloadError');
    await swapMountedDir(dir, { ...good, 'tls.key': renewed.privateKeyPem });
    const [err] = (await failed) as [IdentityError];
    assert.match(err.message, /private key does not match/);
    assert.equal(identity.svid.serialNumber, renewed.serialNumber, 'still serving the last good SVID');

    const recovered = once(identity, 'update');
    await swapMountedDir(dir, good);
    await recovered;
    assert.equal(identity.svid.serialNumber, planner.serialNumber);
  });

  it('the poll notices a change the watcher cannot see', async () => {
    const dir = newDir();
    await writeMountedDir(dir, good);
    // The watch covers the directory the files are named in; the poll sees changes anywhere.
    identity?.close();
    identity = await loadIdentity({ dir, pollIntervalMs: 100 });
    const updated = once(identity, 'update');
    // Rewrite the generation directory in place, which the watched directory does not see.
    const gen = await readlink(join(dir, '..data'));
    for (const [file, content] of Object.entries(fileSet(renewed, td.bundlePem, policyFor(renewed)))) await writeFile(join(dir, gen, file), content);
    await updated;
    assert.equal(identity.svid.serialNumber, renewed.serialNumber);
  });
});
