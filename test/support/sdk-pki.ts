// Identities for SDK tests, without Kubernetes: a Root → Intermediate trust
// domain made with src/pki, issued Leaves, policy documents, and the files
// written the way the kubelet writes a Secret or ConfigMap volume.
import assert from 'node:assert/strict';
import { mkdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DenyListEntry, PolicyDocument, PolicyPeer } from '../../src/api/documents.ts';
import { IdentityError } from '../../src/sdk/errors.ts';
import { type CA, createIntermediate, createRoot, loadCA } from '../../src/pki/ca.ts';
import { generateKeyPair, privateKeyToPem } from '../../src/pki/keys.ts';
import { issueLeaf } from '../../src/pki/leaf.ts';
import { SpiffeID } from '../../src/pki/spiffeid.ts';

const HOUR = 3_600_000;

export interface IssuedIdentity {
  spiffeID: string;
  /** Leaf then intermediate, as the operator writes tls.crt. */
  certificatePem: string;
  privateKeyPem: string;
  serialNumber: string;
}

export interface TestTrustDomain {
  trustDomain: string;
  root: CA;
  intermediate: CA;
  /** ca.crt: the root alone. */
  bundlePem: string;
  /** `dnsNames`: as an AgentIdentity's spec.dnsNames (default none). */
  issue(name: string, namespace?: string, dnsNames?: string[]): Promise<IssuedIdentity>;
}

export const agentID = (name: string, namespace = 'agents', trustDomain = 'cluster.local') => `spiffe://${trustDomain}/ns/${namespace}/agent/${name}`;

/** A Root and an Intermediate valid from an hour ago, so real clocks accept them. */
export async function makeTrustDomain(trustDomain = 'cluster.local'): Promise<TestTrustDomain> {
  const now = new Date(Date.now() - HOUR);
  const rootPem = await createRoot({ trustDomain, algorithm: 'ECDSA', validityMs: 48 * HOUR, now });
  const root = await loadCA(rootPem.certificatePem, rootPem.privateKeyPem);
  const intPem = await createIntermediate(root, { trustDomain, algorithm: 'ECDSA', validityMs: 24 * HOUR, now });
  const intermediate = await loadCA(intPem.certificatePem, intPem.privateKeyPem);
  return {
    trustDomain,
    root,
    intermediate,
    bundlePem: rootPem.certificatePem,
    async issue(name, namespace = 'agents', dnsNames = []) {
      const key = await generateKeyPair('ECDSA', 256);
      const spiffeID = agentID(name, namespace, trustDomain);
      const leaf = await issueLeaf(intermediate, { spiffeID: SpiffeID.parse(spiffeID), dnsNames, publicKey: key.publicKey, durationMs: 2 * HOUR, now });
      return { spiffeID, certificatePem: leaf.certificatePem, privateKeyPem: await privateKeyToPem(key), serialNumber: leaf.serialNumber };
    },
  };
}

export interface PolicyOptions {
  /** Omit for TrustDomain mode. */
  allow?: PolicyPeer[];
  denyList?: DenyListEntry[];
}

export function policyFor(identity: IssuedIdentity, opts: PolicyOptions = {}): PolicyDocument {
  return {
    version: 1,
    spiffeID: identity.spiffeID,
    mode: opts.allow ? 'AllowList' : 'TrustDomain',
    trustDomain: SpiffeID.parse(identity.spiffeID).trustDomain,
    allow: opts.allow ?? [],
    denyList: opts.denyList ?? [],
  };
}

export function denied(identity: IssuedIdentity, reason = 'Suspended'): DenyListEntry {
  return { serialNumber: identity.serialNumber, spiffeID: identity.spiffeID, notAfter: new Date(Date.now() + 2 * HOUR).toISOString(), reason };
}

export type IdentityFileSet = Record<'tls.crt' | 'tls.key' | 'ca.crt' | 'policy.json', string>;

export function fileSet(identity: IssuedIdentity, bundlePem: string, policy: PolicyDocument): IdentityFileSet {
  return { 'tls.crt': identity.certificatePem, 'tls.key': identity.privateKeyPem, 'ca.crt': bundlePem, 'policy.json': `${JSON.stringify(policy, null, 2)}\n` };
}

/** What the kubelet writes for a podCertificate projection (with the bundle and policy ConfigMaps beside it). */
export type PodCertificateFileSet = Record<'credential-bundle.pem' | 'ca.crt' | 'policy.json', string>;

/** Files of either delivery, as the write helpers take them. */
export type MountedFiles = Partial<IdentityFileSet & PodCertificateFileSet & Record<'federated-bundles.json', string>>;

/** The kubelet's credential bundle: the PKCS#8 key, then the chain. */
export function podCertificateFileSet(identity: IssuedIdentity, bundlePem: string, policy: PolicyDocument): PodCertificateFileSet {
  const { 'ca.crt': ca, 'policy.json': policyJson } = fileSet(identity, bundlePem, policy);
  return { 'credential-bundle.pem': `${identity.privateKeyPem.trim()}\n${identity.certificatePem}`, 'ca.crt': ca, 'policy.json': policyJson };
}

let generation = 0;

async function writeGeneration(dir: string, files: MountedFiles): Promise<string> {
  const name = `..2026_01_01_00_00_00.${String(process.pid)}${String(++generation).padStart(6, '0')}`;
  await mkdir(join(dir, name), { recursive: true });
  for (const [file, content] of Object.entries(files)) await writeFile(join(dir, name, file), content);
  return name;
}

/** The kubelet's AtomicWriter layout: ..<timestamp>/ files, ..data -> ..<timestamp>, name -> ..data/name. */
export async function writeMountedDir(dir: string, files: MountedFiles): Promise<void> {
  const gen = await writeGeneration(dir, files);
  await symlink(gen, join(dir, '..data'));
  for (const file of Object.keys(files)) await symlink(join('..data', file), join(dir, file));
}

/** An update as the kubelet makes it: a new generation, ..data swapped by rename, the old generation removed. */
export async function swapMountedDir(dir: string, files: MountedFiles): Promise<void> {
  const old = await readlink(join(dir, '..data'));
  const gen = await writeGeneration(dir, files);
  await symlink(gen, join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  // A file the old generation did not have gets its link, as the kubelet's AtomicWriter does.
  for (const file of Object.keys(files)) await symlink(join('..data', file), join(dir, file)).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  await rm(join(dir, old), { recursive: true, force: true });
}

/** Plain files, as a developer would lay them out by hand. */
export async function writePlainDir(dir: string, files: MountedFiles): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [file, content] of Object.entries(files)) await writeFile(join(dir, file), content);
}

/** The body of a PEM private key (one base64 line of it), to prove a message does not quote it. */
export const keyBody = (pem: string) => pem.split('\n').find((l) => l.length > 40 && !l.startsWith('-----'))!;

/** Rejects with an IdentityError matching `message` that quotes nothing of these identities' private keys. */
export async function rejectsSafely(p: Promise<unknown>, message: RegExp, keysOf: readonly IssuedIdentity[]): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof IdentityError, `expected IdentityError, got ${String(err)}`);
    assert.match(err.message, message);
    assert.doesNotMatch(err.message, /PRIVATE KEY/);
    for (const i of keysOf) assert.ok(!err.message.includes(keyBody(i.privateKeyPem)), 'no key material in the message');
    return true;
  });
}
