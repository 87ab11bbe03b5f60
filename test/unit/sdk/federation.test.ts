// Federation in the SDK: a BundleSet holds one Bundle per trust domain, and a
// peer is verified only against the Bundle of its own SPIFFE ID's trust domain
// (go-spiffe's x509bundle.Set). Real loopback TLS between two trust domains,
// cluster-a.test and cluster-b.test, and an impersonator: a Leaf for
// spiffe://cluster-a.test/... signed by cluster-b.test's CA.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SpiffeID } from '../../../src/pki/spiffeid.ts';
import { Bundle, BundleSet, chainsToRoots, parseCertificates } from '../../../src/pki/index.ts';
import { authorizePolicy } from '../../../src/sdk/authorizer.ts';
import { connect, httpsAgent } from '../../../src/sdk/client.ts';
import { PeerRefusedError } from '../../../src/sdk/errors.ts';
import { parseFederatedBundles } from '../../../src/sdk/federated-bundles.ts';
import { type Identity, loadIdentity } from '../../../src/sdk/identity.ts';
import { peerBundle, peerIdentity } from '../../../src/sdk/peer.ts';
import { type AgentServer, createHttpsServer, createServer } from '../../../src/sdk/server.ts';
import { issueLeaf } from '../../../src/pki/leaf.ts';
import { generateKeyPair, privateKeyToPem } from '../../../src/pki/keys.ts';
import { fileSet, type IssuedIdentity, makeTrustDomain, type PolicyOptions, policyFor, type TestTrustDomain, writeMountedDir, swapMountedDir } from '../../support/sdk-pki.ts';

let base: string;
let A: TestTrustDomain;
let B: TestTrustDomain;
let alice: IssuedIdentity;
let bob: IssuedIdentity;
let impostor: IssuedIdentity;
const closers: { close(): unknown }[] = [];
let dirs = 0;

const setOf = (...tds: TestTrustDomain[]) => `${JSON.stringify({ version: 1, bundles: Object.fromEntries(tds.map((t) => [t.trustDomain, t.bundlePem])) })}\n`;

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'sdk-federation-'));
  [A, B] = await Promise.all([makeTrustDomain('cluster-a.test'), makeTrustDomain('cluster-b.test')]);
  alice = await A.issue('alice');
  bob = await B.issue('bob');
  // Cluster B's CA signing an identity in cluster A's trust domain.
  const key = await generateKeyPair('ECDSA', 256);
  const spiffeID = 'spiffe://cluster-a.test/ns/agents/agent/alice';
  const leaf = await issueLeaf(B.intermediate, { spiffeID: SpiffeID.parse(spiffeID), dnsNames: [], publicKey: key.publicKey, durationMs: 3_600_000, now: new Date(Date.now() - 60_000) });
  impostor = { spiffeID, certificatePem: leaf.certificatePem, privateKeyPem: await privateKeyToPem(key), serialNumber: leaf.serialNumber };
});
after(async () => {
  for (const c of closers) c.close();
  await rm(base, { recursive: true, force: true });
});

/** An identity whose ca.crt is `own`'s and whose federated-bundles.json holds `partners` (none: no file). */
async function identityOf(who: IssuedIdentity, own: TestTrustDomain, partners: TestTrustDomain[], policy: PolicyOptions = {}): Promise<Identity & { dir: string }> {
  const dir = join(base, `d${++dirs}`);
  await writeMountedDir(dir, { ...fileSet(who, own.bundlePem, policyFor(who, policy)), ...(partners.length ? { 'federated-bundles.json': setOf(...partners) } : {}) });
  const identity = await loadIdentity({ dir, pollIntervalMs: 100 });
  closers.push(identity);
  return Object.assign(identity, { dir });
}

async function listen(server: AgentServer): Promise<number> {
  closers.push(server);
  server.on('secureConnection', (s) => {
    s.on('error', () => undefined);
    s.end(`hello ${peerIdentity(s)?.spiffeID}\n`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** A client's call: the greeting it got, or the reason the client or the server refused. */
async function call(client: Identity, port: number, server: AgentServer, expected: string): Promise<string> {
  const refused = once(server, 'refused').then(([err]) => `server refused: ${(err as PeerRefusedError).reason}: ${(err as Error).message}`);
  const called = connect(client, '127.0.0.1', port, { authorize: expected }).then(
    async (s) => {
      s.on('error', () => undefined);
      const [d] = await once(s, 'data').catch(() => ['(closed)']);
      s.destroy();
      return String(d).trim();
    },
    (err: PeerRefusedError) => `client refused: ${err.reason}: ${err.message}`,
  );
  return Promise.race([refused, called]);
}

describe('BundleSet and the pure selection', () => {
  it('picks the Bundle of the peer\'s own trust domain and refuses a trust domain it does not hold', () => {
    const set = new BundleSet(Bundle.fromPem(A.trustDomain, A.bundlePem), [Bundle.fromPem(B.trustDomain, B.bundlePem)]);
    assert.deepEqual(set.trustDomains, ['cluster-a.test', 'cluster-b.test']);
    assert.equal(set.federated, true);
    assert.equal(peerBundle(parseCertificates(bob.certificatePem), set).trustDomain, 'cluster-b.test');
    assert.equal(peerBundle(parseCertificates(alice.certificatePem), set).trustDomain, 'cluster-a.test');
    // The impostor names cluster-a.test, so it is held to A's Roots, which never signed it.
    const impostorChain = parseCertificates(impostor.certificatePem);
    assert.equal(peerBundle(impostorChain, set).trustDomain, 'cluster-a.test');
    assert.equal(chainsToRoots(impostorChain, peerBundle(impostorChain, set).roots), false);
    assert.equal(chainsToRoots(impostorChain, set.forTrustDomain('cluster-b.test')!.roots), true, 'B\'s Roots did sign it');
    assert.equal(chainsToRoots(parseCertificates(alice.certificatePem), set.local.roots), true);
    const alone = new BundleSet(Bundle.fromPem(A.trustDomain, A.bundlePem));
    assert.throws(() => peerBundle(parseCertificates(bob.certificatePem), alone), (err: PeerRefusedError) => err.reason === 'UntrustedChain' && /no bundle for trust domain cluster-b\.test is held/.test(err.message));
  });

  it('never takes a foreign bundle for the local trust domain', () => {
    assert.throws(() => new BundleSet(Bundle.fromPem(A.trustDomain, A.bundlePem), [Bundle.fromPem(A.trustDomain, B.bundlePem)]), /foreign bundle for cluster-a\.test, the local trust domain/);
    assert.throws(() => parseFederatedBundles(setOf(A), 'cluster-a.test'), /cluster-a\.test is this agent's own trust domain/);
    assert.throws(() => parseFederatedBundles('{"version":2,"bundles":{}}', 'cluster-a.test'), /unsupported version 2/);
    assert.throws(() => parseFederatedBundles('{"version":1,"bundles":{"Not A TD":"x"}}', 'cluster-a.test'), /is not a trust domain name/);
    assert.deepEqual(parseFederatedBundles(setOf(B), 'cluster-a.test').map((b) => b.trustDomain), ['cluster-b.test']);
  });

  it('an absent allow list admits its own trust domain only, never a federated one', () => {
    const doc = policyFor(alice);
    assert.equal(authorizePolicy(doc)(SpiffeID.parse(bob.spiffeID), []).allowed, false);
    assert.equal(authorizePolicy(doc)(SpiffeID.parse(A.trustDomain === 'cluster-a.test' ? 'spiffe://cluster-a.test/ns/agents/agent/x' : ''), []).allowed, true);
  });
});

describe('mTLS across two trust domains', () => {
  it('works both ways when each side holds the other\'s Bundle and allows the other\'s ID', async () => {
    const a = await identityOf(alice, A, [B], { allow: [{ spiffeID: bob.spiffeID, rule: 'allow[0]: spiffeID bob' }] });
    const b = await identityOf(bob, B, [A], { allow: [{ spiffeID: alice.spiffeID, rule: 'allow[0]: spiffeID alice' }] });
    const aServer = createServer(a);
    const bServer = createServer(b);
    const [aPort, bPort] = await Promise.all([listen(aServer), listen(bServer)]);
    assert.equal(await call(b, aPort, aServer, alice.spiffeID), `hello ${bob.spiffeID}`);
    assert.equal(await call(a, bPort, bServer, bob.spiffeID), `hello ${alice.spiffeID}`);
  });

  it('refuses, on both sides, a cluster-a.test identity that cluster-b.test\'s CA signed', async () => {
    const a = await identityOf(alice, A, [B], { allow: [{ spiffeID: impostor.spiffeID, rule: 'allow[0]: spiffeID alice' }, { spiffeID: bob.spiffeID, rule: 'allow[1]: spiffeID bob' }] });
    const fake = await identityOf(impostor, B, [A]).catch((err: Error) => err);
    // The SDK will not even load it as its own identity: its ca.crt (B's) is not its trust domain's.
    assert.ok(fake instanceof Error);
    // So the impostor is driven with raw material: as a client to A's server, and as a server A calls.
    const aServer = createServer(a);
    const aPort = await listen(aServer);
    const raw = await import('node:tls');
    // Admitted or refused: a regression must fail here, not hang.
    const verdict = Promise.race([once(aServer, 'refused'), once(aServer, 'secureConnection').then(() => [new PeerRefusedError('NoCertificate', 'ADMITTED')])]);
    const sock = raw.connect({ host: '127.0.0.1', port: aPort, cert: impostor.certificatePem, key: impostor.privateKeyPem, rejectUnauthorized: false });
    sock.on('error', () => undefined);
    const [err] = await verdict as [PeerRefusedError];
    sock.destroy();
    assert.equal(err.reason, 'UntrustedChain');
    assert.match(err.message, /does not chain to the trust bundle: \(trust domain cluster-a\.test\)/);

    // It holds each connection open, so only the client's verdict ends it.
    const impostorServer = raw.createServer({ cert: impostor.certificatePem, key: impostor.privateKeyPem }, (s) => s.on('error', () => undefined));
    closers.push(impostorServer);
    impostorServer.listen(0, '127.0.0.1');
    await once(impostorServer, 'listening');
    const port = (impostorServer.address() as AddressInfo).port;
    await assert.rejects(connect(a, '127.0.0.1', port, { authorize: impostor.spiffeID }), (e: PeerRefusedError) => e.reason === 'UntrustedChain' && /trust domain cluster-a\.test/.test(e.message));
    // The synchronous path (https.Agent, checkServerIdentity): OpenSSL accepts the chain (B's Root is in its store), ours does not.
    const answered = await new Promise<string>((resolve) => {
      https.get({ host: '127.0.0.1', port, agent: httpsAgent(a, { authorize: impostor.spiffeID }) }, () => resolve('answered')).on('error', (e) => resolve(`${(e as PeerRefusedError).reason}: ${e.message}`));
    });
    assert.match(answered, /^UntrustedChain: peer certificate does not chain to the trust bundle of cluster-a\.test/);
  });

  it('an agent that does not federate refuses the partner, and a reload of federated-bundles.json alone lets it in', async () => {
    const a = await identityOf(alice, A, [], { allow: [{ spiffeID: bob.spiffeID, rule: 'allow[0]: spiffeID bob' }] });
    const b = await identityOf(bob, B, [A]);
    const aServer = createServer(a);
    const aPort = await listen(aServer);
    assert.match(await call(b, aPort, aServer, alice.spiffeID), /^server refused: UntrustedChain: .*no bundle for trust domain cluster-b\.test is held/);
    const updated = once(a, 'update');
    await swapMountedDir(a.dir, { ...fileSet(alice, A.bundlePem, policyFor(alice, { allow: [{ spiffeID: bob.spiffeID, rule: 'allow[0]: spiffeID bob' }] })), 'federated-bundles.json': setOf(B) });
    await updated;
    assert.equal(a.svid.serialNumber, alice.serialNumber, 'the same Leaf: nothing reissued');
    assert.equal(await call(b, aPort, aServer, alice.spiffeID), `hello ${bob.spiffeID}`);
    // And an HTTPS server built on it, through the https.Agent path of the partner.
    const hs = createHttpsServer(a, {}, (_req, res) => res.end('ok'));
    closers.push(hs);
    hs.listen(0, '127.0.0.1');
    await once(hs, 'listening');
    const body = await new Promise<string>((resolve, reject) => {
      https.get({ host: '127.0.0.1', port: (hs.address() as AddressInfo).port, agent: httpsAgent(b, { authorize: alice.spiffeID }) }, (res) => {
        let t = '';
        res.on('data', (d) => (t += d)).on('end', () => resolve(t));
      }).on('error', reject);
    });
    assert.equal(body, 'ok');
  });
});

describe('reading federated-bundles.json during the kubelet\'s swap', () => {
  it('never takes a generation removed mid-read for "no partners"', async () => {
    const dir = join(base, `d${++dirs}`);
    const files = { ...fileSet(alice, A.bundlePem, policyFor(alice)), 'federated-bundles.json': setOf(B) };
    await writeMountedDir(dir, files);
    const { readIdentityFiles, identityFilesWithCredentialBundle } = await import('../../../src/sdk/files.ts');
    const paths = identityFilesWithCredentialBundle(dir);
    let swapping = true;
    // The same content in new generations, each swap removing the old one, as fast as it goes.
    const swaps = (async () => {
      while (swapping) await swapMountedDir(dir, files);
    })();
    let reads = 0;
    let withoutPartners = 0;
    for (let i = 0; i < 400; i++) {
      const contents = await readIdentityFiles(paths).catch(() => undefined);
      if (!contents) continue;
      reads++;
      if (contents.federatedBundles === undefined) withoutPartners++;
    }
    swapping = false;
    await swaps;
    assert.ok(reads > 0);
    assert.equal(withoutPartners, 0, `${withoutPartners} of ${reads} reads lost federated-bundles.json`);
  });
});
