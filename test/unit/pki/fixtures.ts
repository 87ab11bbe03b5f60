// Shared setup for the pki tests: a fixed clock, a Root → Intermediate
// hierarchy built once per test file, small DER and openssl helpers, and a
// kubelet's stub PKCS#10 request.
import { execFileSync } from 'node:child_process';
import type { webcrypto } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CA, createIntermediate, createRoot, loadCA } from '../../../src/pki/ca.ts';
import { x509 } from '../../../src/pki/crypto.ts';
import { generateKeyPair, type KeyPair } from '../../../src/pki/keys.ts';
import { issueLeaf, type LeafRequest } from '../../../src/pki/leaf.ts';
import { parseCertificates } from '../../../src/pki/parse.ts';
import { SpiffeID } from '../../../src/pki/spiffeid.ts';

export const NOW = new Date('2030-06-01T12:00:00.000Z');
export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
export const TD = 'cluster.local';

export interface Hierarchy {
  root: CA;
  intermediate: CA;
}

let cached: Promise<Hierarchy> | undefined;

/** An ECDSA P-256 Root (1 year) and Intermediate (90 days), shared within a test file. */
export function hierarchy(): Promise<Hierarchy> {
  cached ??= (async () => {
    const rootPem = await createRoot({ trustDomain: TD, algorithm: 'ECDSA', validityMs: 365 * DAY, now: NOW });
    const root = await loadCA(rootPem.certificatePem, rootPem.privateKeyPem);
    const intPem = await createIntermediate(root, { trustDomain: TD, algorithm: 'ECDSA', validityMs: 90 * DAY, now: NOW });
    return { root, intermediate: await loadCA(intPem.certificatePem, intPem.privateKeyPem) };
  })();
  return cached;
}

export const agentID = SpiffeID.parse(`spiffe://${TD}/ns/agents/agent/planner`);

/** Issues a Leaf for a fresh key and returns it parsed, with its key. */
export async function leafFrom(ca: CA, overrides: Partial<LeafRequest> = {}, key?: KeyPair) {
  const leafKey = key ?? (await generateKeyPair('ECDSA', 256));
  const issued = await issueLeaf(ca, {
    spiffeID: agentID,
    dnsNames: ['planner.agents.svc'],
    publicKey: leafKey.publicKey,
    durationMs: DAY,
    now: NOW,
    ...overrides,
  });
  const certs = parseCertificates(issued.certificatePem);
  return { issued, certs, leaf: certs[0]!, key: leafKey };
}

/** Contents (tag byte and value) of the DER elements of one SEQUENCE body. */
function children(der: Uint8Array): { tag: number; value: Uint8Array }[] {
  const out: { tag: number; value: Uint8Array }[] = [];
  for (let i = 0; i < der.length; ) {
    const tag = der[i]!;
    let len = der[i + 1]!;
    let head = 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let j = 0; j < n; j++) len = len * 256 + der[i + 2 + j]!;
      head += n;
    }
    out.push({ tag, value: der.subarray(i + head, i + head + len) });
    i += head + len;
  }
  return out;
}

/** TBSCertificate fields after the [0] version: serialNumber, signature, issuer, validity, subject, … */
function tbsFields(certDer: ArrayBuffer) {
  const [certificate] = children(new Uint8Array(certDer));
  const [tbs] = children(certificate!.value);
  const fields = children(tbs!.value);
  return fields[0]!.tag === 0xa0 ? fields.slice(1) : fields;
}

/** The raw content octets of a certificate's serialNumber INTEGER, sign byte included. */
export function serialIntegerBytes(certDer: ArrayBuffer): Uint8Array {
  return tbsFields(certDer)[0]!.value;
}

/** The issuer and subject Names exactly as encoded in the certificate. */
export function rawNames(certDer: ArrayBuffer): { issuer: Buffer; subject: Buffer } {
  const fields = tbsFields(certDer);
  return { issuer: Buffer.from(fields[2]!.value), subject: Buffer.from(fields[4]!.value) };
}

/** Runs fn in a fresh directory under the OS temp dir, removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T> | T): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'pki-test-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs openssl in a temp dir holding `files`; returns its exit status and combined output. */
export function openssl(args: string[], files: Record<string, string>): Promise<{ status: number; output: string }> {
  return withTempDir(async (dir) => {
    for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
    try {
      const output = execFileSync('openssl', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      return { status: 0, output };
    } catch (err) {
      const e = err as { status: number; stdout: string; stderr: string };
      return { status: e.status, output: `${e.stdout}${e.stderr}` };
    }
  });
}

export const epochSeconds = (d: Date) => String(Math.floor(d.getTime() / 1000));

/** What the kubelet does: a new key, and a request with an empty subject signed by it. */
export async function stubRequest(alg: webcrypto.RsaHashedKeyGenParams | webcrypto.EcKeyGenParams | webcrypto.Algorithm, hash = ''): Promise<{ der: string; keys: webcrypto.CryptoKeyPair }> {
  const keys = (await globalThis.crypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const signingAlgorithm = hash ? { ...alg, hash } : alg;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ keys, signingAlgorithm });
  return { der: Buffer.from(csr.rawData).toString('base64'), keys };
}

